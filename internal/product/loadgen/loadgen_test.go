package loadgen_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/product/loadgen"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
)

var (
	clientAddr = netip.MustParsePrefix("198.18.0.2/24")
	serverAddr = netip.MustParsePrefix("198.18.0.1/24")
)

// pipeStacks are a client and a server stack joined by an in-memory pipe.
func pipeStacks(t *testing.T) (client, server *sockapi.Stack) {
	la, lb := nic.NewPipe(nic.PipeConfig{Buffers: 4096, QueueDepth: 4096})
	client, err := sockapi.New(sockapi.Config{Addr: clientAddr}, la)
	require.NoError(t, err)
	server, err = sockapi.New(sockapi.Config{Addr: serverAddr}, lb)
	require.NoError(t, err)
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// serveHTTP serves h on the server stack's port 80 until the test ends.
func serveHTTP(t *testing.T, server *sockapi.Stack, h http.Handler) string {
	ln, err := server.Listen("tcp", ":80")
	require.NoError(t, err)
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + serverAddr.Addr().String() + "/x"
}

func dialer(s *sockapi.Stack, addr string) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) { return s.DialContext(ctx, "tcp", addr) }
}

// TestHTTPClosedLoop: ten keep-alive connections GET a 100-byte body for
// half a second; every request is answered, the bytes add up, and each
// connection stayed open (ten dials, no more).
func TestHTTPClosedLoop(t *testing.T) {
	client, server := pipeStacks(t)
	var conns atomic.Int64
	url := serveHTTP(t, server, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("b", 100))
	}))
	target, err := loadgen.NewHTTP(url)
	require.NoError(t, err)
	dial := dialer(client, serverAddr.Addr().String()+":80")
	var progress []loadgen.Progress
	res, err := loadgen.Run(context.Background(), loadgen.Config{Conns: 10, Duration: 1500 * time.Millisecond, Target: target,
		Dial: func(ctx context.Context) (net.Conn, error) {
			conns.Add(1)
			return dial(ctx)
		},
		Progress: func(p loadgen.Progress) { progress = append(progress, p) }})
	require.NoError(t, err)
	t.Logf("%d requests in %v, %.0f/s; p50 %v p99 %v max %v", res.Requests, res.Elapsed, res.Rate(),
		res.Latency.Quantile(0.5), res.Latency.Quantile(0.99), res.Latency.Max())
	require.Zero(t, res.Failed, "failures: %v", res.ErrorReasons())
	require.Greater(t, res.Requests, uint64(10))
	assert.Equal(t, res.Requests, res.Latency.Count())
	assert.Equal(t, int64(10), conns.Load(), "keep-alive: one dial per connection")
	assert.Equal(t, 10, res.Conns)
	// Each response is its status line, headers and the 100-byte body.
	assert.Greater(t, res.Bytes, res.Requests*100)
	assert.Less(t, res.Bytes, res.Requests*300)
	require.NotEmpty(t, progress, "a progress report a second")
	assert.Equal(t, 10, progress[0].Target)
}

// TestFixedRateSeesStall: at a fixed 1,000 requests a second over ten
// connections, a server that stalls every request for 100 ms, once,
// 500 ms into a 1.5 s run, shows in the percentiles: latency runs from
// each request's intended send time, so the ~100 requests meant to go
// during the stall each count the wait (p99 at least 50 ms). A closed
// loop over the same server, logged beside it, counts one slow request
// per connection and hides the stall from its p99.
func TestFixedRateSeesStall(t *testing.T) {
	client, server := pipeStacks(t)
	var stallFrom atomic.Int64 // unix ns; the stall lasts until 100 ms after
	url := serveHTTP(t, server, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if from := stallFrom.Load(); from != 0 {
			if until := time.Unix(0, from).Add(100 * time.Millisecond); time.Now().Before(until) && time.Now().After(time.Unix(0, from)) {
				time.Sleep(time.Until(until))
			}
		}
		io.WriteString(w, "ok")
	}))
	target, err := loadgen.NewHTTP(url)
	require.NoError(t, err)
	run := func(rate float64) *loadgen.Result {
		stallFrom.Store(time.Now().Add(500 * time.Millisecond).UnixNano())
		res, err := loadgen.Run(context.Background(), loadgen.Config{Conns: 10, Duration: 1500 * time.Millisecond, Rate: rate,
			Target: target, Dial: dialer(client, serverAddr.Addr().String()+":80")})
		require.NoError(t, err)
		require.Zero(t, res.Failed, "failures: %v", res.ErrorReasons())
		t.Logf("rate %v: %d requests, %.0f/s; p50 %v p90 %v p99 %v p99.9 %v max %v", rate, res.Requests, res.Rate(),
			res.Latency.Quantile(0.5), res.Latency.Quantile(0.9), res.Latency.Quantile(0.99), res.Latency.Quantile(0.999), res.Latency.Max())
		return res
	}
	open := run(1000)
	assert.InDelta(t, 1500, float64(open.Requests), 150, "the schedule's requests, every one sent")
	assert.GreaterOrEqual(t, open.Latency.Quantile(0.99), 50*time.Millisecond, "the stall shows in p99")
	assert.GreaterOrEqual(t, open.Latency.Max(), 90*time.Millisecond)
	run(0)
}

