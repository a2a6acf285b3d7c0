package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// BenchmarkTCPRR measures TCP request/response: a Go client on the peer (a
// kernel socket, net.TCPConn, TCP_NODELAY as Go sets it) sends 1 byte over
// one connection and waits for its echo, one in flight, b.N times;
// trans/s and the p50, p99, p99.9 and mean round trip in µs, as the client
// measured them.
//
// As in BenchmarkUDPEcho, both servers run in one lab on the same veth
// end, for the same client process in the peer's namespace:
//   - xdpnet: StackAddr:7, TCP echo from the poller's OnRound hook
//     (internal/product/services, as `xdpnet serve`), the poller run as xdpnet
//     runs it (spinning while segments come, parking after 200 µs idle).
//   - kernel: Local's kernel address:7, a Go echo server (net.TCPConn, a
//     goroutine per connection) whose segments pass the steering program
//     with XDP_PASS.
//
// Nothing is pinned. When the scheduler puts the client on the vCPU where
// the poller spins, the client runs only once the spin ends: such
// transactions take the spin and a wakeup, ~240 µs, and set the p99.
func BenchmarkTCPRR(b *testing.B) {
	l := lab.New(b, lab.Config{Mode: lab.Native})
	newStack(b, l).run(b)
	kernelTCP(b, l.Local, echoPort, tcpEcho)
	compare(b, []string{"trans/s"},
		func(b *testing.B) map[string]float64 {
			return tcpClient(b, l, "rr", netip.AddrPortFrom(kernelAddr(l), echoPort), b.N)
		},
		func(b *testing.B) map[string]float64 {
			return tcpClient(b, l, "rr", netip.AddrPortFrom(l.StackAddr, echoPort), b.N)
		})
}

// kernelTCP runs a Go TCP server on h's kernel address and port, serving
// each connection on a goroutine of its own, until b ends. Every
// connection gets timeLimit: serve must return once its conn fails.
func kernelTCP(b *testing.B, h *lab.Host, port uint16, serve func(net.Conn)) {
	var ln net.Listener
	require.NoError(b, h.Do(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(h.Addr.Addr(), port).String())
		return err
	}))
	serveTCP(b, ln, serve)
}

// serveTCP accepts connections on ln, the kernel's or xdpnet's, and
// serves each on a goroutine of its own until b ends, when it closes ln
// and every connection and waits for the goroutines.
func serveTCP(b *testing.B, ln net.Listener, serve func(net.Conn)) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			c.SetDeadline(time.Now().Add(timeLimit))
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serve(c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
}

// tcpBuffer is what the Go servers and the client read and write at once:
// the size of internal/product/services' buffer.
const tcpBuffer = 64 << 10

// tcpEcho echoes what c sends until c's FIN or an error.
func tcpEcho(c net.Conn) {
	buf := make([]byte, tcpBuffer)
	for {
		n, err := c.Read(buf)
		if _, werr := c.Write(buf[:n]); err != nil || werr != nil {
			return
		}
	}
}

