package ip

import (
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// ICMP types the layer reads beyond those wire names (RFC 792).
const (
	icmpSourceQuench = 4
	icmpRedirect     = 5
	icmpParamProblem = 12
	icmpFragReasm    = 1 // code of wire.ICMPTimeExceeded: fragment reassembly time exceeded
)

// EventKind says what a received ICMP message means to the layers above.
type EventKind uint8

// Event kinds.
const (
	// EventNone: nothing for the layers above (an echo request, answered
	// or not; a malformed, unsupported or ignored message).
	EventNone EventKind = iota
	// EventEchoReply: an answer to an echo request; ID, Seq and Data.
	EventEchoReply
	// EventError: a destination unreachable, time exceeded or parameter
	// problem about a datagram we sent; Proto, Src, Dst, ports, Transport
	// and, for "fragmentation needed", MTU.
	EventError
)

// ICMPEvent is what ICMPInput learned from an ICMP message. Its slices
// point into the Datagram's bytes and live as long as they do.
type ICMPEvent struct {
	Kind       EventKind
	Type, Code uint8

	// ID, Seq and Data are an echo reply's.
	ID, Seq uint16
	Data    []byte

	// Proto, Src and Dst are from the header the error quotes: that of a
	// datagram we sent (Src is our address).
	Proto    uint8
	Src, Dst netip.Addr
	// SrcPort and DstPort are the first four bytes of the quoted transport
	// header: the ports, for TCP and UDP alike. UDP hands them to its
	// PortUnreachable, TCP to its error handling.
	SrcPort, DstPort uint16
	// Transport is the quoted transport header, 8 bytes or more (with the
	// TCP sequence number, which TCP checks against its window before
	// believing the error, RFC 5927).
	Transport []byte
	// MTU is, for "fragmentation needed", the path MTU to Dst now in
	// effect (see PathMTU); 0 otherwise.
	MTU int
}

// ICMPInput handles an ICMP datagram that Input delivered (d.Proto is
// wire.ProtoICMP). An echo request is answered (RFC 792; RFC 1122 section
// 3.2.2.6): the whole IPv4 echo reply, as long as the request, is written
// into reply, which may alias d.Header for a reply in place (so a
// reassembled request of up to 65,535 bytes is answered in the reassembly
// buffer), and n is its length; n is 0 otherwise, and OutErrors counts a
// reply too short for it. A reply longer than the path MTU goes out in
// fragments (WriteFragment): it never carries DF. Echo replies are not
// rate-limited. Messages of interest to the layers above come back as ev.
// "Fragmentation needed" also lowers the path MTU to the quoted
// destination (RFC 1191 section 3).
//
// Redirects are ignored, against RFC 1122 section 3.2.2.2, which says a
// host MUST update its routes: a spoofable message is no reason to leave
// the one configured gateway (Linux with accept_redirects=0 does the
// same). So are source quench (deprecated, RFC 6633), timestamps and the
// rest. Any ICMP message to a broadcast address is counted in InErrors and
// dropped: RFC 1122 section 3.2.2.6 lets a host ignore echo requests to
// broadcasts (as Linux does by default), and an error sent there is bogus.
func (l *Layer) ICMPInput(now time.Duration, d Datagram, reply []byte) (n int, ev ICMPEvent) {
	st := &l.icmpst
	st.InMsgs++
	m := wire.ICMP(d.Payload)
	if m.Check() != nil {
		st.InErrors++
		return 0, ev
	}
	if !m.ChecksumValid() {
		st.InErrors++
		st.InCsumErrors++
		return 0, ev
	}
	ev.Type, ev.Code = m.Type(), m.Code()
	st.InType[ev.Type]++
	if d.Broadcast {
		st.InErrors++
		return 0, ev
	}
	switch ev.Type {
	case wire.ICMPEcho:
		return l.echoReply(d, m, reply), ev
	case wire.ICMPEchoReply:
		ev.Kind = EventEchoReply
		ev.ID, ev.Seq, ev.Data = m.ID(), m.Seq(), m.Payload()
	case wire.ICMPDestUnreachable, wire.ICMPTimeExceeded, icmpParamProblem:
		l.icmpError(now, m, l.Local(d.Src), &ev)
	}
	return 0, ev
}

// echoReply writes the reply to echo request m into reply and returns its
// length, or 0 if reply is too short.
func (l *Layer) echoReply(d Datagram, m wire.ICMP, reply []byte) int {
	// RFC 1122 section 3.2.2.6: the reply carries the request's data
	// entirely; the caller fragments it if need be, as Linux does, rather
	// than truncate it (which the RFC allows only for a host that cannot
	// fragment).
	n := headerLen + len(m)
	if n > len(reply) {
		l.icmpst.OutErrors++
		return 0
	}
	// Read what the reply needs before writing: reply may alias d.
	rest := uint32(m.ID())<<16 | uint32(m.Seq()) // RFC 792: identifier and sequence number
	tos := d.Header.TOS()
	copy(reply[headerLen+wire.ICMPHeaderLen:n], m.Payload())
	wire.ICMPFields{Type: wire.ICMPEchoReply, Rest: rest}.Encode(reply[headerLen:n])
	// RFC 1122 section 3.2.2.6: the reply's source is the request's
	// specific destination (ours: broadcasts were refused). RFC 1349
	// section 5.1: a reply has the request's TOS.
	l.writeIPFrom(reply, d.Dst, d.Src, wire.ProtoICMP, n, false, tos)
	l.icmpst.OutMsgs++
	l.icmpst.OutType[wire.ICMPEchoReply]++
	return n
}

// icmpError fills ev from error message m, which quotes a datagram we sent
// (RFC 792: its header and at least its first 8 data bytes), or counts m
// in InErrors if the quote is unusable. Only an error from ourselves, on
// the loopback path (local), may quote a datagram from 127/8: from the
// wire such a quote is a forgery aimed at our loopback sockets.
func (l *Layer) icmpError(now time.Duration, m wire.ICMP, local bool, ev *ICMPEvent) {
	q := wire.IPv4(m.Payload())
	// The quote is truncated, so its total length exceeds its bytes and
	// wire's Check does not apply; check what is read here (wire has no
	// header-only check).
	if len(q) < headerLen || q[0]>>4 != 4 || q.HeaderLen() < headerLen || len(q) < q.HeaderLen()+8 ||
		!(l.ours(u32(q.Src())) || local && q.Src().IsLoopback()) || q.FragmentOffset() != 0 {
		// Not a datagram we could have sent: ours come from our
		// addresses (or 127.0.0.1 to ourselves) and are never fragments.
		l.icmpst.InErrors++
		return
	}
	tr := q[q.HeaderLen():]
	// A UDP view reads the ports of a TCP header too: both start with
	// source and destination port.
	ports := wire.UDP(tr)
	ev.Kind = EventError
	ev.Proto, ev.Src, ev.Dst = q.Protocol(), q.Src(), q.Dst()
	ev.SrcPort, ev.DstPort, ev.Transport = ports.SrcPort(), ports.DstPort(), tr
	if ev.Type == wire.ICMPDestUnreachable && ev.Code == wire.ICMPFragNeeded {
		ev.MTU = l.fragNeeded(now, u32(ev.Dst), m.NextHopMTU(), q.TotalLen())
	}
}
