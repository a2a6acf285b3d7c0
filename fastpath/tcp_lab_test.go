package fastpath_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/tcp"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// TCP interoperability with the Linux kernel over AF_XDP: xdpnet on the
// lab's Local end, the kernel's TCP in the Peer namespace. xdpnet's side
// of every test runs on the poller goroutine, as apps (functions the Serve
// callback runs on every Poll until they report done) and as closures the
// test goroutine hands over and waits for (tcpLab.do). The kernel's side
// is Go's net package in the Peer namespace, with deadlines on every
// socket, and ss(8) there for the kernel's connection states.

// labMSL is xdpnet's maximum segment lifetime in these tests: TIME-WAIT
// lasts 2 s, long enough to see and short enough to see end.
const labMSL = time.Second

// labTimeout bounds each wait of these tests: a transfer, a state, a
// result.
const labTimeout = 20 * time.Second

// tcpLab is xdpnet on the Local end of a lab with apps on its poller.
type tcpLab struct {
	l *lab.Lab
	p *fastpath.Poller
	// apps run on every Poll until they return true; the poller
	// goroutine's alone.
	apps []func(now time.Duration) bool
	stop func()
}

// newTCPLab makes a lab for XDP mode and runs a poller on its Local end
// with the TCP config cfg (MSL labMSL unless set).
func newTCPLab(t *testing.T, mode lab.Mode, cfg tcp.Config) *tcpLab {
	t.Helper()
	if cfg.MSL == 0 {
		cfg.MSL = labMSL
	}
	attach := steer.Native
	if mode == lab.Generic {
		attach = steer.Generic
	}
	s := &tcpLab{l: lab.New(t, lab.Config{Mode: mode})}
	var dev *nic.XDPDevice
	require.NoError(t, s.l.Local.Do(func() (err error) {
		dev, err = nic.OpenXDP(nic.XDPConfig{Interface: s.l.Local.Link, Addrs: []netip.Addr{s.l.StackAddr}, Attach: attach})
		return err
	}))
	var err error
	s.p, err = fastpath.New(fastpath.Config{
		Link: dev.Links()[0],
		IP:   ip.Config{Addr: netip.PrefixFrom(s.l.StackAddr, 24)},
		TCP:  cfg,
	})
	if err != nil {
		dev.Close()
		require.NoError(t, err)
	}
	s.p.OnRound(s.serve)
	stop := s.p.Start()
	s.stop = sync.OnceFunc(func() {
		if err := stop(); err != nil {
			t.Errorf("poller: %v", err)
		}
	})
	t.Cleanup(func() {
		s.stop()
		s.p.Close()
		dev.Close()
	})
	return s
}

// serve is the poller's OnRound hook: it runs every app. A round runs
// when a frame or a timer is due or after do; a test that changes what an
// app waits for (closes a hold channel) wakes the poller with release.
func (s *tcpLab) serve(now time.Duration) {
	// Apps may start apps: those run in this round too.
	for i := 0; i < len(s.apps); i++ {
		if s.apps[i](now) {
			s.apps[i] = nil
		}
	}
	s.apps = slices.DeleteFunc(s.apps, func(a func(time.Duration) bool) bool { return a == nil })
}

// do runs fn on the poller goroutine and waits for it.
func (s *tcpLab) do(t *testing.T, fn func(tb *tcp.Table, now time.Duration)) {
	t.Helper()
	done := make(chan struct{})
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	// Poller.Do wakes a parked poller; a channel drained by Serve would
	// wait for the next frame or timer.
	s.p.Do(func() { fn(s.p.TCP(), s.p.Now()); close(done) })
	select {
	case <-done:
	case <-timeout.C:
		t.Fatal("a command on the poller did not finish")
	}
}

// release closes hold and runs a round of the poller, so the apps that
// wait for hold go on.
func (s *tcpLab) release(t *testing.T, hold chan struct{}) {
	t.Helper()
	close(hold)
	s.do(t, func(*tcp.Table, time.Duration) {})
}

// spawn starts app on the poller goroutine, from the test goroutine.
func (s *tcpLab) spawn(t *testing.T, app func(now time.Duration) bool) {
	t.Helper()
	s.do(t, func(*tcp.Table, time.Duration) { s.apps = append(s.apps, app) })
}

