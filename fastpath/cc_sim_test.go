package fastpath_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// The congestion control and loss recovery claims of issue 10, checked
// in virtual time over the goodput harness (goodput_sim_test.go). Each
// runs several seeds; the runs are deterministic, so a bound that holds
// today fails only when the stack's behaviour changes. Each also checks
// its figures per seed against its golden file,
// testdata/<TestName>.golden (golden_test.go): the bounds say what must
// hold, the golden figures catch a change in what the stack does within
// them. With -short only seed 1 runs, and only its figures are checked.

// Both stacks' algorithms in the comparisons: SACK with RACK-TLP and
// CUBIC (the stack's defaults), against NewReno without
// SACK and without the loss probe, the sender of RFC 5681 and RFC 6582
// alone.
var (
	sackCubic     = tcp.Config{}
	newRenoNoSACK = tcp.Config{CongestionControl: tcp.CongestionReno, NoTLP: true, NoSACK: true}
)

// wmem1 is Linux's tcp_wmem[1], 128 KiB, the initial send buffer, as
// a fixed maximum: for the claims that need a flow's flight held to
// about one BDP of the 10 ms path, under its BDP plus queue, so that the
// queue never overflows. The default (tcp.Config.SendBufferMax, 4 MiB)
// lets the congestion window bound the flight.
const wmem1 = 128 << 10

// simSeeds is how many seeds each claim runs: 3, or 1 with -short.
func simSeeds() uint64 {
	if testing.Short() {
		return 1
	}
	return 3
}

// issuePath is the issue's path: 100 Mbit/s, 10 ms RTT, one BDP of queue.
func issuePath() simPath {
	p := simPath{rate: 100e6, rtt: 10 * time.Millisecond}
	p.queue = p.bdp()
	return p
}

func mbit(bytesPerSec float64) float64 { return bytesPerSec * 8 / 1e6 }

// TestSimLossSACKAtModel: through 1 % random loss on the issue's path,
// over 30 s of virtual time, SACK + RACK + CUBIC stays within 20 % of
// RFC 9438's model (cubicModel: at 10 ms and 1 % its Reno-friendly
// region, Mathis's sqrt(3/2)/sqrt(p) segments per RTT, 14.19 Mbit/s),
// repairs every loss without a timeout, and moves no less than NewReno
// without SACK: each seed at least 95 % of it, the mean of the seeds at
// least all of it.
//
// The issue asks for 3× NewReno without SACK here, and that cannot hold
// together with the model: on this path NewReno is at the model too
// (measured 14.24–15.30 Mbit/s over seeds 1–5, SACK + CUBIC
// 14.44–15.84). At 1 % loss the average window is about 12 segments, so
// a window holds about 0.12 losses: almost every loss is the only one of
// its window, with enough segments after it for three duplicate ACKs,
// and NewReno repairs it in one round trip as SACK does, with the same
// average reduction. Both then follow the model, which depends on p and
// the RTT alone; three times it would be three times any TCP-friendly
// sender. SACK's gain shows where a window loses many segments at once:
// TestSimLongPathSACK.
func TestSimLossSACKAtModel(t *testing.T) {
	t.Parallel()
	const span = 30 * time.Second
	p := issuePath()
	p.loss = 0.01
	model := cubicModel(simMSS, p.rtt, p.loss)
	sack := goodputCase{name: "sack-cubic", path: p, flows: 1, tcp: sackCubic}
	reno := goodputCase{name: "newreno-nosack", path: p, flows: 1, tcp: newRenoNoSACK}
	var sum, sumReno float64
	golden := newGoldenTable(t, fmt.Sprintf("One flow over %v for %v of virtual time, seeds 1-3.", p, span))
	for seed := range simSeeds() {
		s := runGoodput(t, sack, seed+1, span, 0).flows[0]
		r := runGoodput(t, reno, seed+1, span, 0).flows[0]
		s.addGolden(golden, fmt.Sprintf("%s seed %d", sack.name, seed+1))
		r.addGolden(golden, fmt.Sprintf("%s seed %d", reno.name, seed+1))
		t.Logf("seed %d: SACK + CUBIC %.2f Mbit/s (%.2f of the model's %.2f, %d retransmits, %d RTOs), NewReno without SACK %.2f (%d retransmits, %d RTOs)",
			seed+1, mbit(s.goodput), s.goodput/model, mbit(model), s.sender.Retransmits, s.sender.Timeouts,
			mbit(r.goodput), r.sender.Retransmits, r.sender.Timeouts)
		require.InEpsilon(t, model, s.goodput, 0.2, "seed %d: SACK + CUBIC against the model", seed+1)
		require.Zero(t, s.sender.Timeouts, "seed %d: SACK + CUBIC timed out", seed+1)
		require.GreaterOrEqual(t, s.goodput, 0.95*r.goodput, "seed %d: SACK + CUBIC below NewReno without SACK", seed+1)
		sum, sumReno = sum+s.goodput, sumReno+r.goodput
	}
	require.GreaterOrEqual(t, sum, sumReno, "SACK + CUBIC below NewReno without SACK over the seeds")
	golden.check(t, testing.Short())
}

