package tcp

import (
	"fmt"
	"math"
	"syscall"
	"time"
)

// Congestion control names, as Linux's TCP_CONGESTION spells them.
const (
	CongestionCubic = "cubic" // RFC 9438, the default
	CongestionReno  = "reno"  // RFC 5681 with RFC 6582's NewReno recovery
)

// window is a connection's congestion state that every algorithm shares:
// RFC 5681's cwnd and ssthresh, in bytes. Loss recovery (NewReno's fast
// recovery, the timeout's loss window) is the connection's (recovery.go);
// an algorithm only decides how cwnd grows and what a loss sets it to.
type window struct {
	cwnd, ssthresh uint32
	// acked counts the bytes acknowledged since cwnd last grew in
	// congestion avoidance (RFC 3465 2.1's bytes_acked).
	acked uint32
}

// congestionControl is one algorithm. Its value lives in the Conn (a
// zero-size reno, or a pointer to the Conn's cubic), so calls through it
// allocate nothing.
type congestionControl interface {
	// onAck grows w for an ACK of new data outside loss recovery.
	onAck(w *window, a ackEvent)
	// onLoss sets w.ssthresh when fast retransmit finds a loss; flight
	// is RFC 5681's FlightSize. The caller sets cwnd for the recovery.
	onLoss(w *window, now time.Duration, flight, smss uint32)
	// onRTO sets w.ssthresh after a retransmission timeout (first: not
	// one of a segment the timer resent already, RFC 5681 3.1); the
	// caller sets the loss window.
	onRTO(w *window, now time.Duration, flight, smss uint32, first bool)
	// onIdle is told that sending resumes after idle, for so long.
	onIdle(idle time.Duration)
	name() string
}

// ackEvent is what an algorithm learns from an ACK of new data outside
// loss recovery. It goes by value: a pointer through the interface would
// escape, an allocation per ACK.
type ackEvent struct {
	now time.Duration
	// acked is the bytes newly acknowledged that cwnd may grow by: none
	// when the flight did not use the window (congestion window
	// validation, RFC 7661; Conn.cwndValidated).
	acked, smss uint32
	srtt        time.Duration // the smoothed round-trip time
	rtt         time.Duration // this ACK's round-trip sample, if hasRTT
	hasRTT      bool
	una, nxt    Seq  // SND.UNA after the ACK, and SND.NXT: HyStart++'s rounds
	paced       bool // the connection paces (pacing.go): the ACK train's threshold
	stats       *ConnStats
	tstats      *Stats
}

// initialWindow is RFC 6928 2's: min(10*MSS, max(2*MSS, 14600)).
func initialWindow(smss uint32) uint32 { return min(10*smss, max(2*smss, 14600)) }

// slowStart grows cwnd below ssthresh by every byte acknowledged (RFC
// 5681 3.1, counting bytes as RFC 3465 2.2), up to ssthresh, and returns
// what is left of acked for congestion avoidance. Unlike RFC 3465's
// L = 2*SMSS per ACK, no cap, as Linux's tcp_slow_start: stretch ACKs are
// the rule (this stack acknowledges a whole receive batch at once, Linux
// a GRO batch), and a cap of 2 segments per ACK made slow start grow by
// about 2 segments per round trip (the pipe link's clean goodput, 4 MiB
// at 10 ms RTT: 8.1 MB/s with the cap, 11.5 without).
func (w *window) slowStart(acked uint32) uint32 {
	if w.cwnd >= w.ssthresh {
		return acked
	}
	n := min(acked, w.ssthresh-w.cwnd)
	w.cwnd += n
	w.acked = 0
	return acked - n
}

// reno is RFC 5681's congestion control.
type reno struct{}

func (reno) name() string { return CongestionReno }

// onAck: slow start, then congestion avoidance by byte counting (RFC
// 3465 2.1): one SMSS per cwnd of bytes acknowledged.
func (reno) onAck(w *window, a ackEvent) {
	acked := w.slowStart(a.acked)
	if acked == 0 {
		return
	}
	w.acked += acked
	if w.acked >= w.cwnd {
		w.acked -= w.cwnd
		w.cwnd += a.smss
	}
}

// renoSsthresh is RFC 5681's equation (4): max(FlightSize/2, 2*SMSS).
func renoSsthresh(flight, smss uint32) uint32 { return max(flight/2, 2*smss) }

