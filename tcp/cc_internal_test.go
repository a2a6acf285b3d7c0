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

// cubicRound is the state at the end of one round of cubicRounds: the
// window in segments, and when the round's last ACK came.
type cubicRound struct {
	cwnd float64
	at   time.Duration
}

// cubicRounds acks a whole window every rtt, one segment per ACK, the
// ACKs spread evenly over the round trip as an ACK clock spaces them,
// for d of virtual time after now, and returns each round's end.
func cubicRounds(cu *cubic, w *window, now *time.Duration, rtt, d time.Duration) []cubicRound {
	var out []cubicRound
	for end := *now + d; *now < end; {
		start, n := *now, w.cwnd/smss
		for j := range n {
			*now = start + rtt*time.Duration(j+1)/time.Duration(n)
			cu.onAck(w, ackEvent{now: *now, acked: smss, smss: smss, srtt: rtt})
		}
		out = append(out, cubicRound{float64(w.cwnd) / smss, *now})
	}
	return out
}

// After a loss at W_max = 100 segments CUBIC sets ssthresh and the next
// stage's start to beta*W_max = 70 (RFC 9438 4.6), K = cbrt(W_max*(1-beta)/C)
// = cbrt(75) s, and then follows W_cubic(t) = C*(t-K)^3 + W_max (4.2),
// to a segment: concave up to W_max at t = K, convex beyond (4.4, 4.5).
// With a 100 ms RTT the cubic curve sets the window, but on the plateau
// around K, where Reno's W_est (4.3: alpha per round, 1 once past
// cwnd_prior) passes it for a while.
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
	epoch := time.Second + rtt/70 // the first ACK of congestion avoidance
	west, friendly := 70.0, 0
	for i, r := range rounds {
		// Each ACK moves cwnd towards W_cubic one RTT ahead by
		// (target-cwnd)/cwnd, which over a round of ACKs keeps the
		// window on the curve itself: W_cubic(t) at each ACK's t.
		tt := (r.at - epoch).Seconds()
		want := cubicC*math.Pow(tt-k, 3) + 100
		if west >= 100 {
			west++
		} else {
			west += cubicAlpha
		}
		if west > want {
			want = west
			friendly++
		}
		assert.InDelta(t, want, r.cwnd, 1, "round %d (t=%.2fs)", i, tt)
	}
	assert.Greater(t, friendly, 5)
	assert.Less(t, friendly, len(rounds)/2)
	// Concave, then the plateau at W_max around K, then convex.
	atK := rounds[int(k/rtt.Seconds())]
	assert.InDelta(t, 100, atK.cwnd, 1)
	assert.Greater(t, rounds[len(rounds)-1].cwnd, 120.0)
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
	for i, r := range rounds {
		alpha := cubicAlpha
		if west >= 100 {
			alpha = 1
		}
		west += alpha // a window of segments, each adding alpha/cwnd
		assert.InDelta(t, west, r.cwnd, 1, "round %d", i)
	}
	assert.Greater(t, rounds[len(rounds)-1].cwnd, 100.0)
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
	cu.onAck(w, ackEvent{now: time.Second, acked: smss, smss: smss, srtt: 10 * time.Millisecond})
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
		reno{}.onAck(w, ackEvent{acked: smss / 2, smss: smss})
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
	c.mss, c.ts, c.sack, c.synAcked = 1000, false, false, true // NewReno: no SACK
	c.sndUna, c.sndNxt, c.sndMax = c.iss.Add(1), c.iss.Add(1), c.iss.Add(1)
	c.startWindow()
	for range 3 << 10 {
		ack := c.sndUna.Add(1 << 20)
		c.sndMax = ack.Add(10000)
		c.ackedWindow(&segment{ack: ack}, 1<<20, 0, false)
		c.sndUna = ack
	}
	for range 3 {
		c.dupAck()
	}
	assert.True(t, c.inRecovery)
	assert.True(t, c.fastRetransmit)
}

// slowStartSim drives CUBIC's slow start as a sender with a window of
// data in flight whose segments are acknowledged one per ACK, gap apart,
// each ACK carrying an RTT sample and letting the sender fill cwnd
// again. The gap is 3 ms unless a test sets it: wider than an ACK
// train's 2 ms, so only RFC 9406's delay rule can end slow start.
type slowStartSim struct {
	cu       cubic
	w        window
	una, nxt Seq
	now, gap time.Duration
	paced    bool
	stats    ConnStats
	tstats   Stats
}