// TestSimLongPathSACK: on a path of five times the RTT (100 Mbit/s,
// 50 ms, one BDP of queue, 0.01 % random loss) with Linux's send buffer
// maximum, SACK + RACK + CUBIC moves at least 3× what NewReno without
// SACK does over 10 s of virtual time. There a window does lose many
// segments at once: slow start overshoots the queue and the tail drops
// take hundreds of segments of one window. SACK repairs them in a few
// round trips; NewReno repairs one hole per round trip (RFC 6582's
// partial ACKs), 50 ms each, and is still at it when the span ends
// (measured: 44–78 Mbit/s against 2.14). HyStart++ (RFC 9406) halves
// CUBIC's overshoot (214–344 tail drops against NewReno's 395–826), but
// SACK is what counts: NewReno with SACK made 32.5–64.6 Mbit/s here,
// against 2.14 without. Random loss this rare leaves
// the model (28.4 Mbit/s at 50 ms) unreached in 10 s: the flows are
// still in their first epochs, so the model is not asserted here.
func TestSimLongPathSACK(t *testing.T) {
	t.Parallel()
	const span = 10 * time.Second
	p := simPath{rate: 100e6, rtt: 50 * time.Millisecond, loss: 0.0001, held: 2000}
	p.queue = p.bdp()
	sack := goodputCase{name: "sack-cubic", path: p, flows: 1, tcp: sackCubic}
	reno := goodputCase{name: "newreno-nosack", path: p, flows: 1, tcp: newRenoNoSACK}
	golden := newGoldenTable(t, fmt.Sprintf("One flow over %v, 4 MiB send buffer, for %v of virtual time, seeds 1-3.", p, span))
	for seed := range simSeeds() {
		sr := runGoodput(t, sack, seed+1, span, 0)
		rr := runGoodput(t, reno, seed+1, span, 0)
		s, r := sr.flows[0], rr.flows[0]
		for _, run := range []struct {
			name string
			r    goodputResult
		}{{sack.name, sr}, {reno.name, rr}} {
			kase := fmt.Sprintf("%s seed %d", run.name, seed+1)
			run.r.flows[0].addGolden(golden, kase)
			golden.add(kase, "SACK recoveries", float64(run.r.flows[0].sender.SACKRecoveries), countMargin)
			golden.add(kase, "tail drops", float64(run.r.faults.TailDrops), countMargin)
		}
		t.Logf("seed %d: SACK + CUBIC %.2f Mbit/s (%d tail drops, %d retransmits, %d recoveries), NewReno without SACK %.2f (%d tail drops, %d retransmits); %.1f×",
			seed+1, mbit(s.goodput), sr.faults.TailDrops, s.sender.Retransmits, s.sender.SACKRecoveries,
			mbit(r.goodput), rr.faults.TailDrops, r.sender.Retransmits, s.goodput/r.goodput)
		require.GreaterOrEqual(t, s.goodput, 3*r.goodput, "seed %d: SACK + CUBIC under 3× NewReno without SACK", seed+1)
	}
	golden.check(t, testing.Short())
}

