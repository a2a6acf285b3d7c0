package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/product/services"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
	"github.com/xdpnet/xdpnet/sockapi/inline"
)

// Shared by the benchmarks of the public API (BenchmarkSockRR,
// BenchmarkSockBulk, BenchmarkSockConnect, BenchmarkSockIdle): xdpnet as
// an application gets it, sockapi.Open with goroutines serving
// net.Conns, against the kernel with Go's net on the same veth pair.

// Ports of the goroutine servers on the sockapi stack; the poller-side
// services keep the well-known ports 7, 9 and 19 on the same stack.
const (
	sockEchoPort    = 2007
	sockDiscardPort = 2009
	sockChargenPort = 2019
)

// peerStackAddr is the address of the xdpnet stack a client process
// opens on the peer's link, in the lab's /24 next to the peer's kernel
// (198.18.0.3).
var peerStackAddr = netip.MustParsePrefix("198.18.0.4/24")

// sockStack opens xdpnet through its public API on Local's link at
// StackAddr, as `xdpnet serve` does: the poller-side TCP services (echo,
// discard, chargen on 7, 9, 19: the "inline handler") bound through
// Config.OnPoller, and goroutine servers on sockapi listeners (echo,
// discard, chargen on 2007, 2009, 2019), each connection a net.Conn
// served by tcpEcho, tcpDiscard or tcpChargen, the functions that serve
// the kernel's connections. Everything is closed when b ends.
func sockStack(b *testing.B, l *lab.Lab) *sockapi.Stack {
	var s *sockapi.Stack
	require.NoError(b, l.Local.Do(func() (err error) {
		s, err = sockapi.Open(sockapi.Config{
			Interface: l.Local.Link,
			Addr:      netip.PrefixFrom(l.StackAddr, l.Local.Addr.Bits()),
			OnPoller: func(p inline.Poller) error {
				svc := &services.TCPServices{}
				if err := svc.Listen(p.TCP()); err != nil {
					return err
				}
				p.OnRound(svc.Serve)
				return nil
			},
		})
		return err
	}))
	// Registered before the servers': runs after they closed.
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Errorf("stack: %v", err)
		}
	})
	for _, srv := range []struct {
		port  uint16
		serve func(net.Conn)
	}{{sockEchoPort, tcpEcho}, {sockDiscardPort, tcpDiscard}, {sockChargenPort, tcpChargen}} {
		ln, err := s.Listen("tcp4", fmt.Sprintf(":%d", srv.port))
		require.NoError(b, err)
		serveTCP(b, ln, srv.serve)
	}
	return s
}

// sockClientEnv makes this test binary a client of the sockapi
// benchmarks: "mode server n par via" (see TestSockClientProcess).
const sockClientEnv = "XDPNET_BENCH_SOCK_CLIENT"

// viaKernel is the via of a client on the peer's kernel stack.
const viaKernel = "kernel"

// viaXDPNet is the via of a client on an xdpnet stack of its own, opened
// on the peer's link at peerStackAddr.
func viaXDPNet(l *lab.Lab) string { return "xdpnet:" + l.Peer.Link }

// sockClient runs the client in mode (see TestSockClientProcess) against
// server with n and par, on the stack via says, in a process of its own
// in the peer's namespace, and reports what it measured.
func sockClient(b *testing.B, l *lab.Lab, mode string, server netip.AddrPort, n, par int, via string) map[string]float64 {
	return peerClient(b, l, "TestSockClientProcess", sockClientEnv, fmt.Sprintf("%s %s %d %d %s", mode, server, n, par, via), "sock-client")
}

// TestSockClientProcess is not a test: it is the client of the sockapi
// benchmarks, run as a child process in the peer's namespace. Its spec is
// "mode server n par via"; via is "kernel" (Go's net) or
// "xdpnet:<link>" (sockapi.Open on link at peerStackAddr, polled as
// xdpnet runs by default: spinning 200 µs after the last work). It prints
// one line, "sock-client: k=v …". Modes:
//   - rr: n 1-byte transactions on one connection after echoWarmup more
//     (par is ignored): trans/s, p50-µs, p99-µs, p99.9-µs, avg-µs.
//   - read: par connections read n bytes in all, then close: Gbit/s from
//     the first connect on.
//   - write: par connections write n bytes in all, each then its FIN, and
//     wait for the server's FIN: Gbit/s from the first connect on.
//   - crr: n times connect, a 1-byte request and its echo, close; par
//     such loops at once: conns/s, and p50-µs and p99-µs of one
//     connection's whole life.
//   - chargen: one connection (par is ignored) reads at most n bytes from
//     a tcpChargen server, for at most lossyTime, checking every byte:
//     MB/s from the connection's establishment on (see chargenRead).
func TestSockClientProcess(t *testing.T) {
	spec := os.Getenv(sockClientEnv)
	if spec == "" {
		t.Skip("the sockapi benchmarks' client; runs only as their child process")
	}
	var mode, server, via string
	var n, par int
	if _, err := fmt.Sscan(spec, &mode, &server, &n, &par, &via); err != nil {
		t.Fatalf("%s=%q: %v", sockClientEnv, spec, err)
	}
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp4", server)
	}
	if link, ok := strings.CutPrefix(via, "xdpnet:"); ok {
		s := openRetry(t, sockapi.Config{Interface: link, Addr: peerStackAddr})
		defer s.Close()
		dial = func(ctx context.Context) (net.Conn, error) { return s.DialContext(ctx, "tcp4", server) }
	} else if via != viaKernel {
		t.Fatalf("%s=%q: unknown via %q", sockClientEnv, spec, via)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeLimit)
	defer cancel()
	var m map[string]float64
	var err error
	switch mode {
	case "rr":
		var c net.Conn
		if c, err = dial(ctx); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(timeLimit))
		m = tcpRR(t, c, n)
	case "read", "write":
		m, err = bulk(ctx, dial, mode, n, par)
	case "crr":
		m, err = connectRR(ctx, dial, n, par)
	case "chargen":
		m, err = chargenRead(ctx, dial, n)
	default:
		t.Fatalf("%s=%q: unknown mode %q", sockClientEnv, spec, mode)
	}
	if err != nil {
		t.Fatal(err)
	}
	line := "sock-client:"
	for _, k := range slices.Sorted(maps.Keys(m)) {
		line += fmt.Sprintf(" %s=%g", k, m[k])
	}
	fmt.Println(line)
}