func (reno) onLoss(w *window, _ time.Duration, flight, smss uint32) {
	w.ssthresh = renoSsthresh(flight, smss)
}

func (reno) onRTO(w *window, _ time.Duration, flight, smss uint32, first bool) {
	if first { // RFC 5681 3.1: held constant on a repeated timeout
		w.ssthresh = renoSsthresh(flight, smss)
	}
}

func (reno) onIdle(time.Duration) {}

// CUBIC's constants (RFC 9438 4.1, 4.3).
const (
	cubicC     = 0.4
	cubicBeta  = 0.7
	cubicAlpha = 3 * (1 - cubicBeta) / (1 + cubicBeta)
)

// cubic is RFC 9438's congestion control. Windows are in segments (the
// RFC's unit), float64; cwnd itself stays in window, in bytes.
type cubic struct {
	wmax   float64       // W_max: the window before the last reduction (4.6, 4.7)
	prior  float64       // cwnd_prior: cwnd when ssthresh was last set (4.3)
	k      float64       // K, seconds (4.2)
	origin float64       // the plateau W_cubic returns to at t = K
	west   float64       // W_est, the Reno-friendly window (4.3)
	epoch  time.Duration // the current congestion avoidance stage's start, t_epoch
	inCA   bool          // epoch is set
	hs     hystart       // the initial slow start's
}

func (*cubic) name() string { return CongestionCubic }

// wCubic is RFC 9438 4.2's Figure 1: W_cubic(t) = C*(t-K)^3 + W_max.
func (cu *cubic) wCubic(t float64) float64 {
	d := t - cu.k
	return cubicC*d*d*d + cu.origin
}

func (cu *cubic) onAck(w *window, a ackEvent) {
	acked := a.acked
	if w.ssthresh == math.MaxUint32 {
		acked = cu.hs.onAck(w, a)
	}
	if acked = w.slowStart(acked); acked == 0 {
		return
	}
	now, srtt, seg := a.now, a.srtt, float64(a.smss)
	cwnd := float64(w.cwnd) / seg
	if !cu.inCA {
		// A congestion avoidance stage begins (4.2): K from how far the
		// window is below W_max; none (K = 0, W_max = cwnd) after a
		// timeout (4.8), which cleared W_max, or above it.
		cu.inCA, cu.epoch, cu.west = true, now, cwnd
		cu.k, cu.origin = 0, cwnd
		if cu.wmax > cwnd {
			cu.k, cu.origin = math.Cbrt((cu.wmax-cwnd)/cubicC), cu.wmax
		}
	}
	t := (now - cu.epoch).Seconds()
	// 4.3: W_est grows as Reno would with beta 0.7's alpha, and as Reno
	// itself (alpha 1) once it passed the window before the reduction.
	alpha := cubicAlpha
	if cu.west >= cu.prior {
		alpha = 1
	}
	ackedSeg := float64(acked) / seg
	cu.west += alpha * ackedSeg / cwnd
	if cu.wCubic(t) < cu.west {
		// The Reno-friendly region (4.3).
		w.cwnd = max(w.cwnd, uint32(min(cu.west*seg, maxCwnd)))
		return
	}
	// Concave and convex regions (4.4, 4.5): towards W_cubic one RTT
	// ahead, by (target-cwnd)/cwnd per SMSS acknowledged, the target
	// kept within [cwnd, 1.5*cwnd].
	target := min(max(cu.wCubic(t+srtt.Seconds()), cwnd), 1.5*cwnd)
	w.cwnd += uint32((target - cwnd) / cwnd * ackedSeg * seg)
}

// reduce is 4.6 and 4.7: ssthresh = cwnd*beta (at least 2 segments),
// and W_max for the next stage, lowered by fast convergence when the
// window did not reach the last one (another flow came).
func (cu *cubic) reduce(w *window, smss uint32) {
	cwnd := float64(w.cwnd) / float64(smss)
	cu.prior = cwnd
	if cwnd < cu.wmax {
		cu.wmax = cwnd * (1 + cubicBeta) / 2
	} else {
		cu.wmax = cwnd
	}
	// beta in integers: 0.7 as a float64 is a hair less, and 11000
	// bytes would come out 7699.
	w.ssthresh = max(uint32(uint64(w.cwnd)*7/10), 2*smss)
	cu.inCA = false
	cu.hs = hystart{} // RFC 9406 4.2: a loss ends slow start and CSS
}

