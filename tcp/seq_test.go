package tcp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSeqComparesAcrossTheWrap(t *testing.T) {
	top := Seq(0xffff_fff0)
	past := top.Add(0x20) // wrapped to 0x10
	assert.EqualValues(t, 0x10, past)
	assert.True(t, top.LessThan(past), "a wrapped number is later")
	assert.False(t, past.LessThan(top))
	assert.True(t, top.LessEq(top))
	assert.False(t, top.LessThan(top))
	assert.EqualValues(t, 0x20, past.Sub(top))
	assert.EqualValues(t, -0x20, top.Sub(past))
}

func TestSeqInWindow(t *testing.T) {
	for _, start := range []Seq{0, 1000, 0xffff_ff00} { // the last window wraps
		assert.True(t, start.InWindow(start, 512), "the left edge is in")
		assert.True(t, start.Add(511).InWindow(start, 512), "the last byte is in")
		assert.False(t, start.Add(512).InWindow(start, 512), "the right edge is out")
		assert.False(t, (start-1).InWindow(start, 512), "before the window")
		assert.False(t, start.InWindow(start, 0), "a zero window holds nothing")
	}
}

var (
	local  = netip.MustParseAddrPort("198.18.0.2:40000")
	remote = netip.MustParseAddrPort("198.18.0.3:80")
)

func TestISN(t *testing.T) {
	g := NewISNs([16]byte{1, 2, 3})
	isn := g.ISN(time.Second, local, remote)
	assert.Equal(t, isn, g.ISN(time.Second, local, remote), "a function of the tuple and the time")
	assert.Equal(t, isn.Add(250_000), g.ISN(2*time.Second, local, remote), "M ticks every 4 µs")
	other := netip.AddrPortFrom(local.Addr(), 40001)
	assert.NotEqual(t, isn, g.ISN(time.Second, other, remote), "another connection gets an unrelated number")
	assert.NotEqual(t, isn, NewISNs([16]byte{9}).ISN(time.Second, local, remote), "the secret keys F")
	assert.NotEqual(t, NewISNs([16]byte{}).ISN(0, local, remote), NewISNs([16]byte{}).ISN(0, local, remote),
		"a zero secret draws a random key")
	assert.Zero(t, testing.AllocsPerRun(100, func() { g.ISN(time.Second, local, remote) }))
}

// TestISNsSpread: over many ports, ISNs are spread over the whole space,
// not clustered (a counter would put them all within a few thousand).
func TestISNsSpread(t *testing.T) {
	g := NewISNs([16]byte{7})
	var buckets [16]int
	for p := range 4096 {
		isn := g.ISN(0, netip.AddrPortFrom(local.Addr(), uint16(1024+p)), remote)
		buckets[isn>>28]++
	}
	for i, n := range buckets {
		assert.InDelta(t, 256, n, 80, "bucket %d of 16 holds %d of 4096", i, n) // > 5 sigma for a fair spread
	}
}