// openRetry opens a stack, retrying for a few seconds while the kernel
// still holds the queue for the previous run's socket (EBUSY: it releases
// a closed AF_XDP socket's queue from a work queue).
func openRetry(t *testing.T, cfg sockapi.Config) *sockapi.Stack {
	for t0 := time.Now(); ; {
		s, err := sockapi.Open(cfg)
		if err == nil {
			return s
		}
		if !errors.Is(err, syscall.EBUSY) || time.Since(t0) > 5*time.Second {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// bulk moves n bytes over par connections at once, each reading (mode
// "read") or writing ("write") its share, and returns the Gbit/s of all.
func bulk(ctx context.Context, dial func(context.Context) (net.Conn, error), mode string, n, par int) (map[string]float64, error) {
	start := time.Now()
	errs := make(chan error, par)
	for i := range par {
		share := n / par
		if i == 0 {
			share += n % par
		}
		go func() {
			c, err := dial(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(start.Add(timeLimit))
			if mode == "read" {
				errs <- readN(c, share)
			} else {
				errs <- writeN(c, share)
			}
		}()
	}
	var err error
	for range par {
		err = errors.Join(err, <-errs)
	}
	return map[string]float64{"Gbit/s": float64(n) * 8 / time.Since(start).Seconds() / 1e9}, err
}

// readN reads n bytes from c.
func readN(c net.Conn, n int) error {
	buf := make([]byte, tcpBuffer)
	for got := 0; got < n; {
		m, err := c.Read(buf[:min(len(buf), n-got)])
		got += m
		if err != nil && got < n {
			return fmt.Errorf("read %d of %d bytes: %w (the run is capped at %v)", got, n, err, timeLimit)
		}
	}
	return nil
}

// writeN writes n bytes to c, then its FIN, and waits for the server's.
func writeN(c net.Conn, n int) error {
	buf := make([]byte, tcpBuffer)
	for sent := 0; sent < n; {
		m, err := c.Write(buf[:min(len(buf), n-sent)])
		sent += m
		if err != nil {
			return fmt.Errorf("wrote %d of %d bytes: %w (the run is capped at %v)", sent, n, err, timeLimit)
		}
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		return err
	}
	if m, err := c.Read(buf); m != 0 || !errors.Is(err, io.EOF) {
		return fmt.Errorf("after the data: read %d bytes, %v; want the server's FIN", m, err)
	}
	return nil
}

// connectRR runs n connections, par at a time: each connects, sends 1
// byte, reads its echo and closes (the client's FIN goes first, so the
// client's side keeps TIME-WAIT, as an HTTP/1.0 client's would not; see
// BenchmarkSockConnect).
func connectRR(ctx context.Context, dial func(context.Context) (net.Conn, error), n, par int) (map[string]float64, error) {
	var next atomic.Int64
	lives := make([][]time.Duration, par)
	errs := make(chan error, par)
	start := time.Now()
	for i := range par {
		go func() {
			buf := []byte{0}
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				c, err := dial(ctx)
				if err == nil {
					c.SetDeadline(t0.Add(5 * time.Second))
					if _, err = c.Write(buf); err == nil {
						_, err = io.ReadFull(c, buf)
					}
					err = errors.Join(err, c.Close())
				}
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", next.Load(), err)
					return
				}
				lives[i] = append(lives[i], time.Since(t0))
			}
			errs <- nil
		}()
	}
	var err error
	for range par {
		err = errors.Join(err, <-errs)
	}
	m := map[string]float64{"conns/s": float64(n) / time.Since(start).Seconds()}
	latencies(m, slices.Concat(lives...))
	delete(m, "avg-µs")
	return m, err
}

// variants runs the kernel's side, then each of xdpnet's, as
// sub-benchmarks of b on the same lab, as compare does for one; each of
// xdpnet's lines reports the named metrics as ratios to the kernel's
// ("<name>-x-kernel").
func variants(b *testing.B, ratios []string, kernel func(b *testing.B) map[string]float64, names []string, xdpnet ...func(b *testing.B) map[string]float64) {
	var k map[string]float64
	b.Run("kernel", func(b *testing.B) { k = kernel(b) })
	for i, name := range names {
		b.Run(name, func(b *testing.B) {
			x := xdpnet[i](b)
			for _, r := range ratios {
				if k[r] > 0 {
					b.ReportMetric(x[r]/k[r], r+"-x-kernel")
				}
			}
		})
	}
}
