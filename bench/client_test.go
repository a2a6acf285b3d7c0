package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/product/services"
)

// TestChargenCheck: the poller-side chargen's stream, read in pieces of
// any size across the buffer's end, passes; one wrong byte does not, and
// the error says where.
func TestChargenCheck(t *testing.T) {
	cycle := services.ChargenCycle()
	var stream []byte
	for range 20 {
		stream = append(stream, cycle...)
	}
	c := chargenCheck{want: chargenBuffer()}
	for off, piece := 0, 1; off < len(stream); piece = piece*3 + 1 {
		end := min(off+piece, len(stream))
		require.NoError(t, c.next(stream[off:end]))
		off = end
	}
	stream[100_000] ^= 1
	c = chargenCheck{want: chargenBuffer()}
	err := c.next(stream)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "byte 100000 of the stream")
}

// TestReceived: a UDP sink's rows from what the client sent and the
// server counted; a count above what was sent is an error.
func TestReceived(t *testing.T) {
	m := map[string]float64{"sent": 1000, "send-s": 2}
	require.NoError(t, received(m, 900))
	assert.Equal(t, 450.0, m["pps"])
	assert.InDelta(t, 10.0, m["loss-%"], 1e-9)
	assert.Error(t, received(map[string]float64{"sent": 10, "send-s": 1}, 11))
	assert.Error(t, received(map[string]float64{"sent": 0, "send-s": 1}, 0))
}
