package gvisorpeer_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/xdpnet/xdpnet/bench/gvisorpeer"
	"github.com/xdpnet/xdpnet/internal/latency"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

func TestMain(m *testing.M) { lab.CheckNoLeaks(m) }

// open starts a gVisor stack on the lab's Local end, closed at cleanup.
func open(t testing.TB, l *lab.Lab, cfg gvisorpeer.Config) *gvisorpeer.Stack {
	t.Helper()
	cfg.Interface = l.Local.Link
	cfg.Addr = netip.PrefixFrom(l.StackAddr, 24)
	var st *gvisorpeer.Stack
	require.NoError(t, l.Local.Do(func() (err error) {
		st, err = gvisorpeer.Open(cfg)
		return err
	}))
	t.Cleanup(func() { assert.NoError(t, st.Close()) })
	return st
}

// peerDial dials addr from the kernel of l.Peer.
func peerDial(t testing.TB, l *lab.Lab, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	require.NoError(t, l.Peer.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	}))
	t.Cleanup(func() { c.Close() })
	return c
}

// peerListen listens on addr in the kernel of l.Peer.
func peerListen(t testing.TB, l *lab.Lab, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	require.NoError(t, l.Peer.Do(func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}))
	t.Cleanup(func() { ln.Close() })
	return ln
}

// echo serves every connection of ln by echoing it, until ln closes.
func echo(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}

// rr runs n request/response exchanges of size bytes over c and returns
// their latencies; each response must equal its request.
func rr(c net.Conn, size, n int, h *latency.Histogram) error {
	req := make([]byte, size)
	resp := make([]byte, size)
	if err := c.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		return err
	}
	for i := range n {
		req[0], req[size-1] = byte(i), byte(i>>8)
		t0 := time.Now()
		if _, err := c.Write(req); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			return err
		}
		h.Record(time.Since(t0))
		if resp[0] != req[0] || resp[size-1] != req[size-1] {
			return errors.New("response differs from request")
		}
	}
	return nil
}

// TestKernelClientRR: a kernel client in the peer exchanges 1-byte and
// 16 KiB requests with a gVisor echo server, a few thousand round trips.
func TestKernelClientRR(t *testing.T) {
	l := lab.New(t, lab.Config{})
	st := open(t, l, gvisorpeer.Config{})
	ln, err := st.Listen("tcp", ":7000")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go echo(ln)

	c := peerDial(t, l, l.StackAddr.String()+":7000")
	var small, big latency.Histogram
	require.NoError(t, rr(c, 1, 3000, &small))
	require.NoError(t, rr(c, 16<<10, 500, &big))
	t.Logf("1 B p50 %v p99 %v; 16 KiB p50 %v p99 %v (noisy: 2 shared vCPUs)",
		small.Quantile(0.5), small.Quantile(0.99), big.Quantile(0.5), big.Quantile(0.99))
	s, err := st.Stats()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, s.SegmentsReceived, uint64(3500), "every request arrived as a segment")
	assert.NotZero(t, s.Redirected)
}

// TestKernelClientBulk: a kernel client sends 64 MiB to a gVisor server,
// which answers with the SHA-256 of what it read.
func TestKernelClientBulk(t *testing.T) {
	l := lab.New(t, lab.Config{})
	st := open(t, l, gvisorpeer.Config{})
	ln, err := st.Listen("tcp", ":7001")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		h := sha256.New()
		if _, err := io.Copy(h, gvisorpeer.StallConn{Conn: c, D: 10 * time.Second}); err == nil {
			_, _ = c.Write(h.Sum(nil))
		}
	}()

	const size = 64 << 20
	c := peerDial(t, l, l.StackAddr.String()+":7001")
	require.NoError(t, c.SetDeadline(time.Now().Add(60*time.Second)))
	h := sha256.New()
	t0 := time.Now()
	n, err := io.Copy(c, io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{1}), size), h))
	require.NoError(t, err)
	require.Equal(t, int64(size), n)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	got := make([]byte, sha256.Size)
	_, err = io.ReadFull(c, got)
	require.NoError(t, err, "the server's hash")
	assert.Equal(t, h.Sum(nil), got, "the server read the bytes sent")
	t.Logf("64 MiB in %v (noisy: 2 shared vCPUs)", time.Since(t0))
}