func (cu *cubic) onLoss(w *window, _ time.Duration, _, smss uint32) { cu.reduce(w, smss) }

// onRTO is 4.8: ssthresh as after a loss, then the first congestion
// avoidance stage starts from the window it reaches (K = 0).
func (cu *cubic) onRTO(w *window, _ time.Duration, _, smss uint32, first bool) {
	if first {
		cu.reduce(w, smss)
	}
	cu.wmax, cu.inCA, cu.hs = 0, false, hystart{}
}

// onIdle moves the stage's start by the idle time, as Linux's
// bictcp_cwnd_event: the cubic curve is a function of time, and a
// sender that sent nothing learnt nothing about the path meanwhile.
func (cu *cubic) onIdle(idle time.Duration) {
	if cu.inCA {
		cu.epoch += idle
	}
}

// HyStart++'s constants (RFC 9406 4.3).
const (
	hystartMinRTTThresh = 4 * time.Millisecond
	hystartMaxRTTThresh = 16 * time.Millisecond
	hystartMinRTTDiv    = 8
	hystartNRTTSample   = 8
	hystartCSSGrowthDiv = 4
	hystartCSSRounds    = 5
)

// The ACK train's constants, Linux's (tcp_cubic.c): hystart_low_window,
// hystart_ack_delta_us, and the cushion hystart_ack_delay allows for
// batching (at most a millisecond, less at rates where four 64 KiB
// batches take less).
const (
	hystartLowWindow  = 16 // segments
	hystartACKDelta   = 2 * time.Millisecond
	hystartCushionMax = time.Millisecond
	hystartCushionLen = 4 * 64 << 10 // bytes
)

// hystart is RFC 9406's HyStart++, CUBIC's initial slow start (4.3: only
// while ssthresh is the initial one, arbitrarily high; later slow starts
// stop at the ssthresh a loss set). Rounds are by sequence number: one
// ends when SND.UNA reaches windowEnd, SND.NXT when it began. A round
// whose minimum RTT exceeds the last one's by RttThresh ends slow start
// for Conservative Slow Start (CSS): a quarter of the growth, for
// CSS_ROUNDS rounds, then congestion avoidance with ssthresh = cwnd;
// back to slow start should the RTT fall below CSS's baseline (the exit
// was spurious, jitter). Not RFC 9406's cap of L = 8 SMSS per ACK: this
// stack's ACKs stretch over whole batches, and slowStart says what a cap
// costs. The RTT samples are the ACKs' (timestamps give one per ACK;
// without them only the timed segment's, one per round, so fewer than
// N_RTT_SAMPLE and plain slow start).
//
// Beside RFC 9406's delay rule runs Linux's other HyStart exit, the ACK
// train of CUBIC's hystart_update (tcp_cubic.c, HYSTART_ACK_TRAIN): once
// cwnd is 16 segments, a train of ACKs each at most 2 ms after the last
// that lasts longer than half the least RTT seen (plus a cushion for
// batching) shows the round filled the path (the ACKs come at the bottleneck's rate, and the
// round's data took that long to cross it), and slow start ends there,
// ssthresh = cwnd, without CSS, as in Linux. Unlike Linux, a gap of
// more than 2 ms starts a new train instead of ending the round's: a
// round by sequence begins at the last ACKs of one burst's train, so
// while slow start is bursty (the flight shorter than the RTT) Linux's
// rule sees the gap to the next burst and nothing more, and it fired a
// round late, at 179 segments on a path that holds 172 (the fastpath
// simulations, 100 Mbit/s × 10 ms with a one-BDP queue, 4 MiB send
// buffer: 17 tail drops; 1 with the restart). A paced connection's round
// is spread over up to half an RTT by the pacer itself (200 % of
// cwnd/SRTT), so its train must last the whole least RTT, as Linux
// doubles the threshold for paced sockets. The delay rule alone misses a
// paced slow start: the queue drains between the paced rounds, and no
// round's least RTT rises until one overflows it (the fastpath
// TestSimPacing measured 0 detections and 497 drops).
type hystart struct {
	started   bool // a round is running, to windowEnd
	windowEnd Seq
	// The ACK train: when it began (the round's first ACK, or the first
	// after a gap), its last ACK, and the least RTT seen in any round
	// (Linux's delay_min).
	roundStart, lastACK, minRTT time.Duration
	css                         bool
	cssRounds                   int // CSS rounds completed, counting the one it began in
	// The last and the current round's minimum RTT and the current
	// one's sample count; CSS's baseline. 0 stands for none (infinity).
	lastMin, curMin, baseline time.Duration
	samples                   int
}

