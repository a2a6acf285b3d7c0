package ip

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xdpnet/xdpnet/internal/wire"
)

func TestInputDeliversUDP(t *testing.T) {
	l := newLayer(t)
	p := udpTo(7, 10)
	d, ok := l.Input(0, p)
	require.True(t, ok)
	assert.Equal(t, peer, d.Src)
	assert.Equal(t, ours, d.Dst)
	assert.EqualValues(t, wire.ProtoUDP, d.Proto)
	assert.Equal(t, p[20:], d.Payload)
	assert.Equal(t, wire.IPv4(p), d.Header)
	assert.False(t, d.Broadcast)
	s := l.Stats().IP
	assert.EqualValues(t, 1, s.InReceives)
	assert.EqualValues(t, 1, s.InDelivers)
	checkInvariants(t, l)
}

func TestInputTrailingPaddingIgnored(t *testing.T) {
	l := newLayer(t)
	p := udpTo(7, 2)
	padded := append(append([]byte{}, p...), make([]byte, 16)...) // a minimum Ethernet frame
	d, ok := l.Input(0, padded)
	require.True(t, ok)
	assert.Equal(t, p[20:], d.Payload)
	assert.Len(t, d.Header, len(p))
}

// drop asserts that Input drops pkt and counts it in the counter that
// field reads.
func drop(t *testing.T, l *Layer, pkt []byte, field func(IPStats) uint64, msg string) {
	t.Helper()
	before := field(l.Stats().IP)
	_, ok := l.Input(0, pkt)
	assert.False(t, ok, msg)
	assert.Equal(t, before+1, field(l.Stats().IP), msg)
	checkInvariants(t, l)
}

func hdrErrors(s IPStats) uint64  { return s.InHdrErrors }
func addrErrors(s IPStats) uint64 { return s.InAddrErrors }
func csumErrors(s IPStats) uint64 { return s.InCsumErrors }

func TestInputTruncatedEveryLength(t *testing.T) {
	l := newLayer(t)
	p := udpTo(7, 40)
	for n := range len(p) {
		drop(t, l, p[:n], hdrErrors, fmt.Sprintf("truncated to %d bytes", n))
	}
	assert.EqualValues(t, len(p), l.Stats().IP.InHdrErrors)
	assert.Zero(t, l.Stats().IP.InDelivers)
}

func TestInputHeaderErrors(t *testing.T) {
	l := newLayer(t)
	base := func() []byte { return udpTo(7, 12) }

	p := base()
	p[11] ^= 0xff
	drop(t, l, p, csumErrors, "bad checksum counts InCsumErrors")
	p = base()
	p[25] ^= 1 // a payload bit: not the header checksum's business
	_, ok := l.Input(0, p)
	assert.True(t, ok, "the header checksum covers the header only")

	cases := map[string]func([]byte) []byte{
		"IHL 4":           func(b []byte) []byte { b[0] = 0x44; return fixSum(b) },
		"IHL 0":           func(b []byte) []byte { b[0] = 0x40; return b },
		"IHL beyond len":  func(b []byte) []byte { b[0] = 0x4f; return b[:40] },
		"total > frame":   func(b []byte) []byte { b[3]++; return fixSum(b) },
		"total < IHL":     func(b []byte) []byte { b[2], b[3] = 0, 19; return fixSum(b) },
		"version 6":       func(b []byte) []byte { b[0] = 0x65; return fixSum(b) },
		"version 0":       func(b []byte) []byte { b[0] = 0x05; return fixSum(b) },
		"options cut off": func(b []byte) []byte { b[0] = 0x46; b[2], b[3] = 0, 22; return fixSum(b)[:22] },
	}
	for name, f := range cases {
		drop(t, l, f(base()), hdrErrors, name)
	}
}

func TestInputSourceChecks(t *testing.T) {
	l := newLayer(t)
	for _, src := range []string{
		"255.255.255.255", // limited broadcast
		"198.18.0.255",    // our subnet's broadcast
		"224.0.0.1",       // multicast
		"239.1.2.3",
		"240.0.0.1", // reserved
		"0.0.0.0",   // this host
		"0.1.2.3",
		"127.0.0.1",  // loopback
		"198.18.0.1", // ourselves
	} {
		p := pk{src: netip.MustParseAddr(src), dst: ours, proto: wire.ProtoUDP, ttl: 9, payload: make([]byte, 8)}.build()
		drop(t, l, p, hdrErrors, src)
	}
}

func TestInputDestinationChecks(t *testing.T) {
	l := newLayer(t)
	for _, dst := range []string{"198.18.0.2", "203.0.113.1", "224.0.0.1", "198.18.0.0", "0.0.0.0", "198.18.1.255"} {
		p := pk{src: peer, dst: netip.MustParseAddr(dst), proto: wire.ProtoUDP, ttl: 9, payload: make([]byte, 8)}.build()
		drop(t, l, p, addrErrors, dst)
	}
	for _, dst := range []netip.Addr{subBc, allBc} {
		d, ok := l.Input(0, pk{src: peer, dst: dst, proto: wire.ProtoUDP, payload: make([]byte, 8)}.build())
		require.True(t, ok, dst)
		assert.True(t, d.Broadcast, dst)
	}
	checkInvariants(t, l)
}

func TestInputNoDirectedBroadcastOnSlash31(t *testing.T) {
	l := newLayer(t, func(c *Config) {
		c.Addr = netip.MustParsePrefix("198.18.0.0/31")
		c.Gateway = netip.MustParseAddr("198.18.0.1")
	})
	src := netip.MustParseAddr("198.18.0.1")
	_, ok := l.Input(0, pk{src: src, dst: netip.MustParseAddr("198.18.0.0"), proto: wire.ProtoUDP}.build())
	assert.True(t, ok, "RFC 3021: both addresses of a /31 are hosts")
}

func TestInputOptionsSkipped(t *testing.T) {
	l := newLayer(t)
	// Record route (7, length 7, pointer 4) padded with end-of-list.
	opts := []byte{7, 7, 4, 0, 0, 0, 0, 0}
	u := udpTo(9, 4)[20:]
	p := pk{src: peer, dst: ours, proto: wire.ProtoUDP, ttl: 1, opts: opts, payload: u}.build()
	d, ok := l.Input(0, p)
	require.True(t, ok)
	assert.Equal(t, u, d.Payload)
	assert.Equal(t, 28, d.Header.HeaderLen())
}

func TestInputTTLZeroAccepted(t *testing.T) {
	l := newLayer(t)
	_, ok := l.Input(0, pk{src: peer, dst: ours, proto: wire.ProtoTCP, ttl: 0, payload: make([]byte, 20)}.build())
	assert.True(t, ok, "TTL limits forwarding; a host accepts TTL 0")
}

func TestInputUnknownProtocol(t *testing.T) {
	l := newLayer(t)
	d, ok := l.Input(0, pk{src: peer, dst: ours, proto: 132, payload: make([]byte, 12)}.build())
	require.True(t, ok, "delivered, so that the caller can answer protocol unreachable")
	assert.EqualValues(t, 132, d.Proto)
	s := l.Stats().IP
	assert.EqualValues(t, 1, s.InUnknownProtos)
	assert.Zero(t, s.InDelivers)
	checkInvariants(t, l)
}