func newSlowStartSim() *slowStartSim {
	s := &slowStartSim{w: window{cwnd: initialWindow(smss), ssthresh: math.MaxUint32}, gap: 3 * time.Millisecond}
	s.nxt = s.una.Add(s.w.cwnd)
	return s
}

// ack acknowledges the next segment with RTT sample rtt.
func (s *slowStartSim) ack(rtt time.Duration) {
	s.una = s.una.Add(smss)
	s.now += s.gap
	s.cu.onAck(&s.w, ackEvent{now: s.now, acked: smss, smss: smss, srtt: rtt, rtt: rtt, hasRTT: true,
		una: s.una, nxt: s.nxt, paced: s.paced, stats: &s.stats, tstats: &s.tstats})
	s.nxt = s.una.Add(s.w.cwnd)
}

// round runs one of HyStart++'s rounds (RFC 9406 4.2) with every RTT
// sample rtt: from the ACK that reaches the last round's windowEnd (it
// starts the round) up to the one before the ACK that reaches this
// one's. It returns the bytes acknowledged and by how much cwnd grew.
func (s *slowStartSim) round(rtt time.Duration) (acked, grew uint32) {
	before := s.w.cwnd
	for {
		s.ack(rtt)
		acked += smss
		if !s.una.Add(smss).LessThan(s.cu.hs.windowEnd) {
			return acked, s.w.cwnd - before
		}
	}
}

// HyStart++ (RFC 9406): slow start doubles cwnd per round while the
// RTT holds; a round whose minimum RTT is RttThresh = max(4 ms, min(last
// round's / 8, 16 ms)) above the last round's ends it after its eighth
// sample. Conservative Slow Start then grows cwnd by a quarter of what
// is acknowledged for CSS_ROUNDS = 5 rounds (the one it began in
// counted), and congestion avoidance starts with ssthresh = cwnd.
func TestHystartExitAndCSS(t *testing.T) {
	s := newSlowStartSim()
	for i := range 4 {
		acked, grew := s.round(10 * time.Millisecond)
		require.Equal(t, acked, grew, "slow start round %d: cwnd grows by every byte acked", i)
	}
	require.Zero(t, s.stats.HystartDelayDetect)
	acked, grew := s.round(14 * time.Millisecond) // 10 ms + the 4 ms floor
	require.True(t, s.cu.hs.css)
	assert.Equal(t, uint64(1), s.stats.HystartDelayDetect)
	assert.Equal(t, uint64(1), s.tstats.HystartDelayDetect)
	// Full growth up to the eighth sample, a quarter after it.
	assert.Equal(t, 8*smss+(acked-8*smss)/4, grew)
	for i := range 4 {
		acked, grew := s.round(14 * time.Millisecond)
		assert.Equal(t, acked/hystartCSSGrowthDiv, grew, "CSS round %d", i+2)
		assert.Equal(t, uint32(math.MaxUint32), s.w.ssthresh, "CSS round %d", i+2)
	}
	// The ACK that ends the fifth CSS round enters congestion avoidance.
	cwnd := s.w.cwnd
	s.ack(14 * time.Millisecond)
	assert.Equal(t, cwnd, s.w.ssthresh)
	assert.False(t, s.cu.hs.css)
	assert.Zero(t, s.stats.HystartCSSResumes)
	assert.Less(t, s.w.cwnd, cwnd+smss, "congestion avoidance's growth")
}

// An RTT that falls below CSS's baseline (the round's minimum when CSS
// began) shows the exit spurious: slow start resumes after the round's
// eighth sample (RFC 9406 4.2), full growth again, and HyStart++ watches
// on: a later rise ends it again.
func TestHystartCSSResume(t *testing.T) {
	s := newSlowStartSim()
	for range 4 {
		s.round(20 * time.Millisecond)
	}
	s.round(25 * time.Millisecond)
	require.True(t, s.cu.hs.css)
	acked, grew := s.round(24 * time.Millisecond)
	assert.False(t, s.cu.hs.css)
	assert.Equal(t, uint64(1), s.stats.HystartCSSResumes)
	assert.Equal(t, uint64(1), s.tstats.HystartCSSResumes)
	assert.Equal(t, 8*smss/4+(acked-8*smss), grew)
	acked, grew = s.round(24 * time.Millisecond)
	assert.Equal(t, acked, grew, "slow start again")
	s.round(29 * time.Millisecond)
	assert.True(t, s.cu.hs.css)
	assert.Equal(t, uint64(2), s.stats.HystartDelayDetect)
	assert.Equal(t, uint32(math.MaxUint32), s.w.ssthresh)
}

