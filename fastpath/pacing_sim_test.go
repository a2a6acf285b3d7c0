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
// and HyStart++'s delay detections summed over the flows, tail drops.
//
//   - shared: two flows through the 100 Mbit/s × 10 ms, 1-BDP-queue
//     bottleneck, default 128 KiB send buffers. Unpaced, each flow's
//     window leaves in bursts that the other's find the queue full of.
//   - loss1-bursts: one flow there, 1 % loss in bursts of 4.
//   - clean-4MiB: one flow there, no loss, with Linux's 4 MiB send
//     buffer maximum, which the default tcp.Config.SendBufferMax is not
//     for this reason: the first slow start overruns the queue either
//     way, and worse paced. HyStart++ (RFC 9406) ends slow start when a
//     round's least RTT rises 4 ms above the last round's. Paced, each
//     round's data leaves spread over its first half and the queue
//     drains before the next round's first segments, so every round's
//     least RTT stayed at the base 10.2 ms (measured) up to the round
//     that overflowed the queue: no rise seen. Unpaced it saw one, a
//     round too late.
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
	clean.name, clean.tcp.SendBufferMax = "clean-128KiB", wmem1
	golden := newGoldenTable(t, fmt.Sprintf("Each case over %v of virtual time, seed 1, pacing off and on.", span))
	var table strings.Builder
	table.WriteString("\n| case | pacing | goodput per flow (Mbit/s) | retransmits | tail drops | HyStart++ delay detections |\n|---|---|---|---|---|---|\n")
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
				per = append(per, fmt.Sprintf("%.2f", mbit(f.goodput)))
				golden.add(kase, fmt.Sprintf("flow %d goodput (Mbit/s)", i), mbit(f.goodput), goodputMargin)
			}
			golden.add(kase, "retransmits", float64(st.Retransmits), countMargin)
			golden.add(kase, "tail drops", float64(r.faults.TailDrops), countMargin)
			golden.add(kase, "HyStart++ delay detections", float64(st.HystartDelayDetect), countMargin)
			fmt.Fprintf(&table, "| %s | %s | %s | %d | %d | %d |\n", c.name, pacing,
				strings.Join(per, " / "), st.Retransmits, r.faults.TailDrops, st.HystartDelayDetect)
		}
	}
	t.Logf("pacing off and on over %v of virtual time, seed 1:%s", span, table.String())
	golden.check(t, false)
}
