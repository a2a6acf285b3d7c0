package ip

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// A secondary address of the tests' layer, and one of the subnet that
// is not ours.
var (
	second   = netip.MustParseAddr("198.18.0.11")
	notOurs  = netip.MustParseAddr("198.18.0.12")
	withSecd = func(c *Config) { c.Secondary = []netip.Addr{second} }
)

// TestSecondaryAddressIsOurs: datagrams to a secondary address are
// delivered as to the primary one, a neighbour of the subnet's is not;
// the address is local, and as a source from the wire it is a forgery.
func TestSecondaryAddressIsOurs(t *testing.T) {
	l := newLayer(t, withSecd)
	d, ok := l.Input(0, pk{src: peer, dst: second, proto: wire.ProtoUDP, ttl: 9, payload: make([]byte, 8)}.build())
	require.True(t, ok)
	assert.Equal(t, second, d.Dst)
	assert.False(t, d.Broadcast)
	drop(t, l, pk{src: peer, dst: notOurs, proto: wire.ProtoUDP, ttl: 9, payload: make([]byte, 8)}.build(), addrErrors, "another host")
	drop(t, l, pk{src: second, dst: ours, proto: wire.ProtoUDP, ttl: 9, payload: make([]byte, 8)}.build(), hdrErrors, "ourselves as source")
	assert.True(t, l.Local(second))
	assert.False(t, l.Local(notOurs))
	assert.Equal(t, ours, l.Addr(), "the primary address stays the default source")
	checkInvariants(t, l)
}

// TestSecondaryAddressAnswers: an echo request and a datagram to a
// closed port sent to a secondary address are answered from it (RFC 1122
// section 3.2.2.6; Linux's icmp_send for a local destination), and an
// error quoting a datagram we sent from it is ours.
func TestSecondaryAddressAnswers(t *testing.T) {
	l := newLayer(t, withSecd)
	out := make([]byte, 1500)
	d, ok := l.Input(0, echoRequest(second, 1, 2, []byte("ping"), 0))
	require.True(t, ok)
	n, _ := l.ICMPInput(0, d, out)
	require.Positive(t, n)
	assert.Equal(t, second, wire.IPv4(out[:n]).Src(), "the echo reply")
	assert.Equal(t, peer, wire.IPv4(out[:n]).Dst())

	d, ok = l.Input(0, pk{src: peer, dst: second, proto: wire.ProtoUDP, ttl: 9, payload: []byte{0, 1, 0, 2, 0, 8, 0, 0}}.build())
	require.True(t, ok)
	n = l.Unreachable(0, d, wire.ICMPPortUnreachable, out)
	require.Positive(t, n)
	h := wire.IPv4(out[:n])
	require.True(t, h.ChecksumValid())
	assert.Equal(t, second, h.Src(), "the port unreachable")
	assert.True(t, wire.ICMP(h.Payload()).ChecksumValid())

	// A port unreachable from peer about a datagram we sent from the
	// secondary address.
	sent := pk{src: second, dst: peer, proto: wire.ProtoUDP, ttl: 64, payload: []byte{0, 1, 0, 2, 0, 8, 0, 0}}.build()
	icmp := icmpMsg(wire.ICMPDestUnreachable, wire.ICMPPortUnreachable, 0, sent)
	d, ok = l.Input(0, pk{src: peer, dst: second, proto: wire.ProtoICMP, ttl: 9, payload: icmp}.build())
	require.True(t, ok)
	_, ev := l.ICMPInput(0, d, out)
	assert.Equal(t, EventError, ev.Kind)
	assert.Equal(t, second, ev.Src)
}

// TestSecondaryAddressConfig: each secondary address must be a host
// address of Addr's subnet, given once, and not the gateway; at most
// MaxSecondary.
func TestSecondaryAddressConfig(t *testing.T) {
	for _, bad := range []string{"198.18.1.5", "198.18.0.0", "198.18.0.255", "198.18.0.1", "198.18.0.254", "224.0.0.1", "::1"} {
		_, err := New(Config{Addr: netip.MustParsePrefix("198.18.0.1/24"), Gateway: gateway, Secondary: []netip.Addr{netip.MustParseAddr(bad)}})
		assert.ErrorIs(t, err, ErrConfig, bad)
	}
	_, err := New(Config{Addr: netip.MustParsePrefix("198.18.0.1/24"), Secondary: []netip.Addr{second, second}})
	assert.ErrorIs(t, err, ErrConfig, "twice")
	var many []netip.Addr
	for i := range MaxSecondary + 1 {
		many = append(many, netip.MustParseAddr(fmt.Sprintf("198.18.%d.%d", 1+i/200, 1+i%200)))
	}
	_, err = New(Config{Addr: netip.MustParsePrefix("198.18.0.1/16"), Secondary: many})
	assert.ErrorIs(t, err, ErrConfig, "too many")
	_, err = New(Config{Addr: netip.MustParsePrefix("198.18.0.1/16"), Secondary: many[:MaxSecondary]})
	assert.NoError(t, err)
}

// BenchmarkInputSecondary: a datagram to a secondary address of a stack
// with the most of them costs a map lookup more than one to the primary,
// and allocates nothing.
func BenchmarkInputSecondary(b *testing.B) {
	var many []netip.Addr
	for i := range MaxSecondary {
		many = append(many, netip.MustParseAddr(fmt.Sprintf("198.18.2.%d", 1+i)))
	}
	l := newLayer(b, func(c *Config) {
		c.Addr = netip.MustParsePrefix("198.18.0.1/16")
		c.Secondary = many
		c.Gateway = netip.Addr{}
	})
	p := pk{src: netip.MustParseAddr("198.18.1.1"), dst: many[100], proto: wire.ProtoUDP, ttl: 9, payload: make([]byte, 8)}.build()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := l.Input(0, p); !ok {
			b.Fatal("dropped")
		}
	}
}
