package ip

import (
	"net/netip"

	"github.com/xdpnet/xdpnet/internal/neterr"
)

// ErrNoRoute is Route's error for a destination it cannot reach: ENETUNREACH,
// as Linux's connect and sendto give for it.
var ErrNoRoute = neterr.ErrNetUnreachable

// limitedBcast is 255.255.255.255 (RFC 1122 section 3.2.1.3 (c)).
const limitedBcast = 0xffffffff

// Route decides where a datagram to dst goes first (RFC 1122 section
// 3.3.1.1): dst itself when it is on the link (inside our subnet,
// including its directed broadcast, or the limited broadcast), else the
// gateway; a Local destination is its own next hop, which the poller
// delivers on its loopback path without the link. It fails with
// ErrNoRoute, counted in OutNoRoutes, for a destination off the link
// without a gateway, for multicast (not supported) and for addresses that
// name no host (0/8, 240/4). The poller resolves the next hop's link
// address with ARP.
func (l *Layer) Route(dst netip.Addr) (nextHop netip.Addr, err error) {
	if dst.Is4() {
		d := u32(dst)
		switch {
		case d == limitedBcast || l.Local(dst):
			return dst, nil
		case martian(d):
		case d&l.mask == l.addr&l.mask:
			return dst, nil
		case l.gw != 0:
			return l.cfg.Gateway, nil
		}
	}
	l.ipst.OutNoRoutes++
	return netip.Addr{}, ErrNoRoute
}

// Local reports whether dst is this host: one of our addresses or
// loopback's 127/8 (RFC 1122 section 3.2.1.3 (g)), which never go on the
// link.
func (l *Layer) Local(dst netip.Addr) bool {
	return dst.Is4() && (l.ours(u32(dst)) || dst.IsLoopback())
}

// LoopbackAddr is the local address of loopback, 127.0.0.1: the source
// of what we send to 127/8, as Linux's lo.
var LoopbackAddr = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// martian reports addresses that name no single remote host (RFC 1122
// section 3.2.1.3): "this network" 0/8, loopback 127/8, multicast 224/4
// (RFC 1112) and reserved 240/4 with the limited broadcast in it.
func martian(a uint32) bool {
	switch a >> 24 {
	case 0, 127:
		return true
	}
	return a >= 0xe0000000
}

// validSource reports whether a may be the source of a datagram we accept
// and answer: a single remote host (RFC 1122 sections 3.2.1.3 and 3.2.2),
// neither ours nor our subnet's broadcast.
func (l *Layer) validSource(a uint32) bool {
	return !martian(a) && !l.ours(a) && (l.bcast == 0 || a != l.bcast)
}
