package main

import (
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// TestServeLinkFlap: the kernel echoes 64 MiB through serve's TCP echo
// while serve's link goes down for a second: the echo comes back whole
// (by hash), and serve keeps serving.
func TestServeLinkFlap(t *testing.T) {
	const size = 64 << 20
	bin := buildBinary(t)
	l := lab.New(t, lab.Config{})
	s := startServe(t, l, bin)
	assert.Contains(t, s.next(t), "xdpnet: serving")
	c := dialPeerNet(t, l, "tcp4", 7)
	require.NoError(t, c.SetDeadline(time.Now().Add(time.Minute)))

	sent := sha256.New()
	werr := make(chan error, 1)
	go func() {
		rng := rand.NewChaCha8([32]byte{9})
		buf := make([]byte, 64<<10)
		for off := 0; off < size; off += len(buf) {
			rng.Read(buf)
			sent.Write(buf)
			if _, err := c.Write(buf); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	var echoed atomic.Int64
	flapped := make(chan error, 1)
	go func() {
		for echoed.Load() < 4<<20 {
			time.Sleep(100 * time.Microsecond)
		}
		if err := l.Local.SetLinkUp(false); err != nil {
			flapped <- err
			return
		}
		// The fault being injected: a link down for a second.
		time.Sleep(time.Second)
		flapped <- l.Local.SetLinkUp(true)
	}()
	start := time.Now()
	got := sha256.New()
	_, err := io.CopyN(io.MultiWriter(got, writeCounter{&echoed}), c, size)
	require.NoError(t, err, "echo after %d bytes", echoed.Load())
	require.NoError(t, <-werr)
	require.NoError(t, <-flapped)
	assert.Equal(t, sent.Sum(nil), got.Sum(nil), "the echo differs from what was sent")
	t.Logf("64 MiB echoed across a 1 s flap of serve's link in %v", time.Since(start).Round(time.Millisecond))

	// Still serving: a fresh connection echoes.
	assert.NoError(t, echoRoundTrip(dialPeerNet(t, l, "tcp4", 7), 1<<20, 3))
	select {
	case line, ok := <-s.lines:
		t.Fatalf("serve said %q (open %v) after the flap; stderr: %s", line, ok, s.stdout)
	default:
	}
}

// writeCounter counts the bytes written to it.
type writeCounter struct{ n *atomic.Int64 }

func (w writeCounter) Write(b []byte) (int, error) {
	w.n.Add(int64(len(b)))
	return len(b), nil
}

// TestServeInterfaceRemoved: serve, idle, exits within 5 s of its
// interface being deleted, with status 1 and one line that says so.
func TestServeInterfaceRemoved(t *testing.T) {
	bin := buildBinary(t)
	l := lab.New(t, lab.Config{})
	s := startServe(t, l, bin)
	assert.Contains(t, s.next(t), "xdpnet: serving")
	require.NoError(t, l.Local.DeleteLink())
	exited := make(chan error, 1)
	go func() {
		for range s.lines { // the statistics serve prints as it stops
		}
		exited <- s.cmd.Wait()
	}()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "serve exited with %v", err)
		assert.Equal(t, 1, ee.ExitCode())
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not notice its interface deleted within 5 s")
	}
	assert.Equal(t, "xdpnet: "+l.Local.Link+": interface removed\n", s.stdout.String(), "stderr")
}
