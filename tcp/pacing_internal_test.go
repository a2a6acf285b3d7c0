package tcp

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The pacing rate is tcp_update_pacing_rate's: 200 % of cwnd/SRTT while
// cwnd is below half ssthresh, 120 % from there (congestion avoidance,
// or a slow start near its end), of the flight instead when it is larger
// than cwnd (after a reduction); nothing without an RTT sample or with
// pacing off.
func TestPacingRateRatios(t *testing.T) {
	c := &Conn{pace: paceState{on: true}, rto: *NewRTOEstimator(0, 0, 0)}
	c.win = window{cwnd: 100_000, ssthresh: math.MaxUint32}
	assert.Zero(t, c.pacingRate(), "no RTT sample yet")
	c.rto.Sample(20 * time.Millisecond)
	assert.Equal(t, uint64(10_000_000), c.pacingRate(), "slow start: 200 %% of 100 kB per 20 ms")
	c.win.ssthresh = 200_002
	assert.Equal(t, uint64(10_000_000), c.pacingRate(), "cwnd below half ssthresh")
	c.win.ssthresh = 200_000
	assert.Equal(t, uint64(6_000_000), c.pacingRate(), "cwnd at half ssthresh: 120 %%")
	c.win.ssthresh = 70_000
	assert.Equal(t, uint64(6_000_000), c.pacingRate(), "congestion avoidance: 120 %%")
	c.sndMax = c.sndUna.Add(150_000)
	assert.Equal(t, uint64(9_000_000), c.pacingRate(), "the flight, above cwnd")
	c.pace.on = false
	assert.Zero(t, c.pacingRate(), "pacing off")
}
