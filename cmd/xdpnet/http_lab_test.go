package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/product/httpsvc"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

var curlSum = regexp.MustCompile(`(?im)^` + httpsvc.SumHeader + `: ([0-9a-f]{64})\r?$`)

// TestServeHTTPLab: curl, in the kernel's namespace, downloads 100 MiB
// from `xdpnet serve -http :80` and checks it against the header, posts a
// body to /sha256, and reads the status page; SIGTERM then stops the
// server cleanly with the HTTP counters in its last lines.
func TestServeHTTPLab(t *testing.T) {
	bin := buildBinary(t)
	l := lab.New(t, lab.Config{})
	s := startServe(t, l, bin, "-http", ":80")
	assert.Contains(t, s.next(t), "; HTTP on 198.18.0.2:80")
	base := "http://" + l.StackAddr.String()

	t.Run("Download", func(t *testing.T) {
		const size = 100 << 20
		dir := t.TempDir()
		body, headers := filepath.Join(dir, "body"), filepath.Join(dir, "headers")
		start := time.Now()
		out := l.Peer.Run(t, "curl", "-sS", "--fail", "--max-time", "25", "-D", headers, "-o", body,
			"-w", "%{size_download} %{speed_download}", base+"/bytes/"+strconv.Itoa(size))
		elapsed := time.Since(start)
		fields := strings.Fields(out)
		require.Len(t, fields, 2, out)
		assert.Equal(t, strconv.Itoa(size), fields[0])
		speed, _ := strconv.ParseFloat(fields[1], 64)
		t.Logf("curl: %d MiB in %v, %.0f MB/s (%.2f Gbit/s)", size>>20, elapsed.Round(time.Millisecond), speed/1e6, speed*8/1e9)
		h, err := os.ReadFile(headers)
		require.NoError(t, err)
		m := curlSum.FindSubmatch(h)
		require.NotNil(t, m, "no %s header in %s", httpsvc.SumHeader, h)
		f, err := os.Open(body)
		require.NoError(t, err)
		defer f.Close()
		sum := sha256.New()
		n, err := io.Copy(sum, f)
		require.NoError(t, err)
		assert.Equal(t, int64(size), n)
		assert.Equal(t, string(m[1]), hex.EncodeToString(sum.Sum(nil)), "the body's digest is the header's")
		assert.Equal(t, httpsvc.Sum(size), string(m[1]), "and the stream's")
	})
	t.Run("POSTSHA256", func(t *testing.T) {
		const size = 8 << 20
		file := filepath.Join(t.TempDir(), "upload")
		data, err := io.ReadAll(httpsvc.Stream(size))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(file, data, 0o644))
		out := l.Peer.Run(t, "curl", "-sS", "--fail", "--max-time", "20", "--data-binary", "@"+file, base+"/sha256")
		want := sha256.Sum256(data)
		assert.Equal(t, hex.EncodeToString(want[:]), strings.TrimSpace(out))
	})
	t.Run("Status", func(t *testing.T) {
		out := l.Peer.Run(t, "curl", "-sS", "--fail", "--max-time", "10", base+"/")
		assert.Contains(t, out, "stack: 198.18.0.2, 1 queue(s)")
		assert.Regexp(t, `queue 0: frames in \d+`, out)
		assert.Contains(t, out, "http: 3 request(s)")
	})
	t.Run("Metrics", func(t *testing.T) {
		out := l.Peer.Run(t, "curl", "-sS", "--fail", "--max-time", "10", base+"/metrics")
		// The three connections before and this one.
		assert.Regexp(t, `(?m)^xdpnet_tcp_passive_opens_total 4$`, out)
		assert.Regexp(t, `(?m)^xdpnet_link_rx_frames_total\{queue="0"\} [1-9]\d*$`, out)
		assert.Contains(t, out, "# HELP xdpnet_tcp_curr_estab")
	})

	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	var rest []string
	for line := range s.lines {
		rest = append(rest, line)
	}
	require.NoError(t, s.cmd.Wait(), "exit status after SIGTERM; stderr: %s", s.stdout)
	all := strings.Join(rest, "\n")
	assert.Contains(t, all, "xdpnet: http: 3 request(s), 104857600 byte(s) sent, 8388608 byte(s) hashed")
	assert.Contains(t, all, "xdpnet: TCP: 4 connection(s) accepted")
	assert.Contains(t, all, "XDP program detached")
	assert.False(t, xdpAttached(t, l.Local))
}

// TestServeHTTPBadAddr: a bad -http address fails at once, in one line,
// leaving nothing attached.
func TestServeHTTPBadAddr(t *testing.T) {
	bin := buildBinary(t)
	l := lab.New(t, lab.Config{})
	out, err := l.Local.Command(context.Background(), bin, "serve", "-iface", l.Local.Link, "-addr", "198.18.0.2/24", "-http", "10.0.0.1:80").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "-http")
	assert.False(t, xdpAttached(t, l.Local))
}
