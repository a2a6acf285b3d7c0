package ip

import (
	"errors"
	"net/netip"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Errors of WriteHeader.
var (
	// ErrTooBig: the datagram would exceed 65,535 bytes, or the link MTU
	// when it carries DF.
	ErrTooBig = errors.New("ip: datagram too big")
	// ErrShortBuffer: the buffer cannot hold a 20-byte header.
	ErrShortBuffer = errors.New("ip: buffer shorter than an IPv4 header")
	// ErrNotIPv4: the destination is not an IPv4 address.
	ErrNotIPv4 = errors.New("ip: destination is not IPv4")
)

// HeaderLen is the length of the header WriteHeader writes: 20 bytes, no
// options. A transmit frame reserves 14 bytes of Ethernet header and then
// HeaderLen bytes in front of the transport data.
const HeaderLen = headerLen

// WriteHeader writes into b[:20] the IPv4 header of a datagram from src
// (the transport's source; the zero Addr for the layer's address) to dst
// carrying payloadLen bytes of protocol proto, which the caller has
// written (or will write) at b[20:], and returns 20. The header has TTL
// Config.TTL, an identification from RFC 7739's hash-based generator (see
// idents), no options, and its checksum. DF is set for TCP (RFC 1191
// path MTU discovery) and, if Config.DontFragmentUDP, for UDP. It counts
// in OutRequests.
//
// A source in 127/8 reaches only ourselves (ErrNoRoute otherwise). The
// caller has chosen the next hop with Route. A datagram with DF must
// fit the link MTU; one without may be up to 65,535 bytes long (ErrTooBig
// otherwise), and the caller cuts it with Fragments and WriteFragment when
// it exceeds the path MTU.
func (l *Layer) WriteHeader(b []byte, src, dst netip.Addr, proto uint8, payloadLen int) (int, error) {
	df := proto == wire.ProtoTCP || proto == wire.ProtoUDP && l.cfg.DontFragmentUDP
	limit := maxPacket
	if df {
		limit = l.cfg.MTU
	}
	switch {
	case len(b) < headerLen:
		return 0, ErrShortBuffer
	case !dst.Is4():
		return 0, ErrNotIPv4
	case payloadLen < 0 || payloadLen > limit-headerLen:
		return 0, ErrTooBig
	case src.IsLoopback() && !l.Local(dst):
		// 127/8 never goes on the link (RFC 1122 section 3.2.1.3 (g)).
		return 0, ErrNoRoute
	}
	if !src.IsValid() {
		src = l.cfg.Addr.Addr()
	}
	l.writeIPFrom(b, src, dst, proto, headerLen+payloadLen, df, 0)
	return headerLen, nil
}

// writeIPFrom writes a 20-byte header from src to dst and counts it sent.
func (l *Layer) writeIPFrom(b []byte, src, dst netip.Addr, proto uint8, total int, df bool, tos uint8) {
	wire.IPv4Fields{
		TOS:          tos,
		TotalLen:     total,
		ID:           l.ids.next(u32(dst), proto),
		DontFragment: df,
		TTL:          l.cfg.TTL,
		Protocol:     proto,
		Src:          src,
		Dst:          dst,
	}.Encode(b)
	l.ipst.OutRequests++
}
