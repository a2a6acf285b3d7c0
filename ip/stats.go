package ip

import "github.com/xdpnet/xdpnet/internal/wire"

// Stats are the layer's counters, named as in /proc/net/snmp (RFC 4293's
// ipSystemStats and icmpStats).
type Stats struct {
	IP   IPStats
	ICMP ICMPStats
}

// IPStats counts IPv4 packets. Every received packet is counted once in
// InReceives and ends in exactly one of InHdrErrors, InAddrErrors,
// ReasmReqds (a fragment), InDelivers or InUnknownProtos, except that a
// reassembled datagram is delivered without being received as such:
//
//	InReceives = InHdrErrors + InAddrErrors + ReasmReqds + InDelivers + InUnknownProtos − ReasmOKs
//
// InDiscards (dropped for lack of resources) has no cause here: fragments
// dropped for lack of reassembly memory count in ReasmFails. FragFails has
// none either: a datagram with DF set is never cut, and a transport never
// hands the layer one larger than the link MTU.
type IPStats struct {
	InReceives   uint64 // packets handed to Input
	InHdrErrors  uint64 // bad version, IHL, length, checksum, or a source that is no valid host
	InCsumErrors uint64 // of InHdrErrors, bad header checksums (Linux's IpExt InCsumErrors)
	InAddrErrors uint64 // destination neither ours nor a broadcast of our subnet
	// InUnknownProtos counts delivered datagrams of protocols other than
	// ICMP, TCP and UDP.
	InUnknownProtos uint64
	InDelivers      uint64 // datagrams delivered, reassembled ones included
	OutRequests     uint64 // datagrams sent: WriteHeader, echo replies, ICMP errors
	OutNoRoutes     uint64 // Route failures
	ReasmTimeout    uint64 // datagrams whose reassembly timed out
	ReasmReqds      uint64 // fragments received
	ReasmOKs        uint64 // datagrams reassembled
	// ReasmFails counts datagrams given up: timed out, overlapping,
	// malformed, oversized, or evicted when memory or slots ran out. It
	// counts datagrams, not fragments (RFC 4293).
	ReasmFails    uint64
	ReasmOverlaps uint64 // of ReasmFails, overlaps (Linux's IpExt ReasmOverlaps)
	FragOKs       uint64 // datagrams sent in fragments (WriteFragment)
	FragCreates   uint64 // fragments written
}

// ICMPStats counts ICMP messages. InType and OutType count by type, as
// /proc/net/snmp's IcmpMsg lines; the named per-type counters are read
// from them.
type ICMPStats struct {
	InMsgs          uint64 // messages handed to ICMPInput
	InErrors        uint64 // short, bad checksum, to a broadcast, or an error quoting no datagram of ours
	InCsumErrors    uint64 // of InErrors, bad checksums
	InDestUnreachs  uint64
	InTimeExcds     uint64
	InParmProbs     uint64
	InSrcQuenchs    uint64
	InRedirects     uint64
	InEchos         uint64
	InEchoReps      uint64
	OutMsgs         uint64 // messages written: echo replies and errors
	OutErrors       uint64 // not written: no room in the caller's buffer
	OutRateLimited  uint64 // errors held back by the rate limit (Linux's IcmpOutRateLimitGlobal)
	OutDestUnreachs uint64
	OutTimeExcds    uint64
	OutEchoReps     uint64
	InType          [256]uint64 // valid messages received, by type
	OutType         [256]uint64 // messages sent, by type
}

// Stats returns a copy of the counters.
func (l *Layer) Stats() Stats {
	c := l.icmpst
	c.InDestUnreachs = c.InType[wire.ICMPDestUnreachable]
	c.InTimeExcds = c.InType[wire.ICMPTimeExceeded]
	c.InParmProbs = c.InType[icmpParamProblem]
	c.InSrcQuenchs = c.InType[icmpSourceQuench]
	c.InRedirects = c.InType[icmpRedirect]
	c.InEchos = c.InType[wire.ICMPEcho]
	c.InEchoReps = c.InType[wire.ICMPEchoReply]
	c.OutDestUnreachs = c.OutType[wire.ICMPDestUnreachable]
	c.OutTimeExcds = c.OutType[wire.ICMPTimeExceeded]
	c.OutEchoReps = c.OutType[wire.ICMPEchoReply]
	return Stats{IP: l.ipst, ICMP: c}
}
