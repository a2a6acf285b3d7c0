package ip

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/siphash"
	"github.com/xdpnet/xdpnet/internal/wire"
)

func TestWriteHeader(t *testing.T) {
	l := newLayer(t)
	b := make([]byte, 20+100)
	n, err := l.WriteHeader(b, netip.Addr{}, far, wire.ProtoTCP, 100)
	require.NoError(t, err)
	require.Equal(t, HeaderLen, n)
	h := wire.IPv4(b)
	require.NoError(t, h.Check())
	assert.True(t, h.ChecksumValid())
	assert.Equal(t, 120, h.TotalLen())
	assert.Equal(t, 20, h.HeaderLen())
	assert.EqualValues(t, 64, h.TTL())
	assert.True(t, h.DontFragment(), "TCP sets DF")
	assert.False(t, h.IsFragment())
	assert.EqualValues(t, wire.ProtoTCP, h.Protocol())
	assert.Equal(t, ours, h.Src())
	assert.Equal(t, far, h.Dst())
	assert.EqualValues(t, 1, l.Stats().IP.OutRequests)

	_, err = l.WriteHeader(b, netip.Addr{}, far, wire.ProtoUDP, 100)
	require.NoError(t, err)
	assert.False(t, h.DontFragment(), "UDP: no DF by default")
	l = newLayer(t, func(c *Config) { c.DontFragmentUDP = true; c.TTL = 9 })
	_, err = l.WriteHeader(b, netip.Addr{}, far, wire.ProtoUDP, 100)
	require.NoError(t, err)
	assert.True(t, h.DontFragment(), "UDP with DontFragmentUDP")
	assert.EqualValues(t, 9, h.TTL())
}

func TestWriteHeaderErrors(t *testing.T) {
	l := newLayer(t)
	b := make([]byte, 1500)
	_, err := l.WriteHeader(b, netip.Addr{}, far, wire.ProtoTCP, 1480)
	assert.NoError(t, err, "exactly the MTU")
	_, err = l.WriteHeader(b, netip.Addr{}, far, wire.ProtoTCP, 1481)
	assert.ErrorIs(t, err, ErrTooBig)
	_, err = l.WriteHeader(b, netip.Addr{}, far, wire.ProtoUDP, -1)
	assert.ErrorIs(t, err, ErrTooBig)
	_, err = l.WriteHeader(b[:19], netip.Addr{}, far, wire.ProtoUDP, 0)
	assert.ErrorIs(t, err, ErrShortBuffer)
	_, err = l.WriteHeader(b, netip.Addr{}, netip.MustParseAddr("2001:db8::1"), wire.ProtoUDP, 0)
	assert.ErrorIs(t, err, ErrNotIPv4)
	assert.EqualValues(t, 1, l.Stats().IP.OutRequests)
}

// nextID writes a header to dst and returns its identification.
func nextID(t *testing.T, l *Layer, dst netip.Addr) uint16 {
	t.Helper()
	var b [20]byte
	_, err := l.WriteHeader(b[:], netip.Addr{}, dst, wire.ProtoUDP, 0)
	require.NoError(t, err)
	return wire.IPv4(b[:]).ID()
}

func TestIDsArePerDestination(t *testing.T) {
	a, b := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	l := newLayer(t)
	bucket := func(dst netip.Addr) uint64 {
		var m [8]byte
		binary.LittleEndian.PutUint32(m[:], u32(dst))
		m[4] = wire.ProtoUDP
		return siphash.Sum64(l.ids.k0, l.ids.k1, m[:]) % identBuckets
	}
	require.NotEqual(t, bucket(a), bucket(b), "the test wants distinct buckets")

	// Consecutive for one destination.
	first := nextID(t, l, a)
	for i := range 100 {
		assert.Equal(t, first+uint16(i+1), nextID(t, l, a))
	}
	// Sending to a does not move b: b's first ID is the same as on a
	// fresh layer that never sent to a.
	fresh := newLayer(t)
	assert.Equal(t, nextID(t, fresh, b), nextID(t, l, b))
	assert.Equal(t, nextID(t, fresh, b), nextID(t, l, b))
}

func TestIDsAreNotPredictableAcrossDestinations(t *testing.T) {
	l := newLayer(t)
	// With one global counter the first IDs of 1000 destinations would be
	// 1000 consecutive numbers; here they spread over the 16-bit space.
	seen := map[uint16]bool{}
	var prev uint16
	steps := 0
	for i := range 1000 {
		id := nextID(t, l, netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}))
		seen[id] = true
		if i > 0 && id-prev < 16 {
			steps++
		}
		prev = id
	}
	assert.Greater(t, len(seen), 980, "nearly all distinct")
	assert.Less(t, steps, 10, "the next destination's ID is not the previous one's plus a little")
	// A different secret gives different IDs for the same destination.
	other := newLayer(t, func(c *Config) { c.Secret[0]++ })
	diff := 0
	for i := range 100 {
		dst := netip.AddrFrom4([4]byte{203, 0, 0, byte(i)})
		if nextID(t, other, dst) != nextID(t, newLayer(t), dst) {
			diff++
		}
	}
	assert.Greater(t, diff, 95)
}