// TestSimReorderingUndone: with 1 % of the frames held 1 ms (about 80
// segment times at 100 Mbit/s) and no loss, SACK + RACK + CUBIC keeps at
// least 90 % of the goodput of the same run without reordering, with no
// timeout, and reordering leaves no reduction standing:
//
//   - with the send buffer held at 128 KiB (wmem1) the flight stays
//     under the path's BDP plus queue, so the queue never overflows
//     (checked) and every loss signal is reordering: every reduction is
//     undone (RFC 3708 by D-SACK, RFC 3522 by timestamps), none made by
//     a loss probe, which is not undone;
//   - with the default 4 MiB the congestion window bounds the flight,
//     and CUBIC fills the 1-BDP queue every ~1.6 s, as Linux's would:
//     those losses are real, and their reductions stay. So the
//     reductions left standing are at most the run's tail drops: each
//     has a real loss behind it, and reordering adds none (measured: 6–7
//     standing against 7–41 drops, and the clean run's 6 against 6).
func TestSimReorderingUndone(t *testing.T) {
	t.Parallel()
	const span = 10 * time.Second
	held := sackCubic
	held.SendBufferMax = wmem1
	golden := newGoldenTable(t, fmt.Sprintf("One flow over %v with 1 %% of frames held 1 ms, against the same without, for %v of virtual time, seeds 1-3.", issuePath(), span))
	for _, cfg := range []struct {
		name string
		tcp  tcp.Config
	}{{"128KiB", held}, {"default", sackCubic}} {
		clean := goodputCase{name: "clean-" + cfg.name, path: issuePath(), flows: 1, tcp: cfg.tcp}
		reordered := clean
		reordered.name, reordered.path.reorder, reordered.path.reorderBy = "reorder1-"+cfg.name, 0.01, time.Millisecond
		for seed := range simSeeds() {
			cr := runGoodput(t, clean, seed+1, span, 0)
			c := cr.flows[0]
			r := runGoodput(t, reordered, seed+1, span, 0)
			f := r.flows[0]
			st := f.sender
			c.addGolden(golden, fmt.Sprintf("%s seed %d", clean.name, seed+1))
			kase := fmt.Sprintf("%s seed %d", reordered.name, seed+1)
			f.addGolden(golden, kase)
			golden.add(kase, "frames reordered", float64(r.faults.Reordered), countMargin)
			golden.add(kase, "SACK recoveries", float64(st.SACKRecoveries), countMargin)
			golden.add(kase, "reductions undone", float64(st.UndoneReductions), countMargin)
			golden.add(kase, "reorderings seen", float64(st.ReorderSeen), countMargin)
			golden.add(kase, "tail drops", float64(r.faults.TailDrops), countMargin)
			standing := st.SACKRecoveries + st.TLPRecoveries - st.UndoneReductions
			cleanStanding := c.sender.SACKRecoveries + c.sender.TLPRecoveries - c.sender.UndoneReductions
			t.Logf("%s seed %d: %.2f Mbit/s reordered (%d frames), %.2f clean: %.3f; %d recoveries, %d undone, %d standing (%d tail drops; clean run %d, %d tail drops), %d retransmits, %d reorderings seen",
				cfg.name, seed+1, mbit(f.goodput), r.faults.Reordered, mbit(c.goodput), f.goodput/c.goodput,
				st.SACKRecoveries+st.TLPRecoveries, st.UndoneReductions, standing, r.faults.TailDrops, cleanStanding, cr.faults.TailDrops, st.Retransmits, st.ReorderSeen)
			require.NotZero(t, r.faults.Reordered, "%s seed %d: nothing reordered", cfg.name, seed+1)
			require.GreaterOrEqual(t, f.goodput, 0.9*c.goodput, "%s seed %d: reordering cost more than 10 %%", cfg.name, seed+1)
			require.Zero(t, st.Timeouts, "%s seed %d: timeouts", cfg.name, seed+1)
			if cfg.tcp.SendBufferMax == wmem1 {
				require.Zero(t, r.faults.TailDrops, "%s seed %d: the queue overflowed", cfg.name, seed+1)
				require.Zero(t, st.TLPRecoveries, "%s seed %d: reductions by the loss probe", cfg.name, seed+1)
				require.Zero(t, standing, "%s seed %d: reductions left un-undone", cfg.name, seed+1)
			} else {
				require.LessOrEqual(t, standing, r.faults.TailDrops, "%s seed %d: reductions left standing beyond the clean run's overflows", cfg.name, seed+1)
			}
		}
	}
	golden.check(t, testing.Short())
}

