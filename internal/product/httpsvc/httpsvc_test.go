package httpsvc_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/product/httpsvc"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
)

// pipeHTTP serves httpsvc on one stack and returns a client on another,
// the two joined by an in-memory pipe, and the server's base URL.
func pipeHTTP(t testing.TB) (*http.Client, string, *httpsvc.Handler) {
	la, lb := nic.NewPipe(nic.PipeConfig{Buffers: 1024, QueueDepth: 1024})
	a, err := sockapi.New(sockapi.Config{Addr: netip.MustParsePrefix("198.18.0.2/24")}, la)
	require.NoError(t, err)
	b, err := sockapi.New(sockapi.Config{Addr: netip.MustParsePrefix("198.18.0.3/24")}, lb)
	require.NoError(t, err)
	ln, err := b.Listen("tcp", ":80")
	require.NoError(t, err)
	h := httpsvc.New(httpsvc.StackStatus(b))
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	tr := &http.Transport{DialContext: a.DialContext, MaxIdleConnsPerHost: 4}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, srv.Shutdown(ctx))
		assert.NoError(t, a.Close())
		assert.NoError(t, b.Close())
	})
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, "http://198.18.0.3", h
}

func TestBytes(t *testing.T) {
	c, base, _ := pipeHTTP(t)
	for _, n := range []int64{0, 1, 1000, 32<<10 + 1, 3 << 20} {
		resp, err := c.Get(base + "/bytes/" + strconv.FormatInt(n, 10))
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, n, resp.ContentLength)
		want, err := io.ReadAll(httpsvc.Stream(n))
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, body), "body of /bytes/%d is the stream", n)
		sum := sha256.Sum256(body)
		assert.Equal(t, hex.EncodeToString(sum[:]), resp.Header.Get(httpsvc.SumHeader), "n=%d", n)
		assert.Equal(t, httpsvc.Sum(n), resp.Header.Get(httpsvc.SumHeader))
	}
	for _, bad := range []string{"-1", "x", strconv.FormatInt(httpsvc.MaxBytes+1, 10)} {
		resp, err := c.Get(base + "/bytes/" + bad)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
	}
	resp, err := c.Head(base + "/bytes/12345")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, httpsvc.Sum(12345), resp.Header.Get(httpsvc.SumHeader))
	assert.Equal(t, int64(12345), resp.ContentLength)
}

func TestSHA256(t *testing.T) {
	c, base, h := pipeHTTP(t)
	body := bytes.Repeat([]byte("xdpnet "), 300_000)
	resp, err := c.Post(base+"/sha256", "application/octet-stream", bytes.NewReader(body))
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	sum := sha256.Sum256(body)
	assert.Equal(t, hex.EncodeToString(sum[:])+"\n", string(got))
	assert.Equal(t, int64(len(body)), h.Stats().Hashed)
}

func TestIndex(t *testing.T) {
	c, base, _ := pipeHTTP(t)
	resp, err := c.Get(base + "/")
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Contains(t, string(got), "stack: 198.18.0.3, 1 queue(s)")
	assert.Contains(t, string(got), "queue 0: frames in")
	assert.Regexp(t, `\nARP: 1 entries; requests in \d+, out \d+; replies in \d+, out \d+; new MACs refused: 0 locked out, 0 unsolicited; 0 conflicts`, string(got))
	assert.Contains(t, string(got), "\nTCP: 1 connection(s) accepted")
	assert.Contains(t, string(got), "\nTCP SYN cookies: 0 sent, 0 received, 0 failed; listen overflows 0, drops 0")
	assert.Contains(t, string(got), "http: 1 request(s)")
	resp, err = c.Get(base + "/nothing")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// BenchmarkKeepAliveGet is one keep-alive GET of a 64-byte body over the
// pipe per op: net/http's client and server, both on xdpnet stacks in
// this process, so allocs/op counts both ends.
func BenchmarkKeepAliveGet(b *testing.B) {
	c, base, _ := pipeHTTP(b)
	url := base + "/bytes/64"
	buf := make([]byte, 128)
	get := func() {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.ReadFull(resp.Body, buf[:64])
		resp.Body.Close()
		if n != 64 {
			b.Fatalf("read %d bytes", n)
		}
	}
	get() // connect, and cache the digest
	b.ReportAllocs()
	for b.Loop() {
		get()
	}
}

// BenchmarkKeepAliveGetServer is the server's side alone: a raw client
// writes the same request on one connection and reads the fixed-size
// response, so allocs/op counts the handler, net/http's server and the
// stacks.
func BenchmarkKeepAliveGetServer(b *testing.B) {
	c, base, _ := pipeHTTP(b)
	tr := c.Transport.(*http.Transport)
	conn, err := tr.DialContext(context.Background(), "tcp", strings.TrimPrefix(base, "http://")+":80")
	require.NoError(b, err)
	defer conn.Close()
	req := []byte("GET /bytes/64 HTTP/1.1\r\nHost: x\r\n\r\n")
	// The response's length, learnt from the first one.
	_, err = conn.Write(req)
	require.NoError(b, err)
	first := make([]byte, 4096)
	n := readResponse(b, conn, first)
	resp := make([]byte, n)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := conn.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(conn, resp); err != nil {
			b.Fatal(err)
		}
	}
}

// readResponse reads one response with a 64-byte body into buf and
// returns its length.
func readResponse(tb testing.TB, c net.Conn, buf []byte) int {
	n := 0
	for {
		m, err := c.Read(buf[n:])
		require.NoError(tb, err)
		n += m
		if i := bytes.Index(buf[:n], []byte("\r\n\r\n")); i >= 0 && n >= i+4+64 {
			require.Equal(tb, i+4+64, n)
			return n
		}
	}
}
