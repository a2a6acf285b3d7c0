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

// A burst is max(2 segments, 1 ms of data at the rate), and each segment
// moves the next release by its time at the rate: at the floor (a slow
// path), at 1 ms of data, and at a rate so high (a 1 µs SRTT, the
// largest cwnd) that the burst's size, computed naively, would overflow.
func TestPacingQuantum(t *testing.T) {
	tb, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tb.now = time.Second // the burst begins late: half a quantum of credit
	for _, tc := range []struct {
		name string
		cwnd uint32
		srtt time.Duration
		left int
		gap  time.Duration // of a 1000-byte segment
	}{
		{"2 segments", 10_000, 100 * time.Millisecond, 2 * 1460, 5 * time.Millisecond},   // 200 kB/s
		{"1 ms of data", 100_000, 10 * time.Millisecond, 20_000, 50 * time.Microsecond},  // 20 MB/s
		{"no overflow", maxCwnd, time.Microsecond, 2 * maxCwnd * 1000, time.Duration(0)}, // 2.1 PB/s
	} {
		c := &Conn{t: tb, mss: 1460, pace: paceState{on: true}, rto: *NewRTOEstimator(0, 0, 0)}
		c.win = window{cwnd: tc.cwnd, ssthresh: math.MaxUint32}
		c.rto.Sample(tc.srtt)
		c.stats.DataSegsOut = paceUnpaced + 1
		c.paceSent(1000)
		assert.Equal(t, tc.left-1000, c.pace.left, "%s: the burst left", tc.name)
		assert.Equal(t, tb.now-paceQuantumTime/2+tc.gap, c.pace.at, "%s: the next release", tc.name)
	}
}
