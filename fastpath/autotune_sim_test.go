package fastpath_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/tcp"
)

// longFatPath is a 1 Gbit/s path of 50 ms RTT: a 6.25 MB bandwidth-delay
// product, which 128 KiB windows fill to 2 %. Its queue is a BDP (the
// bursts of slow start, at twice the link's rate, must not overrun it:
// the sender does not pace), and it holds up to 8192 frames (a 4 MiB
// flight and a full queue), so the buffers alone bound the flight.
var longFatPath = simPath{rate: 1e9, rtt: 50 * time.Millisecond, queue: 6250000, held: 8192}

// autotuneCases are one flow over longFatPath with fixed 128 KiB buffers
// at both ends (Linux's initial sizes, auto-tuning off), with only the
// receive buffer auto-tuned (up to 6 MiB; the send buffer held at its
// 128 KiB), and with the default config: both auto-tuned, the send
// buffer up to Linux's 4 MiB (tcp.Config.SendBufferMax).
var autotuneCases = []struct {
	name string
	cfg  tcp.Config
}{
	{"fixed 128 KiB", tcp.Config{RecvBufferMax: 128 << 10, SendBufferMax: 128 << 10}},
	{"receive only", tcp.Config{SendBufferMax: 128 << 10}},
	{"default", tcp.Config{}},
}

// TestSimAutoTuneLongFatPath runs each case for 5 s of virtual time,
// logs the goodput and checks it, the largest window offered and the
// retransmits against testdata/TestSimAutoTuneLongFatPath.golden. With fixed buffers a flow moves a window per round
// trip, 128 KiB / 50 ms = 21 Mbit/s; with both ends auto-tuned the send
// buffer's 4 MiB bounds it (4 MiB / 50 ms = 671 Mbit/s), the receive
// window having grown past it. It asserts those bounds, the gain (at
// least 20×), and, from the sender's trace, the windows the receiver
// offered: never past 128 KiB when fixed, past 4 MiB and never past
// 6 MiB when auto-tuned. With only the receive buffer auto-tuned the
// sender's own 128 KiB buffer is the limit, as the fixed case's.
func TestSimAutoTuneLongFatPath(t *testing.T) {
	const span = 5 * time.Second
	p := longFatPath
	rtt := p.rtt.Seconds()
	var table strings.Builder
	table.WriteString("\n| buffers | goodput (Mbit/s) | largest window offered | retransmits |\n|---|---|---|---|\n")
	goodput := map[string]float64{}
	golden := newGoldenTable(t, fmt.Sprintf("One flow over %v for %v of virtual time, seed 1.", p, span))
	for _, c := range autotuneCases {
		r := runGoodput(t, goodputCase{name: c.name, path: p, flows: 1, tcp: c.cfg}, 1, span, 100*time.Millisecond)
		f := r.flows[0]
		maxWnd := uint32(0)
		for _, s := range f.trace {
			maxWnd = max(maxWnd, s.info.SndWnd)
		}
		goodput[c.name] = f.goodput
		fmt.Fprintf(&table, "| %s | %.1f | %d KiB | %d |\n", c.name, f.goodput*8/1e6, maxWnd>>10, f.sender.Retransmits)
		golden.add(c.name, "goodput (Mbit/s)", mbit(f.goodput), goodputMargin)
		golden.add(c.name, "largest window offered (KiB)", float64(maxWnd)/1024, goodputMargin)
		golden.add(c.name, "retransmits", float64(f.sender.Retransmits), countMargin)
		switch c.name {
		case "fixed 128 KiB":
			require.LessOrEqual(t, maxWnd, uint32(128<<10))
			require.InDelta(t, float64(128<<10)/rtt, f.goodput, 0.2*float64(128<<10)/rtt, "a window per round trip")
		case "default":
			require.Greater(t, maxWnd, uint32(4<<20), "the receive window grew past the send buffer")
			require.LessOrEqual(t, maxWnd, uint32(6<<20))
			require.LessOrEqual(t, f.goodput, float64(4<<20)/rtt, "more than the send buffer per round trip")
		}
	}
	t.Logf("one flow over %v for %v of virtual time:%s", p, span, table.String())
	require.Greater(t, goodput["default"], 20*goodput["fixed 128 KiB"], "the gain of auto-tuning")
	golden.check(t, false)
}

// TestTCPAutoTunedSteadyStateDoesNotAllocate: over a 4 ms round trip,
// with both ends' buffers auto-tuned, growth allocates a few times (each
// doubling, counted in BufferGrowths) while the flow ramps up; once the
// buffers stop growing, data written, sent, received, read and
// acknowledged allocates nothing on either stack.
func TestTCPAutoTunedSteadyStateDoesNotAllocate(t *testing.T) {
	p := newTCPPairOver(t, nic.FaultConfig{Delay: 2 * time.Millisecond, MaxHeld: 4096}, tcp.Config{})
	chunk, buf := make([]byte, 64<<10), make([]byte, 256<<10)
	for moved := 0; moved < 16<<20; {
		moved += p.transfer(chunk, buf, 1<<20)
	}
	growths := p.a.TCP().Stats().BufferGrowths + p.b.TCP().Stats().BufferGrowths
	rcv, _ := p.server.Buffers()
	_, snd := p.client.Buffers()
	t.Logf("after 16 MiB: %d growths, receive buffer %d KiB, send buffer %d KiB", growths, rcv>>10, snd>>10)
	require.Greater(t, rcv, 128<<10, "the receive buffer grew")
	require.Greater(t, snd, 128<<10, "the send buffer grew")
	require.LessOrEqual(t, growths, uint64(12), "growth allocates by doubling, a few times")
	moved := 0
	allocs := testing.AllocsPerRun(20, func() { moved += p.transfer(chunk, buf, 256<<10) })
	require.Zero(t, allocs)
	require.GreaterOrEqual(t, moved, 21*256<<10, "data moved meanwhile")
	require.Zero(t, p.a.TCP().Stats().RetransSegs, "nothing lost")
	require.Equal(t, growths, p.a.TCP().Stats().BufferGrowths+p.b.TCP().Stats().BufferGrowths, "no growth in steady state")
}