// pause stops the poller until the returned function is called (or 5 s
// pass): frames wait in the receive ring, so xdpnet answers nothing.
func (s *tcpLab) pause(t *testing.T) (resume func()) {
	t.Helper()
	paused, release := make(chan struct{}), make(chan struct{})
	s.p.Do(func() {
		close(paused)
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	select {
	case <-paused:
	case <-time.After(5 * time.Second):
		t.Fatal("the poller did not pause")
	}
	return sync.OnceFunc(func() { close(release) })
}

// state is c's state, read on the poller goroutine.
func (s *tcpLab) state(t *testing.T, c *tcp.Conn) tcp.State {
	t.Helper()
	var st tcp.State
	s.do(t, func(*tcp.Table, time.Duration) { st = c.State() })
	return st
}

// waitState waits until c is in state want.
func (s *tcpLab) waitState(t *testing.T, c *tcp.Conn, want tcp.State) {
	t.Helper()
	var st tcp.State
	eventually(t, func() bool { st = s.state(t, c); return st == want },
		func() string { return fmt.Sprintf("xdpnet's %v is %v, not %v", c.LocalAddr(), st, want) })
}

// stats are the TCP table's counters and its size.
func (s *tcpLab) stats(t *testing.T) (tcp.Stats, int) {
	t.Helper()
	var st tcp.Stats
	var n int
	s.do(t, func(tb *tcp.Table, _ time.Duration) { st, n = tb.Stats(), tb.Len() })
	return st, n
}

// checkClean asserts that nothing went wrong below the connections: no
// segment from the kernel failed its checksum or was malformed, no frame
// was bad, nothing failed to go out. It then waits for every connection,
// TIME-WAIT included, to leave the table, and returns the counters.
func (s *tcpLab) checkClean(t *testing.T) tcp.Stats {
	t.Helper()
	st, _ := s.stats(t)
	assert.Zero(t, st.InCsumErrors, "the kernel's checksums (the lab turned the peer's tx offload off)")
	assert.Zero(t, st.InErrs)
	assert.Zero(t, st.OfoDrops)
	assert.Zero(t, st.RSTDrops)
	n := -1
	eventually(t, func() bool { _, n = s.stats(t); return n == 0 },
		func() string { return fmt.Sprintf("%d connections still in the table after TIME-WAIT", n) })
	var ps fastpath.Stats
	s.do(t, func(*tcp.Table, time.Duration) { ps = s.p.Stats() })
	assert.Zero(t, ps.RxBadFrames)
	assert.Zero(t, ps.TxErrors)
	assert.Zero(t, ps.TxNoRoute)
	assert.Zero(t, ps.TxUnresolved)
	return st
}

// eventually polls cond every few milliseconds for up to labTimeout and
// fails the test with msg's text if it never holds.
func eventually(t *testing.T, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(labTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// receive waits for a value from ch for up to labTimeout.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(labTimeout):
		t.Fatalf("no %s within %v", what, labTimeout)
		var zero T
		return zero
	}
}

// kernelListen listens on TCP in the Peer namespace, on a port the kernel
// picks.
func kernelListen(t *testing.T, l *lab.Lab) *net.TCPListener {
	t.Helper()
	return kernelListenBuf(t, l, 0)
}

// kernelListenBuf is kernelListen with SO_RCVBUF set to rcvbuf (unless
// 0) before listen, so accepted connections offer a window that small.
func kernelListenBuf(t *testing.T, l *lab.Lab, rcvbuf int) *net.TCPListener {
	t.Helper()
	var ln net.Listener
	require.NoError(t, l.Peer.Do(func() (err error) {
		var lc net.ListenConfig
		if rcvbuf > 0 {
			lc.Control = func(_, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
				})
				return errors.Join(err, serr)
			}
		}
		ln, err = lc.Listen(context.Background(), "tcp4", netip.AddrPortFrom(l.Peer.Addr.Addr(), 0).String())
		return err
	}))
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// kernelAccept accepts one connection on ln within labTimeout and gives it
// a deadline.
func kernelAccept(t *testing.T, ln *net.TCPListener) *net.TCPConn {
	t.Helper()
	require.NoError(t, ln.SetDeadline(time.Now().Add(labTimeout)))
	c, err := ln.AcceptTCP()
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(labTimeout)))
	return c
}