// TestEcho: echo requests of 1 KiB come back whole and checked; a server
// that closes every connection after its first echo fails the rest,
// counted by reason, and the load redials.
func TestEcho(t *testing.T) {
	client, server := pipeStacks(t)
	ln, err := server.Listen("tcp", ":7")
	require.NoError(t, err)
	var once atomic.Bool
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if once.Load() {
					buf := make([]byte, 1024)
					io.ReadFull(c, buf)
					c.Write(buf)
					return // then close: the next request fails
				}
				io.Copy(c, c)
			}()
		}
	}()
	target, err := loadgen.NewEcho(1024)
	require.NoError(t, err)
	cfg := loadgen.Config{Conns: 4, Duration: 500 * time.Millisecond, Target: target, Dial: dialer(client, serverAddr.Addr().String()+":7")}
	res, err := loadgen.Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Zero(t, res.Failed, "failures: %v", res.ErrorReasons())
	assert.Equal(t, res.Requests*1024, res.Bytes)

	once.Store(true)
	res, err = loadgen.Run(context.Background(), cfg)
	require.NoError(t, err)
	t.Logf("closing server: %d answered, %d failed: %v", res.Requests, res.Failed, res.ErrorReasons())
	assert.NotZero(t, res.Failed)
	assert.NotZero(t, res.Requests, "redialled after each failure")
	assert.NotEmpty(t, res.ErrorReasons())
}

// TestBadConfig: each mistake is a clear error.
func TestBadConfig(t *testing.T) {
	target, err := loadgen.NewEcho(1)
	require.NoError(t, err)
	dial := func(context.Context) (net.Conn, error) { return nil, io.EOF }
	for _, c := range []struct {
		cfg  loadgen.Config
		want string
	}{
		{loadgen.Config{Duration: time.Second, Target: target, Dial: dial}, "0 connections"},
		{loadgen.Config{Conns: 1, Target: target, Dial: dial}, "duration"},
		{loadgen.Config{Conns: 1, Duration: time.Second, Rate: -1, Target: target, Dial: dial}, "rate"},
		{loadgen.Config{Conns: 1, Duration: time.Second}, "required"},
	} {
		_, err := loadgen.Run(context.Background(), c.cfg)
		assert.ErrorContains(t, err, c.want)
	}
	for _, u := range []string{"ftp://x/", "http://", "::"} {
		_, err := loadgen.NewHTTP(u)
		assert.Error(t, err, u)
	}
	_, err = loadgen.NewEcho(0)
	assert.ErrorContains(t, err, "echo size 0")
	_, err = loadgen.NewEcho(1 << 20)
	assert.Error(t, err)
}

// TestDeadServer: dials to a port nobody serves fail fast and are
// counted, with pauses between tries, and the run still ends on time.
func TestDeadServer(t *testing.T) {
	client, _ := pipeStacks(t)
	target, err := loadgen.NewEcho(10)
	require.NoError(t, err)
	start := time.Now()
	res, err := loadgen.Run(context.Background(), loadgen.Config{Conns: 2, Duration: 500 * time.Millisecond, Target: target,
		Dial: dialer(client, serverAddr.Addr().String()+":9999")})
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 3*time.Second, "ended near its duration")
	assert.Zero(t, res.Requests)
	assert.NotZero(t, res.Failed)
	assert.LessOrEqual(t, res.Failed, uint64(2*6), "a pause between tries, not a tight loop")
	t.Logf("%v", res.ErrorReasons())
	assert.Contains(t, res.ErrorReasons()[0], "connect: connection refused")
}
