// Package ip is xdpnet's IPv4 and ICMPv4 layer (RFC 791, 792, 1122), a
// sans-IO core: no goroutines, no clock, no system calls (but one read of
// crypto/rand in New when Config.Secret is zero). Time comes in as now, a
// time.Duration on a monotonic clock from an arbitrary epoch. Headers are
// read and written through internal/wire's views.
//
// It offers the contract every core offers (internal/wire's Out): Input
// takes a received packet at now; Output(now, b) runs the timers due
// (reassembly expiry) and writes what the layer sends of its own accord,
// a whole IPv4 packet (ICMP time exceeded) it describes at
// wire.LayerNetwork, until it reports nothing; Deadline says when its
// timers next need Output. Replies to input (echo replies, unreachables)
// and the headers of the transports' packets are written at once, by
// ICMPInput, Unreachable and WriteHeader, into the caller's frame.
//
// # Ownership
//
// A Layer belongs to one poller goroutine, that of a NIC queue; nothing is
// safe for concurrent use. The poller drives it:
//
//   - per received IPv4 frame, Input(now, frame[14:]). A bad packet is
//     counted and dropped; a fragment is copied and held. A datagram for
//     us comes back as a Datagram, and the poller demultiplexes on Proto:
//     ICMP to ICMPInput (which may write an echo reply into a TX frame, and
//     returns errors about datagrams we sent as an ICMPEvent for UDP or
//     TCP), UDP and TCP to their packages, anything else to Unreachable
//     with wire.ICMPProtoUnreachable. When UDP finds no port, Unreachable
//     with wire.ICMPPortUnreachable. A Datagram may point into the
//     layer's reassembly buffer: use it before the next Input.
//   - per datagram to send, Route(dst) for the next hop (for ARP), the
//     transport's bytes at frame[34:], then WriteHeader(frame[14:], …);
//     TCP sizes its segments by PathMTU. A datagram without DF longer
//     than PathMTU (UDP, an echo reply) is written whole into a buffer of
//     up to 65,535 bytes, then cut into frames: WriteFragment(frame[14:],
//     pkt, mtu, i) for i below Fragments(pkt, mtu).
//   - each round, Output(now, txFrame[14:]) until it reports nothing: it
//     expires reassembly and may write ICMP time exceeded messages.
//
// Every message the layer writes (echo reply, errors) is a whole IPv4
// packet for frame[14:]; the poller adds the Ethernet header, to the
// request's source link address or to the next hop of Route(dst).
//
// # Choices
//
//   - Input accepts datagrams to our address, 255.255.255.255 and the
//     subnet's directed broadcast, from a source that is a single host and
//     not us. It ignores TTL (a host does not forward) and skips options.
//   - Reassembly (reasm.go) runs in memory allocated once, capped in bytes
//     (Config.ReasmMemory) and datagrams; any overlap drops the whole
//     datagram, exact duplicates are ignored, the oldest datagram is
//     evicted under pressure, and a datagram times out 30 s after its first
//     fragment.
//   - TCP sets DF and is never fragmented. UDP (unless
//     Config.DontFragmentUDP) and echo replies are fragmented at the path
//     MTU (fragment.go), as Linux does for sockets without
//     IP_PMTUDISC_DO. Identification fields come from RFC 7739's
//     hash-based per-destination counters (ident.go).
//   - ICMP errors are limited by one token bucket, 1000 a second in bursts
//     of 50 (ratelimit.go); echo replies are not limited. Path MTUs learned
//     from "fragmentation needed" are floored at 552 bytes and expire
//     after 10 minutes (pmtu.go).
//   - Counters are read as a Stats struct, named as in /proc/net/snmp.
//
// # Allocation
//
// New allocates everything; Input, ICMPInput, Unreachable, WriteHeader,
// Fragments, WriteFragment, Route, PathMTU and Output allocate nothing.
package ip