// kernelDial connects from the Peer namespace to xdpnet's port, with a
// deadline on the connection. The caller closes it.
func kernelDial(l *lab.Lab, port uint16) (*net.TCPConn, error) {
	return kernelDialFrom(l, 0, port)
}

// kernelDialFrom is kernelDial from local port from (0: any).
func kernelDialFrom(l *lab.Lab, from, port uint16) (*net.TCPConn, error) {
	var c net.Conn
	err := l.Peer.Do(func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		if from != 0 {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(l.Peer.Addr.Addr(), from))
		}
		c, err = d.Dial("tcp4", netip.AddrPortFrom(l.StackAddr, port).String())
		return err
	})
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	return tc, tc.SetDeadline(time.Now().Add(labTimeout))
}

// addrPort is a net.Addr of a TCP socket as a netip.AddrPort.
func addrPort(a net.Addr) netip.AddrPort { return a.(*net.TCPAddr).AddrPort() }

// kernelState is the state ss shows for the Peer's socket from local to
// remote ("ESTAB", "FIN-WAIT-2", "TIME-WAIT", ...), or "" if there is
// none: a closed socket is gone.
func kernelState(t *testing.T, l *lab.Lab, local, remote netip.AddrPort) string {
	t.Helper()
	for line := range strings.Lines(l.Peer.Run(t, "ss", "-Htan")) {
		f := strings.Fields(line)
		if len(f) >= 5 && f[3] == local.String() && f[4] == remote.String() {
			return f[0]
		}
	}
	return ""
}

// waitKernelState waits until ss shows the Peer's socket from local to
// remote in state want ("" for gone).
func waitKernelState(t *testing.T, l *lab.Lab, local, remote netip.AddrPort, want string) {
	t.Helper()
	var st string
	eventually(t, func() bool { st = kernelState(t, l, local, remote); return st == want },
		func() string { return fmt.Sprintf("the kernel's %v->%v is %q, not %q", local, remote, st, want) })
}

