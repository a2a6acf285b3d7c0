package tcp_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// TestInfoTracksFlightAndWindow: Info's bytes in flight follow what is
// sent and acknowledged, its window the peer's last advertisement, cwnd
// the initial window and slow start, and a timeout sets the flight back
// to the one segment resent, cwnd to one segment.
func TestInfoTracksFlightAndWindow(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1000)
	const noSsthresh = 1<<32 - 1 // none yet: slow start's (RFC 5681 3.1)
	assert.Equal(t, tcp.Info{SndWnd: 512 << 7, Cwnd: 10000, Ssthresh: noSsthresh, SRTT: 10 * ms, RTO: 200 * ms}, c.Info())

	_, err := c.Write(data(0, 3000))
	require.NoError(t, err)
	for i, flags := range []string{".", ".", "P."} {
		p.expect(t, seg{flags: flags, seq: iss + 1 + uint32(1000*i), ack: peerISN + 1, win: fullWin, payload: data(1000*i, 1000)})
	}
	assert.Equal(t, uint32(3000), c.Info().InFlight)

	s.advance(10 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1001, win: 100})
	assert.Equal(t, tcp.Info{InFlight: 2000, SndWnd: 100 << 7, Cwnd: 11000, Ssthresh: noSsthresh, SRTT: 10 * ms, RTO: 200 * ms}, c.Info())

	// The RTO resends the first unacknowledged segment alone.
	s.advance(200 * ms)
	p.expect(t, seg{flags: ".", seq: iss + 1001, ack: peerISN + 1, win: fullWin, payload: data(1000, 1000)})
	info := c.Info()
	assert.Equal(t, uint32(1000), info.InFlight)
	assert.Equal(t, 400*ms, info.RTO, "backed off")
	assert.Equal(t, uint32(1000), info.Cwnd, "the loss window")
	assert.Equal(t, uint32(11000*7/10), info.Ssthresh, "CUBIC's beta of cwnd")
}
