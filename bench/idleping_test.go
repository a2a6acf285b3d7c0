package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// idleSteps are the idle connection counts BenchmarkIdlePing measures at.
var idleSteps = []int{0, 5000, 10000, 20000}

// idleDialers is how many connects to xdpnet a holder has in flight at
// once while it opens its idle connections: few enough that xdpnet's SYN queue (256)
// and accept queue (128) never overflow into a 1 s SYN retransmission.
const idleDialers = 32

// BenchmarkIdlePing measures what idle connections cost the packets of
// others: the peer's kernel opens 0, then 5k, 10k and 20k TCP connections
// to xdpnet's echo and discard services (the poller-side ones `xdpnet
// serve` runs) and leaves them idle, and at each count ping(8) measures
// the round trip to xdpnet and, for reference, to the kernel on the same
// link (which holds none of them), a request every millisecond (so
// xdpnet's poller parks and wakes for each); then the peer times
// connects to xdpnet's echo. xdpnet's ping line reports
// its p50 and avg as a ratio to its own with no idle connection
// (p50-x-idle0, avg-x-idle0): the target is at most 1.2 at 20k. Walking
// every connection per round made it 13× at 20k. visits/ping is the
// connections and timers xdpnet's TCP table touched per ping (see
// tcp.Table.Visits): it must not grow with idle connections.
func BenchmarkIdlePing(b *testing.B) {
	l := lab.New(b, lab.Config{Mode: lab.Native})
	s := newStack(b, l)
	s.run(b)
	open := 0
	var none, last map[string]float64 // xdpnet's figures with no idle connection, and the latest
	for _, n := range idleSteps {
		for open < n {
			k := min(idlePerHolder, n-open)
			holdIdle(b, l, k)
			open += k
		}
		b.Logf("%d idle connections open; xdpnet's TCP services hold %d", open, s.tcp.Stats().Active)
		b.Run(fmt.Sprintf("idle=%d/ping", n), func(b *testing.B) {
			compare(b, []string{"p50-µs"},
				func(b *testing.B) map[string]float64 { return ping(b, l, kernelAddr(l).String(), "0.001") },
				func(b *testing.B) map[string]float64 {
					v := s.visits()
					last = ping(b, l, l.StackAddr.String(), "0.001")
					b.ReportMetric(float64(s.visits()-v)/float64(b.N+pingWarmup), "visits/ping")
					for _, k := range []string{"p50-µs", "avg-µs"} {
						if none[k] > 0 {
							b.ReportMetric(last[k]/none[k], k[:3]+"-x-idle0")
						}
					}
					return last
				})
		})
		if n == 0 {
			none = last // from the final, longest run
		}
		b.Run(fmt.Sprintf("idle=%d/connect", n), func(b *testing.B) { timeConnects(b, l) })
	}
}

// visits is the TCP table's work count (tcp.Table.Visits), read on the
// poller's goroutine.
func (s *stack) visits() uint64 {
	ch := make(chan uint64, 1)
	s.Do(func() { ch <- s.TCP().Visits() })
	return <-ch
}

// idlePerHolder is how many idle connections one holder process opens:
// a process may hold 20,000 descriptors here (RLIMIT_NOFILE's hard limit,
// which the lab's root may not raise: no CAP_SYS_RESOURCE).
const idlePerHolder = 5000

// idleHolderEnv makes this test binary an idle-connection holder: "server
// n" (see TestIdleHolderProcess).
const idleHolderEnv = "XDPNET_BENCH_IDLE_HOLDER"

// holdIdle starts a holder process in the peer's namespace, waits until
// its n connections to xdpnet's services are open, and keeps them open
// until b ends.
func holdIdle(b *testing.B, l *lab.Lab, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), timeLimit+30*time.Second)
	cmd := l.Peer.Command(ctx, os.Args[0], "-test.run=^TestIdleHolderProcess$", "-test.timeout=0")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", idleHolderEnv, l.StackAddr, n))
	stdin, err := cmd.StdinPipe()
	require.NoError(b, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(b, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(b, cmd.Start())
	b.Cleanup(func() {
		stdin.Close() // the holder closes its connections and exits
		if err := cmd.Wait(); err != nil {
			b.Errorf("idle holder: %v", err)
		}
		cancel()
	})
	sc := bufio.NewScanner(stdout)
	var out []string
	for sc.Scan() {
		out = append(out, sc.Text())
		if strings.HasPrefix(sc.Text(), "idle-holder: open") {
			b.Log(sc.Text())
			go io.Copy(io.Discard, stdout) // the test framework's last words
			return
		}
	}
	b.Fatalf("idle holder did not open its connections:\n%s", strings.Join(out, "\n"))
}

// TestIdleHolderProcess is not a test: it is BenchmarkIdlePing's holder of
// idle connections, run as a child process in the peer's namespace. Its
// spec is "server n": it opens n connections to server's TCP echo and
// discard, alternately, idleDialers at a time, prints "idle-holder: open
// n in <time>", and holds them, sending nothing, until its stdin closes.
func TestIdleHolderProcess(t *testing.T) {
	spec := os.Getenv(idleHolderEnv)
	if spec == "" {
		t.Skip("BenchmarkIdlePing's holder of idle connections; runs only as its child process")
	}
	var server string
	var n int
	if _, err := fmt.Sscan(spec, &server, &n); err != nil {
		t.Fatalf("%s=%q: %v", idleHolderEnv, spec, err)
	}
	addr := netip.MustParseAddr(server)
	// Idle means idle: no keepalive probes (Go's net would send one per
	// connection every 15 s).
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
	conns := make([]net.Conn, n)
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, idleDialers)
	for w := range idleDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				port := uint16(echoPort)
				if i%2 == 1 {
					port = discardPort
				}
				c, err := d.Dial("tcp4", netip.AddrPortFrom(addr, port).String())
				if err != nil {
					errs[w] = fmt.Errorf("idle connection %d: %w", i, err)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	err := errors.Join(errs...)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("idle-holder: open %d in %v\n", n, time.Since(start).Round(time.Millisecond))
	io.Copy(io.Discard, os.Stdin)
}

// timeConnects times b.N connects from the peer's kernel to xdpnet's TCP
// echo, each reset (linger 0, so no TIME-WAIT holds the kernel's ports)
// before the next, and reports their p50 and p99 (ns/op includes the
// reset).
func timeConnects(b *testing.B, l *lab.Lab) {
	ds := make([]time.Duration, 0, b.N)
	to := netip.AddrPortFrom(l.StackAddr, echoPort).String()
	b.ResetTimer()
	require.NoError(b, l.Peer.Do(func() error {
		for range b.N {
			t0 := time.Now()
			c, err := net.DialTimeout("tcp4", to, 10*time.Second)
			if err != nil {
				return err
			}
			ds = append(ds, time.Since(t0))
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
		return nil
	}))
	b.StopTimer()
	m := map[string]float64{}
	latencies(m, ds)
	report(b, m)
}
