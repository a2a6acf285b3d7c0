package tcp

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// RFC 6928 2's initial window, min(10*MSS, max(2*MSS, 14600)), at each of
// its three regimes.
func TestInitialWindowFormula(t *testing.T) {
	assert.Equal(t, uint32(5360), initialWindow(536))   // 10*MSS
	assert.Equal(t, uint32(14600), initialWindow(1460)) // both
	assert.Equal(t, uint32(14600), initialWindow(4000)) // 14600
	assert.Equal(t, uint32(17920), initialWindow(8960)) // 2*MSS
}

const smss = 1000

// cubicRounds acks a whole window every rtt, one segment per ACK, for d
// of virtual time after now, and returns the window (in segments) at
// the end of each round.
func cubicRounds(cu *cubic, w *window, now *time.Duration, rtt, d time.Duration) []float64 {
	var out []float64
	for end := *now + d; *now < end; {
		*now += rtt
		for range w.cwnd / smss {
			cu.onAck(w, *now, smss, smss, rtt)
		}
		out = append(out, float64(w.cwnd)/smss)
	}
	return out
}

// After a loss at W_max = 100 segments CUBIC sets ssthresh and the next
// stage's start to beta*W_max = 70 (RFC 9438 4.6), K = cbrt(W_max*(1-beta)/C)
// = cbrt(75) s, and then follows W_cubic(t) = C*(t-K)^3 + W_max (4.2):
// concave up to W_max at t = K, convex beyond (4.4, 4.5). With a 100 ms
// RTT the cubic curve sets the window, but on the plateau around K,
// where Reno's W_est (4.3: alpha per round, 1 once past cwnd_prior)
// passes it for a while.
func TestCubicGrowth(t *testing.T) {
	const rtt = 100 * time.Millisecond
	cu := &cubic{}
	w := &window{cwnd: 100 * smss, ssthresh: math.MaxUint32}
	now := time.Second
	cu.onLoss(w, now, w.cwnd, smss)
	assert.Equal(t, uint32(70*smss), w.ssthresh)
	assert.InDelta(t, 100, cu.wmax, 1e-9)
	w.cwnd = w.ssthresh // the recovery's end
	k := math.Cbrt(100 * (1 - cubicBeta) / cubicC)
	rounds := cubicRounds(cu, w, &now, rtt, 8*time.Second)
	assert.InDelta(t, k, cu.k, 1e-9)
	west, friendly := 70.0, 0
	for i, got := range rounds {
		// Each ACK moves cwnd towards W_cubic one RTT ahead of the ACK,
		// so at the end of a round the window is about W_cubic(t + RTT)
		// of the round's start: t = i*RTT, when its ACKs came.
		tt := (time.Duration(i) * rtt).Seconds()
		want := cubicC*math.Pow(tt+rtt.Seconds()-k, 3) + 100
		if west >= 100 {
			west++
		} else {
			west += cubicAlpha
		}
		if west > want {
			want = west
			friendly++
		}
		assert.InDelta(t, want, got, 0.02*want+1, "round %d (t=%.1fs)", i, tt)
	}
	assert.Greater(t, friendly, 5)
	assert.Less(t, friendly, len(rounds)/2)
	// Concave, then the plateau at W_max around K, then convex.
	atK := rounds[int(k/rtt.Seconds())]
	assert.InDelta(t, 100, atK, 1)
	assert.Greater(t, rounds[len(rounds)-1], 120.0)
}