// pattern is the byte stream seed names: ChaCha8's, so no shift or
// repeat of a block goes unnoticed.
func pattern(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

// flowResult is what one side of a flow sent and received.
type flowResult struct {
	sent, recv   [32]byte // SHA-256 of the bytes
	nsent, nrecv int64
	states       []tcp.State // xdpnet's: each state seen, in order
	err          error
}

// xflow is an xdpnet app on one connection, on the poller goroutine: it
// sends size bytes of pattern(seed), then closes its write side; it reads
// and hashes everything up to the peer's FIN; then it closes, and it
// reports once the connection is CLOSED or in TIME-WAIT. If afterEOF, it
// sends only once the peer's FIN arrived; if hold is not nil, only once
// hold is closed. If readHold is not nil, it reads only once readHold is
// closed.
type xflow struct {
	c        *tcp.Conn
	gen      *rand.ChaCha8
	left     int
	chunk    []byte
	off      int
	afterEOF bool
	hold     <-chan struct{}
	readHold <-chan struct{} // if not nil, nothing is read until it closes
	sent     hash.Hash
	recv     hash.Hash
	buf      []byte
	res      flowResult
	eof      bool
	wrClosed bool
	closed   bool
	done     chan flowResult
}

func newXflow(c *tcp.Conn, size int, seed uint64) *xflow {
	return &xflow{
		c: c, gen: pattern(seed), left: size, chunk: make([]byte, 0, 64<<10),
		sent: sha256.New(), recv: sha256.New(), buf: make([]byte, 64<<10),
		done: make(chan flowResult, 1),
	}
}

// step is the app: it returns true once it reported.
func (a *xflow) step(time.Duration) bool {
	a.note()
	if a.c.State() == tcp.SynSent {
		return false
	}
	if a.closed {
		switch a.c.State() {
		case tcp.Closed, tcp.TimeWait:
			return a.finish(a.c.Err())
		}
		return false
	}
	if err := a.read(); err != nil {
		return a.finish(err)
	}
	if a.hold != nil {
		select {
		case <-a.hold:
			a.hold = nil
		default:
			return false
		}
	}
	if a.afterEOF && !a.eof {
		return false
	}
	for a.off < len(a.chunk) || a.left > 0 {
		if a.off == len(a.chunk) {
			a.chunk = a.chunk[:min(cap(a.chunk), a.left)]
			a.gen.Read(a.chunk)
			a.left -= len(a.chunk)
			a.off = 0
		}
		n, err := a.c.Write(a.chunk[a.off:])
		a.sent.Write(a.chunk[a.off : a.off+n])
		a.off += n
		a.res.nsent += int64(n)
		if errors.Is(err, tcp.ErrWouldBlock) {
			return false
		}
		if err != nil {
			return a.finish(fmt.Errorf("write after %d bytes: %w", a.res.nsent, err))
		}
	}
	if !a.wrClosed {
		a.wrClosed = true
		if err := a.c.CloseWrite(); err != nil {
			return a.finish(fmt.Errorf("close write: %w", err))
		}
		a.note()
	}
	if a.eof {
		a.closed = true
		if err := a.c.Close(); err != nil {
			return a.finish(fmt.Errorf("close: %w", err))
		}
		a.note()
		switch a.c.State() {
		case tcp.Closed, tcp.TimeWait:
			return a.finish(a.c.Err())
		}
	}
	return false
}

// read hashes what arrived, up to the peer's FIN.
func (a *xflow) read() error {
	if a.readHold != nil {
		select {
		case <-a.readHold:
			a.readHold = nil
		default:
			return nil
		}
	}
	for !a.eof {
		n, err := a.c.Read(a.buf)
		a.recv.Write(a.buf[:n])
		a.res.nrecv += int64(n)
		switch {
		case err == io.EOF:
			a.eof = true
		case errors.Is(err, tcp.ErrWouldBlock):
			return nil
		case err != nil:
			return fmt.Errorf("read after %d bytes: %w", a.res.nrecv, err)
		}
	}
	return nil
}

// note records the connection's state if it changed.
func (a *xflow) note() {
	if st := a.c.State(); len(a.res.states) == 0 || a.res.states[len(a.res.states)-1] != st {
		a.res.states = append(a.res.states, st)
	}
}

func (a *xflow) finish(err error) bool {
	a.note()
	a.res.err = err
	copy(a.res.sent[:], a.sent.Sum(nil))
	copy(a.res.recv[:], a.recv.Sum(nil))
	a.done <- a.res
	return true
}

// kernelFlow is xflow's counterpart on a kernel socket: it sends size
// bytes of pattern(seed) while it reads everything up to xdpnet's FIN,
// then closes its write side.
func kernelFlow(c *net.TCPConn, size int, seed uint64) flowResult {
	var res flowResult
	werr := make(chan error, 1)
	go func() {
		var err error
		res.sent, res.nsent, err = kernelSend(c, size, seed)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	var rerr error
	res.recv, res.nrecv, rerr = kernelRecv(c)
	res.err = errors.Join(rerr, <-werr)
	return res
}

// kernelSend writes size bytes of pattern(seed) to c and returns their
// SHA-256.
func kernelSend(c *net.TCPConn, size int, seed uint64) (sum [32]byte, n int64, err error) {
	h := sha256.New()
	n, err = io.CopyN(io.MultiWriter(c, h), pattern(seed), int64(size))
	copy(sum[:], h.Sum(nil))
	if err != nil {
		err = fmt.Errorf("kernel: write after %d bytes: %w", n, err)
	}
	return sum, n, err
}

// kernelRecv reads c up to xdpnet's FIN and returns the SHA-256 of what
// came.
func kernelRecv(c *net.TCPConn) (sum [32]byte, n int64, err error) {
	h := sha256.New()
	n, err = io.Copy(h, c)
	copy(sum[:], h.Sum(nil))
	if err != nil {
		err = fmt.Errorf("kernel: read after %d bytes: %w", n, err)
	}
	return sum, n, err
}

// patternSum is the SHA-256 of size bytes of pattern(seed).
func patternSum(size int, seed uint64) [32]byte {
	h := sha256.New()
	io.CopyN(h, pattern(seed), int64(size))
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// listenApp listens on port and hands each connection it accepts to
// accepted, on the poller goroutine.
func (s *tcpLab) listenApp(t *testing.T, port uint16, backlog int, accepted func(c *tcp.Conn)) *tcp.Listener {
	t.Helper()
	var ln *tcp.Listener
	var err error
	s.do(t, func(tb *tcp.Table, _ time.Duration) {
		ln, err = tb.Listen(netip.AddrPortFrom(netip.Addr{}, port), backlog)
	})
	require.NoError(t, err)
	s.spawn(t, func(time.Duration) bool {
		for {
			c, err := ln.Accept()
			if err != nil {
				return errors.Is(err, tcp.ErrListenerClosed)
			}
			accepted(c)
		}
	})
	return ln
}

// dial dials remote from xdpnet, on the poller goroutine.
func (s *tcpLab) dial(t *testing.T, remote netip.AddrPort) *tcp.Conn {
	t.Helper()
	var c *tcp.Conn
	var err error
	s.do(t, func(tb *tcp.Table, now time.Duration) { c, err = tb.Dial(now, netip.AddrPort{}, remote) })
	require.NoError(t, err)
	return c
}

// dialFlow dials remote from xdpnet and runs an xflow on the connection
// from its start, on the poller goroutine.
func (s *tcpLab) dialFlow(t *testing.T, remote netip.AddrPort, size int, seed uint64) *xflow {
	t.Helper()
	var x *xflow
	var err error
	s.do(t, func(tb *tcp.Table, now time.Duration) {
		var c *tcp.Conn
		if c, err = tb.Dial(now, netip.AddrPort{}, remote); err == nil {
			x = newXflow(c, size, seed)
			x.note()
			s.apps = append(s.apps, x.step)
		}
	})
	require.NoError(t, err)
	return x
}

// TestTCPBulkWithKernel moves 64 MiB each way at once over one
// connection, xdpnet as client and as server, and checks both streams by
// SHA-256 on both sides, in both XDP modes.
func TestTCPBulkWithKernel(t *testing.T) {
	const size = 64 << 20
	for _, mode := range lab.Modes {
		t.Run(mode.String(), func(t *testing.T) {
			s := newTCPLab(t, mode, tcp.Config{})
			check := func(t *testing.T, x, k flowResult, took time.Duration) {
				t.Helper()
				require.NoError(t, x.err, "xdpnet")
				require.NoError(t, k.err, "kernel")
				assert.EqualValues(t, size, x.nsent)
				assert.EqualValues(t, size, k.nsent)
				assert.EqualValues(t, size, x.nrecv, "xdpnet received")
				assert.EqualValues(t, size, k.nrecv, "the kernel received")
				assert.Equal(t, x.sent, k.recv, "xdpnet -> kernel: SHA-256 sent and received")
				assert.Equal(t, k.sent, x.recv, "kernel -> xdpnet: SHA-256 sent and received")
				t.Logf("2 × %d MiB in %v: %.0f Mbit/s each way; xdpnet's states %v",
					size>>20, took, float64(size*8)/took.Seconds()/1e6, x.states)
			}
			t.Run("XdpnetClient", func(t *testing.T) {
				ln := kernelListen(t, s.l)
				start := time.Now()
				x := s.dialFlow(t, addrPort(ln.Addr()), size, 1)
				kc := kernelAccept(t, ln)
				require.NoError(t, kc.SetDeadline(time.Now().Add(60*time.Second)))
				assert.Equal(t, "ESTAB", kernelState(t, s.l, addrPort(kc.LocalAddr()), addrPort(kc.RemoteAddr())))
				k := kernelFlow(kc, size, 2)
				check(t, receive(t, x.done, "xdpnet's result"), k, time.Since(start))
			})
			t.Run("XdpnetServer", func(t *testing.T) {
				flows := make(chan *xflow, 1)
				s.listenApp(t, 7001, 1, func(c *tcp.Conn) {
					x := newXflow(c, size, 3)
					s.apps = append(s.apps, x.step)
					flows <- x
				})
				start := time.Now()
				kc, err := kernelDial(s.l, 7001)
				require.NoError(t, err)
				defer kc.Close()
				require.NoError(t, kc.SetDeadline(time.Now().Add(60*time.Second)))
				assert.Equal(t, "ESTAB", kernelState(t, s.l, addrPort(kc.LocalAddr()), addrPort(kc.RemoteAddr())))
				k := kernelFlow(kc, size, 4)
				x := receive(t, flows, "an accepted connection")
				check(t, receive(t, x.done, "xdpnet's result"), k, time.Since(start))
			})
			st := s.checkClean(t)
			assert.EqualValues(t, 1, st.ActiveOpens)
			assert.EqualValues(t, 1, st.PassiveOpens)
			assert.Zero(t, st.AttemptFails+st.EstabResets+st.OutRsts)
			t.Logf("xdpnet's TCP counters: %+v", st)
		})
	}
}

// acceptOne listens on port and passes the connections it accepts to the
// test goroutine, which may use them only through s.do.
func (s *tcpLab) acceptOne(t *testing.T, port uint16) <-chan *tcp.Conn {
	t.Helper()
	accepted := make(chan *tcp.Conn, 1)
	s.listenApp(t, port, 1, func(c *tcp.Conn) { accepted <- c })
	return accepted
}

// TestTCPZeroWindowWithKernel: a receiver that stops reading closes its
// window; the sender waits (probing) and goes on as soon as the receiver
// reads again, each way. The window update that the reader's first read
// sends must restart the transfer at once, not the sender's next probe,
// which backs off to seconds.
func TestTCPZeroWindowWithKernel(t *testing.T) {
	const size, stall = 8 << 20, 300 * time.Millisecond
	s := newTCPLab(t, lab.Native, tcp.Config{})
	t.Run("XdpnetStopsReading", func(t *testing.T) {
		hold := make(chan struct{})
		flows := make(chan *xflow, 1)
		s.listenApp(t, 7005, 1, func(c *tcp.Conn) {
			x := newXflow(c, 0, 0)
			x.readHold = hold
			s.apps = append(s.apps, x.step)
			flows <- x
		})
		kc, err := kernelDial(s.l, 7005)
		require.NoError(t, err)
		defer kc.Close()
		sent := make(chan flowResult, 1)
		go func() { sent <- kernelFlow(kc, size, 9) }()
		x := receive(t, flows, "an accepted connection")
		time.Sleep(stall)
		var readable, capacity int
		s.do(t, func(*tcp.Table, time.Duration) { readable, capacity = x.c.Readable(), x.c.Readable()+x.c.Writable() })
		assert.Greater(t, readable, 64<<10, "xdpnet's receive buffer filled up while nothing read it")
		_ = capacity
		start := time.Now()
		s.release(t, hold)
		res := receive(t, x.done, "xdpnet's result")
		took := time.Since(start)
		k := receive(t, sent, "the kernel's result")
		require.NoError(t, res.err)
		require.NoError(t, k.err)
		assert.EqualValues(t, size, res.nrecv)
		assert.Equal(t, k.sent, res.recv)
		t.Logf("%d MiB after the reader came back: %v", size>>20, took)
	})
	t.Run("KernelStopsReading", func(t *testing.T) {
		// A 4 KiB receive buffer: the kernel's window closes and reopens
		// a couple of segments at a time, so a probe byte that the
		// kernel dropped cannot be left to fast retransmit, which needs
		// three segments after it.
		ln := kernelListenBuf(t, s.l, 4096)
		x := s.dialFlow(t, addrPort(ln.Addr()), 256<<10, 10)
		kc := kernelAccept(t, ln)
		time.Sleep(stall)
		var before, after tcp.ConnStats
		var unacked int
		s.do(t, func(*tcp.Table, time.Duration) { unacked, before = x.c.Unacked(), x.c.Stats() })
		assert.Greater(t, unacked, 0, "xdpnet waits for the kernel's window")
		start := time.Now()
		k := kernelFlow(kc, 0, 0)
		took := time.Since(start)
		res := receive(t, x.done, "xdpnet's result")
		require.NoError(t, res.err)
		require.NoError(t, k.err)
		assert.EqualValues(t, 256<<10, k.nrecv)
		assert.Equal(t, res.sent, k.recv)
		s.do(t, func(*tcp.Table, time.Duration) { after = x.c.Stats() })
		assert.Equal(t, before.Timeouts, after.Timeouts, "retransmission timeouts once the kernel read again")
		t.Logf("256 KiB after the reader came back: %v; xdpnet's connection: %+v", took, after)
	})
	st := s.checkClean(t)
	t.Logf("xdpnet's TCP counters: %+v", st)
}