// TestSimSharing: two flows start together through the issue's path
// (0.01 % random loss, so that the seeds differ) with Linux's send
// buffer maximum, and run 30 s of virtual time. Two CUBIC flows each get
// 40–60 % of what both moved (fairness); a CUBIC flow and a NewReno one
// each get at least a third: CUBIC takes no more than twice NewReno's
// share, and is not starved by it either (measured: NewReno 43–51 %).
// On a 10 ms path CUBIC runs in its Reno-friendly region (RFC 9438 4.3),
// whose growth is set to give Reno's average window: about even.
func TestSimSharing(t *testing.T) {
	t.Parallel()
	const span = 30 * time.Second
	p := issuePath()
	p.loss = 0.0001
	golden := newGoldenTable(t, fmt.Sprintf("Two flows over %v, 4 MiB send buffers, for %v of virtual time, seeds 1-3.", p, span))
	for _, c := range []struct {
		cc       []string
		min, max float64
	}{
		{[]string{tcp.CongestionCubic, tcp.CongestionCubic}, 0.4, 0.6},
		{[]string{tcp.CongestionCubic, tcp.CongestionReno}, 1.0 / 3, 2.0 / 3},
	} {
		gc := goodputCase{name: fmt.Sprint(c.cc), path: p, flows: 2, tcp: sackCubic, cc: c.cc}
		for seed := range simSeeds() {
			r := runGoodput(t, gc, seed+1, span, 0)
			a, b := r.flows[0].goodput, r.flows[1].goodput
			t.Logf("%s seed %d: %.2f / %.2f Mbit/s, shares %.1f %% / %.1f %%, Jain %.3f, %d tail drops",
				c.cc, seed+1, mbit(a), mbit(b), 100*a/(a+b), 100*b/(a+b), r.jain(), r.faults.TailDrops)
			golden.add(fmt.Sprintf("%s seed %d", c.cc, seed+1), "tail drops", float64(r.faults.TailDrops), countMargin)
			for i, f := range r.flows {
				f.addGolden(golden, fmt.Sprintf("%s seed %d flow %d", c.cc, seed+1, i))
				share := f.goodput / (a + b)
				require.GreaterOrEqual(t, share, c.min, "%s seed %d: flow %d (%s) share", c.cc, seed+1, i, c.cc[i])
				require.LessOrEqual(t, share, c.max, "%s seed %d: flow %d (%s) share", c.cc, seed+1, i, c.cc[i])
			}
			// Together they fill the link: shares of a starved total
			// would say nothing.
			require.Greater(t, mbit(a+b), 90.0, "%s seed %d: the flows together", c.cc, seed+1)
		}
	}
	golden.check(t, testing.Short())
}
