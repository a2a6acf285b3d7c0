package fastpath

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoopQueueBounds: the loopback queue holds at most loopbackPackets
// packets and loopbackBytes bytes, and refuses what would exceed either.
func TestLoopQueueBounds(t *testing.T) {
	var q loopQueue
	small := make([]byte, 40)
	for range loopbackPackets {
		require.True(t, q.put(small))
	}
	assert.False(t, q.put(small), "past the packet bound")

	q = loopQueue{}
	big := make([]byte, 65535)
	for range loopbackBytes / len(big) {
		require.True(t, q.put(big))
	}
	assert.False(t, q.put(big), "past the byte bound")
	rest := loopbackBytes % len(big)
	assert.True(t, q.put(make([]byte, rest)), "what still fits does")
	assert.False(t, q.put(make([]byte, 1)), "full")
}

// TestLoopbackDropsCounted: a packet the full queue refuses is counted.
func TestLoopbackDropsCounted(t *testing.T) {
	p := &Poller{}
	pkt := make([]byte, 40)
	for range loopbackPackets + 3 {
		p.loopback(pkt)
	}
	assert.Equal(t, uint64(3), p.stats.LoopbackDrops)
}