// tcpDiscard reads c until its FIN or an error.
func tcpDiscard(c net.Conn) {
	buf := make([]byte, tcpBuffer)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// tcpChargen writes to c until it fails (the client closes it): a chargen
// that repeats one buffer.
func tcpChargen(c net.Conn) {
	buf := chargenBuffer()
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// chargenBuffer is what tcpChargen writes over and over: printable
// characters, as RFC 864's, in tcpBuffer bytes.
func chargenBuffer() []byte {
	buf := make([]byte, tcpBuffer)
	for i := range buf {
		buf[i] = ' ' + byte(i%95)
	}
	return buf
}

// tcpClientEnv makes this test binary the TCP client: "mode server n".
const tcpClientEnv = "XDPNET_BENCH_TCP_CLIENT"

// tcpClient runs the TCP client in mode (see TestTCPClientProcess) against
// server, in a process of its own in the peer's namespace, and reports
// what it measured.
func tcpClient(b *testing.B, l *lab.Lab, mode string, server netip.AddrPort, n int) map[string]float64 {
	return peerClient(b, l, "TestTCPClientProcess", tcpClientEnv, fmt.Sprintf("%s %s %d", mode, server, n), "tcp-client")
}

// TestTCPClientProcess is not a test: it is BenchmarkTCPRR's and
// BenchmarkTCPBulk's client, run as a child process in the peer's
// namespace, over one connection. It prints one line, "tcp-client: k=v …".
// Modes:
//   - rr: n 1-byte transactions (after echoWarmup more): trans/s, p50-µs,
//     p99-µs, p99.9-µs, avg-µs.
//   - read: reads n bytes, then closes: Gbit/s from the connect on.
//   - write: writes n bytes, then its FIN, and waits for the server's FIN
//     (sent once the server has read everything): Gbit/s from the connect
//     on.
func TestTCPClientProcess(t *testing.T) {
	spec := os.Getenv(tcpClientEnv)
	if spec == "" {
		t.Skip("BenchmarkTCPRR's and BenchmarkTCPBulk's client; runs only as their child process")
	}
	var mode, server string
	var n int
	if _, err := fmt.Sscan(spec, &mode, &server, &n); err != nil {
		t.Fatalf("%s=%q: %v", tcpClientEnv, spec, err)
	}
	start := time.Now()
	c, err := net.DialTimeout("tcp4", server, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(start.Add(timeLimit)); err != nil {
		t.Fatal(err)
	}
	switch mode {
	case "rr":
		m := tcpRR(t, c, n)
		fmt.Printf("tcp-client: trans/s=%g p50-µs=%g p99-µs=%g p99.9-µs=%g avg-µs=%g\n",
			m["trans/s"], m["p50-µs"], m["p99-µs"], m["p99.9-µs"], m["avg-µs"])
	case "read", "write":
		if mode == "read" {
			tcpRead(t, c, n)
		} else {
			tcpWrite(t, c.(*net.TCPConn), n)
		}
		fmt.Printf("tcp-client: Gbit/s=%g\n", float64(n)*8/time.Since(start).Seconds()/1e9)
	default:
		t.Fatalf("%s=%q: unknown mode %q", tcpClientEnv, spec, mode)
	}
}

// tcpRR runs n 1-byte transactions on c and returns their rate and
// latencies.
func tcpRR(t *testing.T, c net.Conn, n int) map[string]float64 {
	req, resp := make([]byte, 1), make([]byte, 1)
	rtts := make([]time.Duration, 0, n)
	var start time.Time
	for i := -echoWarmup; i < n; i++ {
		if i == 0 {
			rtts, start = rtts[:0], time.Now()
		}
		req[0] = byte(i) // each echo must be this request's
		t0 := time.Now()
		if _, err := c.Write(req); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			t.Fatalf("request %d: %v (the run is capped at %v)", i, err, timeLimit)
		}
		rtts = append(rtts, time.Since(t0))
		if resp[0] != req[0] {
			t.Fatalf("request %d: echo %d, want %d", i, resp[0], req[0])
		}
	}
	m := map[string]float64{"trans/s": float64(n) / time.Since(start).Seconds()}
	latencies(m, rtts) // sorts rtts
	m["p99.9-µs"] = float64(rtts[len(rtts)*999/1000]) / float64(time.Microsecond)
	return m
}

// tcpRead reads n bytes from c.
func tcpRead(t *testing.T, c net.Conn, n int) {
	buf := make([]byte, tcpBuffer)
	for got := 0; got < n; {
		m, err := c.Read(buf[:min(len(buf), n-got)])
		got += m
		if err != nil && got < n {
			t.Fatalf("read %d of %d bytes: %v (the run is capped at %v)", got, n, err, timeLimit)
		}
	}
}

// tcpWrite writes n bytes to c, then its FIN, and waits for the server's.
func tcpWrite(t *testing.T, c *net.TCPConn, n int) {
	buf := make([]byte, tcpBuffer)
	for sent := 0; sent < n; {
		m, err := c.Write(buf[:min(len(buf), n-sent)])
		sent += m
		if err != nil {
			t.Fatalf("wrote %d of %d bytes: %v (the run is capped at %v)", sent, n, err, timeLimit)
		}
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Read(buf); m != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after the data: read %d bytes, %v; want the server's FIN", m, err)
	}
}
