package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// kernelHTTP serves a 100-byte body from the kernel of the lab's Peer
// namespace on port 8080 (Go's net/http over the kernel's sockets) until
// the test ends, and counts the connections it accepted.
func kernelHTTP(t *testing.T, l *lab.Lab) (url string, accepted *atomic.Int64) {
	var ln net.Listener
	require.NoError(t, l.Peer.Do(func() (err error) {
		ln, err = net.Listen("tcp", l.Peer.Addr.Addr().String()+":8080")
		return err
	}))
	accepted = &atomic.Int64{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("k", 100))
	}), ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Peer.Addr.Addr().String() + ":8080/", accepted
}

// runLoad runs `xdpnet load -json` in ns on link with addr, and decodes
// its result; it returns the exit error too.
func runLoad(t *testing.T, h *lab.Host, bin string, addr netip.Prefix, args ...string) (loadResult, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = append([]string{"load", "-iface", h.Link, "-addr", addr.String(), "-json"}, args...)
	cmd := h.Command(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var res loadResult
	if stdout.Len() > 0 {
		require.NoError(t, json.Unmarshal(stdout.Bytes(), &res), "stdout: %s\nstderr: %s", stdout.String(), stderr.String())
	}
	return res, stderr.String(), err
}

// TestLoadLab: `xdpnet load` holds 1,000 keep-alive connections for 3 s
// against the kernel's HTTP server, then against `xdpnet serve -http`
// (the load's stack on the other end of the veth, an xdpnet stack on
// each), and every request is answered; each connection dialled once.
// Against a port nobody serves it exits 1 and says why.
func TestLoadLab(t *testing.T) {
	bin := buildBinary(t)
	l := lab.New(t, lab.Config{})
	stackPrefix := netip.PrefixFrom(l.StackAddr, 24)

	t.Run("Kernel", func(t *testing.T) {
		url, accepted := kernelHTTP(t, l)
		res, stderr, err := runLoad(t, l.Local, bin, stackPrefix, "-c", "1000", "-d", "3s", url)
		require.NoError(t, err, "stderr: %s", stderr)
		t.Logf("kernel server: %d requests in %.2f s, %.0f/s, p50 %.0f µs p99 %.0f µs max %.0f µs", res.Requests, res.ElapsedS,
			res.RequestsPS, res.LatencyUS.Percentiles["p50"], res.LatencyUS.Percentiles["p99"], res.LatencyUS.Max)
		assert.Zero(t, res.Failed)
		assert.Equal(t, 1000, res.MaxConns)
		assert.Equal(t, int64(1000), accepted.Load(), "keep-alive: one connection each")
		assert.Greater(t, res.Requests, uint64(1000))
		assert.Greater(t, res.Bytes, res.Requests*100)
		assert.Contains(t, stderr, "requests", "progress lines")
	})

	t.Run("XdpnetServe", func(t *testing.T) {
		s := startServe(t, l, bin, "-http", ":80")
		require.Contains(t, s.next(t), "HTTP on")
		// The load's own stack on the peer's end of the veth, beside the
		// peer's kernel (198.18.0.3).
		loadAddr := netip.MustParsePrefix("198.18.0.4/24")
		res, stderr, err := runLoad(t, l.Peer, bin, loadAddr, "-c", "1000", "-d", "3s",
			"http://"+l.StackAddr.String()+"/bytes/100")
		require.NoError(t, err, "stderr: %s", stderr)
		t.Logf("xdpnet serve: %d requests in %.2f s, %.0f/s, p50 %.0f µs p99 %.0f µs max %.0f µs", res.Requests, res.ElapsedS,
			res.RequestsPS, res.LatencyUS.Percentiles["p50"], res.LatencyUS.Percentiles["p99"], res.LatencyUS.Max)
		assert.Zero(t, res.Failed)
		assert.Equal(t, 1000, res.MaxConns)
		assert.Greater(t, res.Requests, uint64(1000))
	})

	t.Run("FixedRate", func(t *testing.T) {
		url, _ := kernelHTTP(t, l)
		res, stderr, err := runLoad(t, l.Local, bin, stackPrefix, "-c", "10", "-d", "2s", "-rate", "500", url)
		require.NoError(t, err, "stderr: %s", stderr)
		assert.InDelta(t, 1000, float64(res.Requests), 100, "the schedule's requests")
		assert.Equal(t, 500.0, res.TargetRate)
	})

	t.Run("Refused", func(t *testing.T) {
		res, stderr, err := runLoad(t, l.Local, bin, stackPrefix, "-c", "2", "-d", "500ms",
			"tcp://"+l.Peer.Addr.Addr().String()+":9")
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit)
		assert.Equal(t, 1, exit.ExitCode())
		assert.Zero(t, res.Requests)
		assert.NotZero(t, res.Failed)
		assert.Contains(t, stderr, "requests failed: "+strconv.FormatUint(res.Failed, 10)+"× connect: connection refused")
	})
}
