// Package udp implements UDP datagram endpoints (RFC 768, RFC 1122 section
// 4.1) as a sans-IO core: no goroutines, no clock, no system calls. It
// neither reads nor writes frames; its owner hands it datagrams and asks it
// for datagrams to send.
//
// It offers the contract every core offers (internal/wire's Out): Input
// takes a received datagram at now; Output(now, b) writes the next queued
// datagram into b and describes it at wire.LayerTransport (destination,
// protocol), for the poller to write the IPv4 header, until it reports
// nothing; one longer than b stays queued and Output reports the room it
// needs, for the poller to fragment it; Deadline reports no timer, as UDP
// has none. News for apps goes to an endpoint's Owner, a Notifier.
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
//   - per loop iteration, Output until it reports nothing: each call
//     writes one UDP header and payload, checksum included, straight into
//     the poller's TX frame behind the IPv4 header it writes itself.
//
// Bind and the Endpoint methods (Connect, ReadFrom, WriteTo, Close) are
// for the poller goroutine (poller-side services use them directly). An
// app goroutine uses the endpoint's Stream instead, and the table tells
// the endpoint's Owner of news (NextNews): datagrams received, an ICMP
// error, room in a send queue a writer found full.
//
// # Queues
//
// Each endpoint has two bounded FIFOs, each a preallocated record ring and
// byte ring, so steady state allocates nothing: the receive queue (Input
// produces, ReadFrom or the Stream consumes) and the send queue (WriteTo or
// the Stream produces, Output consumes). Each has exactly one producer
// and one consumer, which write disjoint atomic counters: a lock-free
// SPSC ring between an app goroutine and the poller. The protocol logic
// (demux, checksums, limits, counters) stays on the poller.
//
// # Memory
//
// An endpoint's queues are allocated on their first datagram, at the
// configured limits; an endpoint that only sends never allocates a receive
// buffer. After Close the receive queue is released at once and the
// endpoint lives on only until its queued datagrams have been sent.
package udp
