package tcp

import "time"

// RTO defaults: Linux's minimum of 200 ms (RFC 6298 2.4 asks for 1 s;
// Linux and most stacks use less), RFC 6298 2.1's initial 1 s, and an
// upper bound of 120 s as Linux's TCP_RTO_MAX (2.5 allows one of at least
// 60 s).
const (
	DefaultMinRTO     = 200 * time.Millisecond
	DefaultInitialRTO = time.Second
	DefaultMaxRTO     = 120 * time.Second
)

// RTOEstimator computes the retransmission timeout of one connection as
// RFC 6298 does. Karn's rule (RFC 6298 3) is the caller's: it feeds Sample
// only with round trips of segments that were not retransmitted (or that
// timestamps make unambiguous, RFC 7323 4.1).
type RTOEstimator struct {
	srtt, rttvar time.Duration
	measured     bool
	backoff      uint // doublings since the last new sample (RFC 6298 5.5)
	min, max     time.Duration
	initial      time.Duration
	samples      uint64 // taken so far (the loss probe waits for one, tlp.go)
}

// NewRTOEstimator returns an estimator with the given bounds; zero values
// take the defaults.
func NewRTOEstimator(min, initial, max time.Duration) *RTOEstimator {
	e := &RTOEstimator{min: min, initial: initial, max: max}
	if e.min == 0 {
		e.min = DefaultMinRTO
	}
	if e.initial == 0 {
		e.initial = DefaultInitialRTO
	}
	if e.max == 0 {
		e.max = DefaultMaxRTO
	}
	return e
}

// RFC 6298 2's gains and clock granularity G (our clock is exact; G only
// keeps RTTVAR's term from vanishing).
const (
	rttAlpha    = 8 // 1/alpha = 1/8
	rttBeta     = 4 // 1/beta  = 1/4
	rttK        = 4
	granularity = time.Millisecond
)

// Sample takes a measured round trip. It resets the backoff: a new
// measurement shows the path works (RFC 6298 5.7 lets it collapse).
func (e *RTOEstimator) Sample(rtt time.Duration) {
	rtt = max(rtt, 0)
	if !e.measured {
		// RFC 6298 2.2: the first measurement.
		e.srtt, e.rttvar, e.measured = rtt, rtt/2, true
	} else {
		// RFC 6298 2.3: RTTVAR first, with the old SRTT.
		diff := e.srtt - rtt
		if diff < 0 {
			diff = -diff
		}
		e.rttvar += (diff - e.rttvar) / rttBeta
		e.srtt += (rtt - e.srtt) / rttAlpha
	}
	e.backoff = 0
	e.samples++
}

// Backoff doubles the timeout after a retransmission timeout fired (RFC
// 6298 5.5), up to the maximum.
func (e *RTOEstimator) Backoff() {
	if e.RTO() < e.max {
		e.backoff++
	}
}

// RTO is the current retransmission timeout: the initial one until a
// sample, then SRTT + max(G, K*RTTVAR), clamped to [min, max], doubled per
// backoff.
func (e *RTOEstimator) RTO() time.Duration {
	rto := e.initial
	if e.measured {
		rto = max(e.min, e.srtt+max(granularity, rttK*e.rttvar))
	}
	for range e.backoff {
		if rto >= e.max/2 {
			return e.max
		}
		rto *= 2
	}
	return min(rto, e.max)
}

// SRTT is the smoothed round-trip time, and whether any sample came yet
// (for the socket table).
func (e *RTOEstimator) SRTT() (time.Duration, bool) { return e.srtt, e.measured }

// RTTVar is the round-trip time variation.
func (e *RTOEstimator) RTTVar() time.Duration { return e.rttvar }
