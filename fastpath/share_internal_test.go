package fastpath

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// TestARPRingOrderUnderConcurrency passes 100,000 packets from a producer
// goroutine to a consumer goroutine through a ring much smaller than
// that: each arrives once, whole and in order (with -race, the atomics
// also order the slot copies).
func TestARPRingOrderUnderConcurrency(t *testing.T) {
	const total = 100_000
	r := &arpRing{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pkt := make(wire.ARP, wire.ARPLen)
		for i := uint32(0); i < total; {
			binary.BigEndian.PutUint32(pkt, i)
			binary.BigEndian.PutUint32(pkt[wire.ARPLen-4:], ^i)
			if r.put(pkt) {
				i++
			}
		}
	}()
	next := uint32(0)
	for next < total {
		r.drain(func(a wire.ARP) {
			if binary.BigEndian.Uint32(a) != next || binary.BigEndian.Uint32(a[wire.ARPLen-4:]) != ^next {
				t.Fatalf("packet %d arrived as %x", next, a)
			}
			next++
		})
	}
	wg.Wait()
	assert.EqualValues(t, total, next)
}

func TestARPRingFull(t *testing.T) {
	r := &arpRing{}
	pkt := make(wire.ARP, wire.ARPLen)
	for range arpRingSize {
		assert.True(t, r.put(pkt))
	}
	assert.False(t, r.put(pkt), "full")
	n := 0
	r.drain(func(wire.ARP) { n++ })
	assert.Equal(t, arpRingSize, n)
	assert.True(t, r.put(pkt), "room again")
}