// With a 1 ms RTT, Reno's W_est (RFC 9438 4.3) grows faster than the
// cubic curve: CUBIC is in the Reno-friendly region and follows
// W_est += alpha/cwnd per segment acked, alpha = 3*(1-beta)/(1+beta),
// until W_est passes the window before the loss (cwnd_prior, 100), and
// then as Reno, one segment per round.
func TestCubicRenoFriendly(t *testing.T) {
	const rtt = time.Millisecond
	cu := &cubic{}
	w := &window{cwnd: 100 * smss, ssthresh: math.MaxUint32}
	now := time.Second
	cu.onLoss(w, now, w.cwnd, smss)
	w.cwnd = w.ssthresh
	rounds := cubicRounds(cu, w, &now, rtt, 100*rtt)
	west := 70.0
	for i, got := range rounds {
		alpha := cubicAlpha
		if west >= 100 {
			alpha = 1
		}
		west += alpha // a window of segments, each adding alpha/cwnd
		assert.InDelta(t, west, got, 1, "round %d", i)
	}
	assert.Greater(t, rounds[len(rounds)-1], 100.0)
	assert.Less(t, cu.wCubic((now - cu.epoch).Seconds()), cu.west)
}

// Fast convergence (RFC 9438 4.7): a loss before the window got back to
// W_max sets W_max to cwnd*(1+beta)/2, releasing bandwidth to a newer
// flow. A timeout (4.8) clears W_max: the next stage starts with K = 0
// at the window it reaches. Idle time moves the stage's start.
func TestCubicFastConvergenceAndTimeout(t *testing.T) {
	cu := &cubic{}
	w := &window{cwnd: 100 * smss}
	cu.onLoss(w, 0, w.cwnd, smss)
	w.cwnd = 80 * smss
	cu.onLoss(w, 0, w.cwnd, smss)
	assert.InDelta(t, 80*(1+cubicBeta)/2, cu.wmax, 1e-9)
	assert.Equal(t, uint32(56*smss), w.ssthresh)

	cu.onRTO(w, 0, w.cwnd, smss, true)
	assert.Equal(t, uint32(56*smss), w.ssthresh)
	w.cwnd = 60 * smss
	cu.onAck(w, time.Second, smss, smss, 10*time.Millisecond)
	assert.Zero(t, cu.k)
	assert.InDelta(t, 60, cu.origin, 1e-9)
	epoch := cu.epoch
	cu.onIdle(5 * time.Second)
	assert.Equal(t, epoch+5*time.Second, cu.epoch)
	// A second timeout in a row keeps ssthresh (RFC 5681 3.1).
	cu.onRTO(w, 0, w.cwnd, smss, false)
	assert.Equal(t, uint32(56*smss), w.ssthresh)
}

// Reno's congestion avoidance by byte counting (RFC 3465 2.1): one SMSS
// per window of bytes acknowledged, however the ACKs divide it.
func TestRenoAvoidance(t *testing.T) {
	w := &window{cwnd: 10 * smss, ssthresh: 5 * smss}
	for range 20 {
		reno{}.onAck(w, 0, smss/2, smss, 0)
	}
	assert.Equal(t, uint32(11*smss), w.cwnd)
	reno{}.onLoss(w, 0, 8*smss, smss)
	assert.Equal(t, uint32(4*smss), w.ssthresh)
	reno{}.onLoss(w, 0, 3*smss, smss)
	assert.Equal(t, uint32(2*smss), w.ssthresh)
}

// NewReno's recover trails SND.UNA once passed: after 3 GiB without a
// loss (past half the sequence space, where a recover left at the ISS
// would compare as ahead) three duplicate ACKs still start a recovery.
func TestRecoverTrailsSndUna(t *testing.T) {
	local := netip.MustParseAddrPort("198.18.0.2:5001")
	tb, err := New(Config{Addrs: []netip.Addr{local.Addr()}})
	require.NoError(t, err)
	c := tb.newConn(local, netip.MustParseAddrPort("198.18.0.1:40000"), 1000, false)
	c.mss, c.ts, c.synAcked = 1000, false, true
	c.sndUna, c.sndNxt, c.sndMax = c.iss.Add(1), c.iss.Add(1), c.iss.Add(1)
	c.startWindow()
	for range 3 << 10 {
		ack := c.sndUna.Add(1 << 20)
		c.sndMax = ack.Add(10000)
		c.ackedWindow(&segment{ack: ack}, 1<<20)
		c.sndUna = ack
	}
	for range 3 {
		c.dupAck()
	}
	assert.True(t, c.inRecovery)
	assert.True(t, c.fastRetransmit)
}
