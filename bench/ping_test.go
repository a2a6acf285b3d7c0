package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// BenchmarkPing measures ICMP echo round trips: the peer's ping(8) sends
// b.N echo requests of 56 bytes to each address; the p50, p99 and mean of
// the times ping printed for every reply, in µs. Each request waits for
// the previous reply, at two paces:
//   - 1ms: a request every millisecond (ping -i 0.001). xdpnet's poller
//     stops spinning after 200 µs without a frame, so each request finds
//     it blocked in poll(2) and pays a wakeup: the idle server's latency.
//   - back-to-back: the next request as soon as the reply is in (ping -i 0,
//     root only; ping keeps one in flight). xdpnet keeps spinning: the busy
//     server's latency.
//
// ping times a reply by its kernel receive timestamp (SO_TIMESTAMP), so
// its own wakeup is not counted, and prints it to the µs. Both addresses
// sit on the same veth end behind the same XDP program: xdpnet answers
// StackAddr from its poller; the kernel answers its own address in softirq
// (the request passes the program with XDP_PASS), with no thread to wake:
// on this lab its whole round trip runs inside ping's sendmsg.
func BenchmarkPing(b *testing.B) {
	if _, err := exec.LookPath("ping"); err != nil {
		b.Fatalf("install iputils-ping: %v", err)
	}
	l := lab.New(b, lab.Config{Mode: lab.Native})
	newStack(b, l).run(b)
	for _, pace := range []struct{ name, interval string }{{"1ms", "0.001"}, {"back-to-back", "0"}} {
		b.Run(pace.name, func(b *testing.B) {
			compare(b, []string{"p50-µs", "p99-µs"},
				func(b *testing.B) map[string]float64 { return ping(b, l, kernelAddr(l).String(), pace.interval) },
				func(b *testing.B) map[string]float64 { return ping(b, l, l.StackAddr.String(), pace.interval) })
		})
	}
}

// pingWarmup is how many pings ping sends before the b.N it measures.
const pingWarmup = 10

var pingTime = regexp.MustCompile(`(?m)^\d+ bytes from .*time=([0-9.]+) ms$`)

// ping pings addr from the peer b.N times, interval seconds apart, and
// reports the round-trip times.
func ping(b *testing.B, l *lab.Lab, addr, interval string) map[string]float64 {
	ctx, cancel := context.WithTimeout(context.Background(), timeLimit+10*time.Second)
	defer cancel()
	run := func(n int) []string {
		out, err := l.Peer.Command(ctx, "ping", "-n", "-c", strconv.Itoa(n), "-i", interval, "-s", "56",
			"-w", strconv.Itoa(int(timeLimit.Seconds())), addr).CombinedOutput()
		times := pingTime.FindAllStringSubmatch(string(out), -1)
		if err != nil || len(times) != n {
			b.Fatalf("ping %s: %d of %d replies in at most %v: %v\n%s", addr, len(times), n, timeLimit, err, tail(out))
		}
		ms := make([]string, n)
		for i, t := range times {
			ms[i] = t[1]
		}
		return ms
	}
	run(pingWarmup) // ARP, and caches
	b.ResetTimer()
	ms := run(b.N)
	b.StopTimer()
	rtts := make([]time.Duration, len(ms))
	for i, t := range ms {
		f, err := strconv.ParseFloat(t, 64)
		if err != nil {
			b.Fatalf("ping printed time=%s", t)
		}
		rtts[i] = time.Duration(f * float64(time.Millisecond))
	}
	m := map[string]float64{}
	latencies(m, rtts)
	b.ReportMetric(0, "ns/op") // the wall time includes the pacing
	return report(b, m)
}

// tail is the end of a command's output, for a failure message.
func tail(out []byte) string {
	const keep = 2000
	if len(out) > keep {
		return fmt.Sprintf("...%s", out[len(out)-keep:])
	}
	return string(out)
}