// TestDialKernelEcho: a gVisor client dials a kernel echo server in the
// peer and reads back what it wrote.
func TestDialKernelEcho(t *testing.T) {
	l := lab.New(t, lab.Config{})
	st := open(t, l, gvisorpeer.Config{})
	ln := peerListen(t, l, l.Peer.Addr.Addr().String()+":7002")
	go echo(ln)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := st.Dial(ctx, "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	sc := gvisorpeer.StallConn{Conn: c, D: 10 * time.Second}

	want := make([]byte, 4<<20)
	rand.NewChaCha8([32]byte{2}).Read(want)
	errc := make(chan error, 1)
	go func() {
		for b := want; len(b) > 0; b = b[min(len(b), 64<<10):] {
			if _, err := sc.Write(b[:min(len(b), 64<<10)]); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	got := make([]byte, len(want))
	_, err = io.ReadFull(sc, got)
	require.NoError(t, err)
	require.NoError(t, <-errc)
	assert.True(t, string(got) == string(want), "echoed bytes equal the sent ones")
}

// TestStallFailsOrFinishes: the kernel reader stops reading for 2 s in
// the middle of a bounded gVisor bulk; the transfer either completes or
// fails with ErrStalled within its allowance, never hangs.
func TestStallFailsOrFinishes(t *testing.T) {
	l := lab.New(t, lab.Config{})
	st := open(t, l, gvisorpeer.Config{SendBuffer: 256 << 10})
	ln := peerListen(t, l, l.Peer.Addr.Addr().String()+":7003")

	const size, pauseAt = 32 << 20, 4 << 20
	read := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			read <- -1
			return
		}
		defer c.Close()
		n, _ := io.CopyN(io.Discard, c, pauseAt)
		time.Sleep(2 * time.Second) // the stall under test: the reader stops
		m, _ := io.Copy(io.Discard, c)
		read <- n + m
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := st.Dial(ctx, "tcp", ln.Addr().String())
	require.NoError(t, err)
	sc := gvisorpeer.StallConn{Conn: c, D: 5 * time.Second}
	chunk := make([]byte, 64<<10)
	t0 := time.Now()
	var sent int
	for sent < size && err == nil {
		var n int
		n, err = sc.Write(chunk)
		sent += n
	}
	c.Close()
	elapsed := time.Since(t0)
	got := <-read
	s, serr := st.Stats()
	require.NoError(t, serr)
	t.Logf("sent %d of %d in %v, peer read %d, err %v; retransmits %d timeouts %d",
		sent, size, elapsed, got, err, s.Retransmits, s.Timeouts)
	if err != nil {
		require.ErrorIs(t, err, gvisorpeer.ErrStalled)
		assert.Contains(t, err.Error(), "no progress for 5s")
		return
	}
	assert.Equal(t, int64(size), got, "the peer read every byte")
}

// TestStallConnReportsStall: against a reader that never reads, a bounded
// sender fills the peer's window and its buffer, and the next write fails
// with ErrStalled after the allowance instead of blocking.
func TestStallConnReportsStall(t *testing.T) {
	l := lab.New(t, lab.Config{})
	st := open(t, l, gvisorpeer.Config{SendBuffer: 256 << 10})
	ln := peerListen(t, l, l.Peer.Addr.Addr().String()+":7004")
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // held open, never read
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := st.Dial(ctx, "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	defer func() { (<-accepted).Close() }()

	sc := gvisorpeer.StallConn{Conn: c, D: 500 * time.Millisecond}
	chunk := make([]byte, 64<<10)
	var sent int
	for sent < 1<<30 && err == nil { // far more than any window and buffer
		var n int
		n, err = sc.Write(chunk)
		sent += n
	}
	require.ErrorIs(t, err, gvisorpeer.ErrStalled)
	assert.Contains(t, err.Error(), "write made no progress for 500ms")
	t.Logf("stalled after %d bytes: %v", sent, err)
}

// TestCloseDetaches: after Close the interface runs no XDP program.
func TestCloseDetaches(t *testing.T) {
	l := lab.New(t, lab.Config{})
	var st *gvisorpeer.Stack
	require.NoError(t, l.Local.Do(func() (err error) {
		st, err = gvisorpeer.Open(gvisorpeer.Config{Interface: l.Local.Link, Addr: netip.PrefixFrom(l.StackAddr, 24)})
		return err
	}))
	assert.Contains(t, l.Local.Run(t, "ip", "link", "show", "dev", l.Local.Link), "prog/xdp", "attached while open")
	require.NoError(t, st.Close())
	assert.False(t, strings.Contains(l.Local.Run(t, "ip", "link", "show", "dev", l.Local.Link), "prog/xdp"), "detached after Close")
}

// TestOpenRejects: bad configurations fail with a reason, attaching nothing.
func TestOpenRejects(t *testing.T) {
	l := lab.New(t, lab.Config{MTU: 9000})
	for name, cfg := range map[string]gvisorpeer.Config{
		"ipv6":      {Interface: l.Local.Link, Addr: netip.MustParsePrefix("2001:db8::1/64")},
		"no such":   {Interface: "nonesuch0", Addr: netip.PrefixFrom(l.StackAddr, 24)},
		"jumbo MTU": {Interface: l.Local.Link, Addr: netip.PrefixFrom(l.StackAddr, 24)},
	} {
		err := l.Local.Do(func() error {
			st, err := gvisorpeer.Open(cfg)
			if err == nil {
				st.Close()
			}
			return err
		})
		assert.Error(t, err, name)
	}
	assert.NotContains(t, l.Local.Run(t, "ip", "link", "show", "dev", l.Local.Link), "prog/xdp")
}
