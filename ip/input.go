package ip

import (
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Datagram is a valid IPv4 datagram addressed to us, as Input delivers it.
type Datagram struct {
	// Header is the whole datagram, header to the end of the payload,
	// bounded by its total length. For a reassembled datagram it is a
	// rebuilt 20-byte header (no options, no fragment fields) and the
	// payload, in the layer's reassembly buffer.
	Header wire.IPv4
	// Src and Dst are the header's addresses.
	Src, Dst netip.Addr
	// Proto is the header's protocol: wire.ProtoICMP, wire.ProtoTCP,
	// wire.ProtoUDP or one the stack does not speak.
	Proto uint8
	// Payload is the transport data, Header.Payload().
	Payload []byte
	// Broadcast reports a destination of 255.255.255.255 or the subnet's
	// directed broadcast: no ICMP error may answer it (RFC 1122 section
	// 3.2.2), nor TCP.
	Broadcast bool
	// LinkBroadcast is the caller's to set when the frame's Ethernet
	// destination was a broadcast or multicast address, which Input
	// cannot see: no ICMP error may answer it either.
	LinkBroadcast bool
}

// Input validates one received IPv4 packet, pkt being the bytes after the
// Ethernet header (trailing padding allowed), and reports whether it
// yields a datagram for the layers above. A bad packet is counted and
// dropped, never returned. A fragment is copied into reassembly memory and
// yields its datagram when it completes it.
//
// The returned Datagram's slices point into pkt, or into the layer's
// reassembly buffer, which the next call to Input may overwrite.
//
// Datagrams of every protocol are delivered; those of protocols other than
// ICMP, TCP and UDP are counted in InUnknownProtos rather than InDelivers,
// and the caller answers them with Unreachable(…, ICMPProtoUnreachable, …)
// (RFC 1122 section 3.2.2.1).
func (l *Layer) Input(now time.Duration, pkt []byte) (Datagram, bool) {
	st := &l.ipst
	st.InReceives++
	h := wire.IPv4(pkt)
	// RFC 1122 section 3.2.1.1 (version), 3.2.1.2 (checksum); RFC 791
	// section 3.1 (IHL of at least 5 words, total length within the frame).
	if h.Check() != nil {
		st.InHdrErrors++
		return Datagram{}, false
	}
	if !h.ChecksumValid() {
		st.InHdrErrors++
		st.InCsumErrors++
		return Datagram{}, false
	}
	h = h[:h.TotalLen()]
	src, dst := h.Src(), h.Dst()
	s, d := u32(src), u32(dst)
	// RFC 1122 section 3.2.1.3: accept our addresses and the broadcasts of
	// our subnet; we are no router, so anything else is not for us.
	// Multicast is not supported. The 4.2BSD broadcast forms (host part
	// zero) that section 3.3.6 says a host SHOULD accept are not: Linux
	// does not either.
	bcast := d == limitedBcast || l.bcast != 0 && d == l.bcast
	if !l.ours(d) && !bcast {
		st.InAddrErrors++
		return Datagram{}, false
	}
	// RFC 1122 section 3.2.1.3: a host MUST silently discard a datagram
	// whose source is not a valid host address. One of our own addresses
	// as source means a loop or a forgery.
	if !l.validSource(s) {
		st.InHdrErrors++
		return Datagram{}, false
	}
	// The TTL is not checked: it limits forwarding, which a host does not
	// do, so a datagram that reaches us with TTL 0 is still ours (Linux
	// accepts it too). Options are not processed, only skipped (their
	// bytes are inside HeaderLen); RFC 1122 section 3.2.1.8 asks a host to
	// pass them up and to reverse source routes, which no layer above
	// uses.
	if h.IsFragment() {
		whole, ok := l.reasm.add(now, fragment{
			key:  fragKey{src: s, dst: d, id: h.ID(), proto: h.Protocol()},
			off:  h.FragmentOffset(),
			more: h.MoreFragments(),
			hdr:  h[:h.HeaderLen()],
			data: h.Payload(),
		})
		if !ok {
			return Datagram{}, false
		}
		h = wire.IPv4(whole)
	}
	proto := h.Protocol()
	switch proto {
	case wire.ProtoICMP, wire.ProtoTCP, wire.ProtoUDP:
		st.InDelivers++
	default:
		st.InUnknownProtos++
	}
	return Datagram{Header: h, Src: src, Dst: dst, Proto: proto, Payload: h.Payload(), Broadcast: bcast}, true
}
