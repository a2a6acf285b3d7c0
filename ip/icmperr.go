package ip

import (
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// errQuoteMax is how long an ICMP error we send may be: as Linux, it
// quotes as much of the offending datagram as fits in 576 bytes, the size
// every host must accept (RFC 1812 section 4.3.2.3 asks routers for as
// much as possible; RFC 792 wants at least the header and 8 data bytes).
const errQuoteMax = 576

// errHeaderLen is the length of the headers in front of an error's quote.
const errHeaderLen = headerLen + wire.ICMPHeaderLen

// Unreachable writes into out an ICMP destination unreachable with code
// code (wire.ICMPPortUnreachable for UDP to a closed port,
// wire.ICMPProtoUnreachable for a protocol Input counted as unknown),
// about datagram d that Input delivered, and returns its length. Call it
// before the next Input: d may point into the reassembly buffer.
//
// It returns 0 and sends nothing where RFC 1122 section 3.2.2 forbids an
// error: in reply to an ICMP error, to a datagram sent to a broadcast
// (d.Broadcast) or as a link-layer broadcast (d.LinkBroadcast, which the
// caller sets), to a non-initial fragment, or to a source that is no
// single host. It returns 0 too when the rate limit (Config.ICMPErrorRate)
// holds it back (OutRateLimited) or out is shorter than the IPv4 and ICMP
// headers, d's header and 8 bytes (OutErrors).
func (l *Layer) Unreachable(now time.Duration, d Datagram, code uint8, out []byte) int {
	// Our own datagrams on the loopback path (a Local source, which
	// Input never lets in from the wire) are answered too, as Linux's lo
	// answers a closed port.
	if d.Broadcast || d.LinkBroadcast || d.Header.FragmentOffset() != 0 || !l.validSource(u32(d.Src)) && !l.Local(d.Src) {
		return 0
	}
	if d.Proto == wire.ProtoICMP {
		if m := wire.ICMP(d.Payload); m.Check() != nil || m.IsError() {
			return 0
		}
	}
	q := l.quoteLen(len(out), d.Header.HeaderLen(), len(d.Header))
	// No rate limit to ourselves, as Linux's icmpv4_xrlim_allow for lo.
	if q == 0 || !l.Local(d.Src) && !l.allowError(now) {
		return 0
	}
	copy(out[errHeaderLen:errHeaderLen+q], d.Header)
	// From the address d was sent to, as Linux's icmp_send for a local
	// destination: the sender's connected socket sees its peer answer.
	return l.finishError(out, d.Dst, d.Src, wire.ICMPDestUnreachable, code, q)
}

// Output is the layer's timer work and what it sends of its own accord,
// at wire.LayerNetwork: it expires, at now, the datagrams whose
// reassembly timed out (RFC 1122 section 3.3.2), counting them in
// ReasmTimeout and ReasmFails. For one whose fragment zero had come, that
// section wants an ICMP time exceeded (code 1, "fragment reassembly time
// exceeded") sent to its source: Output writes it, a whole IPv4 packet,
// into out and describes it. The caller sends it and calls Output again,
// until it reports nothing. Replies to input (echo replies, unreachables)
// are not here: ICMPInput and Unreachable write them at once.
func (l *Layer) Output(now time.Duration, out []byte) (wire.Out, bool) {
	r := &l.reasm
	for {
		i := r.due(now)
		if i < 0 {
			return wire.Out{}, false
		}
		l.ipst.ReasmTimeout++
		l.ipst.ReasmFails++
		p := &r.slots[i]
		n, src := 0, addrFrom(p.key.src)
		// Fragments to a broadcast get no error (RFC 1122 section 3.2.2).
		if p.first >= 0 && l.ours(p.key.dst) {
			f := &r.recs[p.first]
			if q := l.quoteLen(len(out), p.hdrLen, p.hdrLen+f.end-f.off); q > 0 && l.allowError(now) {
				copy(out[errHeaderLen:], p.hdr[:p.hdrLen])
				r.load(out[errHeaderLen+p.hdrLen:errHeaderLen+q], f.block)
				n = l.finishError(out, addrFrom(p.key.dst), src, wire.ICMPTimeExceeded, icmpFragReasm, q)
			}
		}
		r.kill(i)
		if n > 0 {
			return wire.Out{Len: n, Dst: src}, true
		}
	}
}

// quoteLen returns how many bytes of an offending datagram of avail bytes
// with a header of hdrLen an error written into a buffer of size bytes
// quotes, or 0 (counted in OutErrors) if it cannot quote the header and 8
// bytes.
func (l *Layer) quoteLen(size, hdrLen, avail int) int {
	q := min(avail, size-errHeaderLen, min(errQuoteMax, l.cfg.MTU)-errHeaderLen)
	if q < min(avail, hdrLen+8) {
		l.icmpst.OutErrors++
		return 0
	}
	return q
}

// allowError takes a token from the error rate limit.
func (l *Layer) allowError(now time.Duration) bool {
	if !l.limit.allow(now) {
		l.icmpst.OutRateLimited++
		return false
	}
	return true
}

// finishError writes the IPv4 and ICMP headers of an error from src to
// dst in front of the q quoted bytes at out[28:], and returns the
// message's length.
func (l *Layer) finishError(out []byte, src, dst netip.Addr, typ, code uint8, q int) int {
	n := errHeaderLen + q
	wire.ICMPFields{Type: typ, Code: code}.Encode(out[headerLen:n])
	// RFC 1349 section 5.1: an error is sent with the default TOS.
	l.writeIPFrom(out, src, dst, wire.ProtoICMP, n, false, 0)
	l.icmpst.OutMsgs++
	l.icmpst.OutType[typ]++
	return n
}
