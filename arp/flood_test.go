package arp

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// discard takes what Output writes and counts it, allocating nothing.
type discard struct {
	arp, ip int
	b       [2048]byte
}

// drain calls Output at now until it reports nothing.
func (d *discard) drain(c *Cache, now time.Duration) {
	for {
		out, ok := c.Output(now, d.b[:])
		if !ok {
			return
		}
		if out.EtherType == wire.EtherTypeARP {
			d.arp++
		} else {
			d.ip++
		}
	}
}

// flood feeds n ARP packets from random senders in 198.19.0.0/16 (on our
// link, apart from the test's neighbours), half of them addressed to us, in
// batches of 64 every gap with Output after each batch, as the poller
// would. It returns the time after the last batch.
func flood(c *Cache, rng *rand.Rand, now, gap time.Duration, n int) time.Duration {
	var out discard
	b := make([]byte, wire.ARPLen)
	for i := range n {
		mac := net.HardwareAddr{0x02, byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}
		sender := netip.AddrFrom4([4]byte{198, 19, byte(rng.Uint32()), byte(rng.Uint32())})
		target := ourIP
		if rng.IntN(2) == 0 {
			target = netip.AddrFrom4([4]byte{198, 19, byte(rng.Uint32()), byte(rng.Uint32())})
		}
		op := uint16(wire.ARPRequest + rng.IntN(2))
		wire.ARPFields{Op: op, SenderMAC: mac, SenderIP: sender, TargetIP: target}.Encode(b)
		c.Input(now, b)
		if i%64 == 63 {
			out.drain(c, now)
			now += gap
		}
	}
	out.drain(c, now)
	return now
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestFlood: 100,000 ARP packets from random senders keep the table within
// MaxEntries and displace neither a neighbour in use nor a static entry;
// 100,000 more, slow enough for the flood's entries to go stale and be
// displaced, churn the table without growing memory.
func TestFlood(t *testing.T) {
	c := newCache(t, Config{})
	rng := rand.New(rand.NewPCG(1, 2))
	c.Input(0, reply(macA, ipA, ourMAC, ourIP))
	require.NoError(t, c.AddStatic(0, ipB, macB))

	now := flood(c, rng, time.Millisecond, time.Millisecond, 100_000) // 1.6 s
	checkInvariants(t, c)
	s := c.Stats()
	assert.Equal(t, 1024, s.Entries)
	assert.Equal(t, Reachable, state(c, now, ipA), "a confirmed neighbour stays")
	assert.Greater(t, s.TableFull, uint64(10_000), "learning stops once the table is full of fresh entries")
	assert.Zero(t, s.Evictions)

	before := heapInUse()
	now = flood(c, rng, now, 50*time.Millisecond, 100_000) // 78 s
	after := heapInUse()
	checkInvariants(t, c)
	s = c.Stats()
	assert.Equal(t, 1024, s.Entries)
	assert.Greater(t, s.Evictions, uint64(1000), "stale entries were displaced")
	assert.Less(t, int64(after)-int64(before), int64(64<<10), "heap grew from %d to %d bytes", before, after)
	assert.Equal(t, Static, state(c, now, ipB))
	t.Logf("after %v: %+v", now, s)

	// The stack's own neighbours still resolve, and the flood cannot
	// displace them while they do.
	_, v := c.Resolve(now, ipC, nil)
	assert.Equal(t, Queued, v)
	flood(c, rng, now, time.Millisecond, 10_000)
	assert.Equal(t, Incomplete, state(c, now, ipC))
	checkInvariants(t, c)
}
