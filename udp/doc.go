// Package udp implements UDP datagram endpoints (RFC 768, RFC 1122 section
// 4.1) as a sans-IO core: no goroutines, no clock, no system calls. It
// neither reads nor writes frames; its owner hands it datagrams and asks it
// for datagrams to send.
//
// # Ownership
//
// A Table belongs to one poller goroutine, the one of a NIC queue, and
// holds every endpoint of that queue. The poller drives it:
//
//   - per received UDP datagram, Input(src, dst, udpBytes): the checksum is
//     verified, the endpoint found by local port, then the most specific
//     (local address, connected peer) match, and the payload copied into the
//     endpoint's receive queue. Input keeps no reference to the frame, so the
//     poller recycles it at once. A NoPort result asks the poller to have the
//     ip layer send ICMP port unreachable (not for broadcast; the ip layer
//     knows); an ICMP port unreachable coming back goes to PortUnreachable.
//   - per loop iteration, NextOutput / EmitOutput until NextOutput reports
//     nothing: each EmitOutput writes one UDP header and payload, checksum
//     included, straight into the poller's TX frame behind the IPv4 header
//     it writes itself.
//
// Until issue 5, Bind and the Endpoint methods (Connect, ReadFrom,
// WriteTo, Close) are called by the poller goroutine too, and nothing here
// is safe for concurrent use.
//
// # Queues, and issue 5
//
// Each endpoint has two bounded FIFOs, each a preallocated record ring and
// byte ring, so steady state allocates nothing: the receive queue (Input
// produces, ReadFrom consumes) and the send queue (WriteTo produces,
// NextOutput/EmitOutput consume). Each has exactly one producer and one
// consumer, which write disjoint counters. Issue 5 turns them into the
// lock-free SPSC rings between an app goroutine and the poller by making
// those counters atomic; the pending error becomes an atomic too, and Bind,
// Connect and Close travel the poller's command queue. The protocol logic
// (demux, checksums, limits, counters) stays as it is.
//
// # Memory
//
// An endpoint's queues are allocated on their first datagram, at the
// configured limits; an endpoint that only sends never allocates a receive
// buffer. After Close the receive queue is released at once and the
// endpoint lives on only until its queued datagrams have been sent.
package udp