// RttThresh is RFC 9406's max(MIN_RTT_THRESH, min(lastRoundMinRTT /
// MIN_RTT_DIVISOR, MAX_RTT_THRESH)): 4 ms at 10 ms, 12.5 ms at 100 ms,
// 16 ms at 200 ms. An increase just short of it keeps slow start.
func TestHystartThreshold(t *testing.T) {
	for _, tc := range []struct{ base, thresh time.Duration }{
		{10 * time.Millisecond, 4 * time.Millisecond},
		{100 * time.Millisecond, 12500 * time.Microsecond},
		{200 * time.Millisecond, 16 * time.Millisecond},
	} {
		for _, rise := range []time.Duration{tc.thresh - time.Microsecond, tc.thresh} {
			s := newSlowStartSim()
			s.round(tc.base)
			s.round(tc.base)
			s.round(tc.base + rise)
			assert.Equal(t, rise == tc.thresh, s.cu.hs.css, "base %v, rise %v", tc.base, rise)
		}
	}
}

// Linux's ACK train (cc.go's hystart): ACKs 1 ms apart at a constant
// 10 ms RTT, as from a bottleneck the sender's bursts queue at, end slow
// start once a round's train lasts longer than half the least RTT plus
// Linux's cushion (1 ms here: 256 KiB take longer at 2·cwnd/SRTT), 5.5
// ms, or the whole 11 ms for a paced connection; not while cwnd is below
// 16 segments, though the first rounds' trains are long enough. ssthresh
// is cwnd then, without CSS.
func TestHystartACKTrain(t *testing.T) {
	for _, tc := range []struct {
		paced bool
		after time.Duration // into the round of the exit's ACK
	}{{false, 6 * time.Millisecond}, {true, 12 * time.Millisecond}} {
		s := newSlowStartSim()
		s.gap, s.paced = time.Millisecond, tc.paced
		for s.w.ssthresh == math.MaxUint32 {
			start, cwnd := s.cu.hs.roundStart, s.w.cwnd
			s.ack(10 * time.Millisecond)
			if s.w.ssthresh != math.MaxUint32 {
				assert.Equal(t, tc.after, s.now-start, "paced %v", tc.paced)
				assert.Equal(t, cwnd, s.w.ssthresh, "paced %v", tc.paced)
				assert.GreaterOrEqual(t, cwnd, uint32(hystartLowWindow*smss), "paced %v", tc.paced)
			}
		}
		assert.Equal(t, uint64(1), s.stats.HystartTrainDetect)
		assert.Equal(t, uint64(1), s.tstats.HystartTrainDetect)
		assert.Zero(t, s.stats.HystartDelayDetect)
		assert.Equal(t, hystart{}, s.cu.hs)
	}
}

// A gap of more than 2 ms ends a train, and the next ACK starts a new
// one: the exit comes 6 ms after the gap (unpaced), not counted from
// the round's start.
func TestHystartACKTrainRestarts(t *testing.T) {
	s := newSlowStartSim()
	s.gap = time.Millisecond
	s.round(10 * time.Millisecond) // cwnd 20 segments after
	s.ack(10 * time.Millisecond)   // the next round's first ACK
	s.now += 2*time.Millisecond + time.Nanosecond
	s.ack(10 * time.Millisecond) // after the gap: a new train
	start := s.now
	for s.w.ssthresh == math.MaxUint32 {
		s.ack(10 * time.Millisecond)
	}
	assert.Equal(t, 6*time.Millisecond, s.now-start)
	assert.Equal(t, uint64(1), s.stats.HystartTrainDetect)
}

// A loss ends HyStart++ (RFC 9406 4.2): the ssthresh it sets stops the
// next slow start, and HyStart++ runs only in the initial one (4.3).
func TestHystartOnlyInitialSlowStart(t *testing.T) {
	s := newSlowStartSim()
	s.round(10 * time.Millisecond)
	s.round(10 * time.Millisecond)
	s.cu.onLoss(&s.w, s.now, s.w.cwnd, smss)
	assert.Equal(t, hystart{}, s.cu.hs)
	s.w.cwnd = 2 * smss // below ssthresh: slow start, not HyStart++'s
	s.round(10 * time.Millisecond)
	assert.Equal(t, hystart{}, s.cu.hs)
}
