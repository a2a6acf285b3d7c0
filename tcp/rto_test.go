package tcp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

const ms = time.Millisecond

func TestRTOInitialAndFirstSample(t *testing.T) {
	e := NewRTOEstimator(0, 0, 0)
	assert.Equal(t, time.Second, e.RTO(), "RFC 6298 2.1: 1 s before any sample")
	_, ok := e.SRTT()
	assert.False(t, ok)

	e.Sample(100 * ms)
	srtt, ok := e.SRTT()
	assert.True(t, ok)
	assert.Equal(t, 100*ms, srtt, "RFC 6298 2.2: SRTT = R")
	assert.Equal(t, 50*ms, e.RTTVar(), "RTTVAR = R/2")
	assert.Equal(t, 300*ms, e.RTO(), "SRTT + 4*RTTVAR")
}

func TestRTOLaterSamples(t *testing.T) {
	e := NewRTOEstimator(0, 0, 0)
	e.Sample(100 * ms)
	e.Sample(200 * ms)
	// RFC 6298 2.3: RTTVAR = 3/4*50 + 1/4*|100-200| = 62.5; SRTT = 7/8*100 + 1/8*200 = 112.5.
	assert.Equal(t, 62500*time.Microsecond, e.RTTVar())
	srtt, _ := e.SRTT()
	assert.Equal(t, 112500*time.Microsecond, srtt)
	assert.Equal(t, 362500*time.Microsecond, e.RTO())
}

func TestRTOClampsToMinimum(t *testing.T) {
	e := NewRTOEstimator(0, 0, 0)
	for range 50 {
		e.Sample(50 * time.Microsecond) // a LAN: RTTVAR decays towards 0
	}
	assert.Equal(t, DefaultMinRTO, e.RTO(), "never below the minimum (Linux's 200 ms)")
	e = NewRTOEstimator(10*ms, 0, 0)
	for range 50 {
		e.Sample(50 * time.Microsecond)
	}
	assert.Equal(t, 10*ms, e.RTO(), "the minimum is configurable")
}

func TestRTOBackoff(t *testing.T) {
	e := NewRTOEstimator(0, 0, 10*time.Second)
	e.Sample(100 * ms) // RTO 300 ms
	want := []time.Duration{600 * ms, 1200 * ms, 2400 * ms, 4800 * ms, 9600 * ms, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		e.Backoff()
		assert.Equal(t, w, e.RTO(), "after %d timeouts", i+1)
	}
	e.Sample(100 * ms)
	assert.Less(t, e.RTO(), 400*ms, "a new sample collapses the backoff (RFC 6298 5.7)")
}

func TestRTOBackoffBeforeAnySample(t *testing.T) {
	e := NewRTOEstimator(0, 0, 0)
	e.Backoff()
	e.Backoff()
	assert.Equal(t, 4*time.Second, e.RTO(), "SYN retransmissions back off from the initial 1 s")
	for range 100 {
		e.Backoff()
	}
	assert.Equal(t, DefaultMaxRTO, e.RTO(), "never past the maximum, and no overflow")
}
