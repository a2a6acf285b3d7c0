package fastpath_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xdpnet/xdpnet/tcp"
)

// TestSimPacing runs three of the goodput cases over 2 s of virtual
// time, seed 1, with pacing off and on (tcp.Config.Pacing), logs the
// table the README shows and checks its figures against
// testdata/TestSimPacing.golden: each flow's goodput, and retransmits
// and HyStart's exits (delay and ACK train) summed over the flows, tail
// drops. All run the default 4 MiB send buffer maximum.
//
//   - shared: two flows through the 100 Mbit/s × 10 ms, 1-BDP-queue
//     bottleneck. Unpaced, each flow's window leaves in bursts that the
//     other's find the queue full of.
//   - loss1-bursts: one flow there, 1 % loss in bursts of 4.
//   - clean: one flow there, no loss. Paced, the first slow start
//     overruns the queue: RFC 9406's delay rule sees no rise (each
//     round's data leaves spread over its first half and the queue
//     drains before the next round's first segments, so every round's
//     least RTT stays at the base 10.2 ms, measured), and Linux's ACK
//     train, whose threshold is the whole min RTT when paced, ends slow
//     start at about twice the path's BDP plus queue. Unpaced the train
//     ends it in time.
//
// Beyond the golden figures it asserts only that every byte arrives
// (runGoodput).
func TestSimPacing(t *testing.T) {
	if testing.Short() {
		t.Skip("the golden figures are of the full span")
	}
	t.Parallel()
	const span = 2 * time.Second
	var shared, bursts, clean goodputCase
	for _, c := range goodputCases() {
		switch c.name {
		case "shared":
			shared = c
		case "loss1-bursts":
			bursts = c
		case "clean":
			clean = c
		}
	}
	golden := newGoldenTable(t, fmt.Sprintf("Each case over %v of virtual time, seed 1, pacing off and on.", span))
	var table strings.Builder
	table.WriteString("\n| case | pacing | goodput per flow (Mbit/s) | retransmits | tail drops | HyStart exits: delay / train |\n|---|---|---|---|---|---|\n")
	for _, c := range []goodputCase{shared, bursts, clean} {
		for _, on := range []bool{false, true} {
			c := c
			c.tcp.Pacing = on
			r := runGoodput(t, c, 1, span, 0)
			pacing := map[bool]string{false: "off", true: "on"}[on]
			kase := fmt.Sprintf("%s, pacing %s", c.name, pacing)
			var st tcp.ConnStats
			var per []string
			for i, f := range r.flows {
				st.Retransmits += f.sender.Retransmits
				st.HystartDelayDetect += f.sender.HystartDelayDetect
				st.HystartTrainDetect += f.sender.HystartTrainDetect
				per = append(per, fmt.Sprintf("%.2f", mbit(f.goodput)))
				golden.add(kase, fmt.Sprintf("flow %d goodput (Mbit/s)", i), mbit(f.goodput), goodputMargin)
			}
			golden.add(kase, "retransmits", float64(st.Retransmits), countMargin)
			golden.add(kase, "tail drops", float64(r.faults.TailDrops), countMargin)
			golden.add(kase, "HyStart++ delay detections", float64(st.HystartDelayDetect), countMargin)
			golden.add(kase, "ACK-train detections", float64(st.HystartTrainDetect), countMargin)
			fmt.Fprintf(&table, "| %s | %s | %s | %d | %d | %d / %d |\n", c.name, pacing,
				strings.Join(per, " / "), st.Retransmits, r.faults.TailDrops, st.HystartDelayDetect, st.HystartTrainDetect)
		}
	}
	t.Logf("pacing off and on over %v of virtual time, seed 1:%s", span, table.String())
	golden.check(t, false)
}