// onAck runs HyStart++ for an ACK in the initial slow start and returns
// what cwnd grows by: all that is acked, a quarter in CSS (4.2). It ends
// slow start (ssthresh = cwnd) after the last CSS round.
func (h *hystart) onAck(w *window, a ackEvent) uint32 {
	if !h.started || !a.una.LessThan(h.windowEnd) {
		// A round ends: the next runs to what is sent now.
		if h.css {
			if h.cssRounds++; h.cssRounds >= hystartCSSRounds {
				w.ssthresh = max(w.cwnd, 2*a.smss)
				*h = hystart{}
				return a.acked // congestion avoidance's now
			}
		}
		h.started, h.windowEnd = true, a.nxt
		h.lastMin, h.curMin, h.samples = h.curMin, 0, 0
		h.roundStart, h.lastACK = a.now, a.now
	}
	// The growth is the phase's before this ACK's sample, as 4.2's
	// pseudocode orders them.
	grow := a.acked
	if h.css {
		grow /= hystartCSSGrowthDiv
	}
	if a.hasRTT && a.rtt > 0 {
		if h.curMin == 0 || a.rtt < h.curMin {
			h.curMin = a.rtt
		}
		if h.minRTT == 0 || a.rtt < h.minRTT {
			h.minRTT = a.rtt
		}
		h.samples++
		if h.ackTrain(w, a) {
			w.ssthresh = max(w.cwnd, 2*a.smss)
			*h = hystart{}
			a.stats.HystartTrainDetect++
			a.tstats.HystartTrainDetect++
			return a.acked // congestion avoidance's now
		}
	}
	if h.samples >= hystartNRTTSample {
		switch {
		case !h.css && h.lastMin > 0:
			thresh := max(hystartMinRTTThresh, min(h.lastMin/hystartMinRTTDiv, hystartMaxRTTThresh))
			if h.curMin >= h.lastMin+thresh {
				h.css, h.cssRounds, h.baseline = true, 0, h.curMin
				a.stats.HystartDelayDetect++
				a.tstats.HystartDelayDetect++
			}
		case h.css && h.curMin < h.baseline:
			// The delay went: slow start resumes, HyStart++ with it.
			h.css, h.baseline = false, 0
			a.stats.HystartCSSResumes++
			a.tstats.HystartCSSResumes++
		}
	}
	return grow
}

// ackTrain reports whether the ACK, one with an RTT sample, takes an
// ACK train past its threshold (hystart's doc).
func (h *hystart) ackTrain(w *window, a ackEvent) bool {
	if w.cwnd < hystartLowWindow*a.smss {
		return false
	}
	if a.now-h.lastACK > hystartACKDelta {
		h.roundStart = a.now // the train broke: a new one starts here
	}
	h.lastACK = a.now
	thresh := h.minRTT
	if a.srtt > 0 {
		// Linux's cushion at the pacing rate of slow start, 2·cwnd/SRTT,
		// paced or not: hystartCushionLen bytes at that rate.
		thresh += min(hystartCushionMax, time.Duration(uint64(a.srtt)*hystartCushionLen/(2*uint64(w.cwnd))))
	}
	if !a.paced {
		thresh /= 2
	}
	return a.now-h.roundStart > thresh
}

// SetCongestionControl selects the connection's congestion control,
// CongestionCubic or CongestionReno (Linux's TCP_CONGESTION). The window
// and ssthresh carry over; the new algorithm starts its own state afresh.
func (c *Conn) SetCongestionControl(name string) error {
	if err := CheckCongestionControl(name); err != nil {
		return err
	}
	c.cc = reno{}
	if name == CongestionCubic {
		c.cubic = cubic{}
		c.cc = &c.cubic
	}
	return nil
}

// checkCongestion reports a congestion control name we do not have.
func CheckCongestionControl(name string) error {
	if name != CongestionCubic && name != CongestionReno {
		return fmt.Errorf("tcp: congestion control %q: want %q or %q: %w", name, CongestionCubic, CongestionReno, syscall.ENOENT)
	}
	return nil
}

// CongestionControl is the name of the connection's congestion control.
func (c *Conn) CongestionControl() string { return c.cc.name() }
