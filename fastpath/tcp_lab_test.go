package fastpath_test

import (
	"bytes"
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
	"github.com/xdpnet/xdpnet/internal/lab"
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
		Link:  dev.Links()[0],
		IP:    ip.Config{Addr: netip.PrefixFrom(s.l.StackAddr, 24)},
		TCP:   cfg,
		Serve: s.serve,
	})
	if err != nil {
		dev.Close()
		require.NoError(t, err)
	}
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

// serve is the poller's Serve callback: it runs every app. A round runs
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

// rrLen is the length of a request and of its response in the short
// connection tests: a request names its connection, the response is its
// SHA-256.
const rrLen = 32

func rrRequest(round, i int) []byte {
	return fmt.Appendf(nil, "%-*s", rrLen, fmt.Sprintf("request %d of round %d", i, round))
}

func rrResponse(req []byte) []byte {
	s := sha256.Sum256(req)
	return s[:]
}

// xrr is an xdpnet app for one short connection. A client writes its
// request, reads the response, checks it and closes first: it ends in
// TIME-WAIT. A server reads the request, writes its response, reads up to
// the client's FIN and closes: it ends CLOSED, through LAST-ACK.
type xrr struct {
	c      *tcp.Conn
	client bool
	req    []byte // the client's request
	out    []byte // still to write
	in     []byte // received
	eof    bool
	closed bool
	buf    [2 * rrLen]byte
}

// step runs the connection on; done, with err, once it ended as it
// should.
func (a *xrr) step() (done bool, err error) {
	if err := a.c.Err(); err != nil {
		return true, err
	}
	st := a.c.State()
	switch {
	case st == tcp.SynSent:
		return false, nil
	case a.closed && a.client && st == tcp.TimeWait, a.closed && !a.client && st == tcp.Closed:
		return true, nil
	case a.closed && st == tcp.Closed:
		return true, fmt.Errorf("%v: closed without TIME-WAIT", a.c.LocalAddr())
	case a.closed:
		return false, nil
	}
	for !a.eof {
		n, err := a.c.Read(a.buf[:])
		a.in = append(a.in, a.buf[:n]...)
		if err == io.EOF {
			a.eof = true
		} else if errors.Is(err, tcp.ErrWouldBlock) {
			break
		} else if err != nil {
			return true, err
		}
	}
	if !a.client && a.out == nil && len(a.in) >= rrLen {
		a.out = rrResponse(a.in[:rrLen])
	}
	if len(a.out) > 0 {
		n, err := a.c.Write(a.out)
		if err != nil && !errors.Is(err, tcp.ErrWouldBlock) {
			return true, err
		}
		a.out = a.out[n:]
	}
	switch {
	case a.client && len(a.in) >= rrLen:
		if !bytes.Equal(a.in, rrResponse(a.req)) {
			return true, fmt.Errorf("%v: response %x to %q", a.c.LocalAddr(), a.in, a.req)
		}
	case !a.client && a.eof:
		if len(a.in) != rrLen || len(a.out) > 0 {
			return true, fmt.Errorf("%v: FIN after %d bytes of request, %d of response unsent", a.c.LocalAddr(), len(a.in), len(a.out))
		}
	case a.eof:
		return true, fmt.Errorf("%v: FIN after %d bytes of response", a.c.LocalAddr(), len(a.in))
	default:
		return false, nil
	}
	a.closed = true
	return false, a.c.Close()
}

// kernelRRServer serves short connections on ln until it closes: each
// one's request, answered, then the client's FIN, then close. Each
// connection's outcome goes to results.
func kernelRRServer(ln *net.TCPListener, results chan<- error) {
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			results <- func() error {
				if err := c.SetDeadline(time.Now().Add(labTimeout)); err != nil {
					return err
				}
				req := make([]byte, rrLen)
				if _, err := io.ReadFull(c, req); err != nil {
					return fmt.Errorf("kernel: request from %v: %w", c.RemoteAddr(), err)
				}
				if _, err := c.Write(rrResponse(req)); err != nil {
					return fmt.Errorf("kernel: response to %v: %w", c.RemoteAddr(), err)
				}
				if n, err := c.Read(req); n != 0 || err != io.EOF {
					return fmt.Errorf("kernel: %d bytes, %v from %v, not its FIN", n, err, c.RemoteAddr())
				}
				return nil
			}()
		}()
	}
}

// kernelRRClient runs a short connection to xdpnet's port: request,
// response, checked, close.
func kernelRRClient(l *lab.Lab, port uint16, req []byte) error {
	c, err := kernelDial(l, port)
	if err != nil {
		return fmt.Errorf("kernel: connect: %w", err)
	}
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		return fmt.Errorf("kernel: request from %v: %w", c.LocalAddr(), err)
	}
	resp := make([]byte, rrLen+1)
	if _, err := io.ReadFull(c, resp[:rrLen]); err != nil {
		return fmt.Errorf("kernel: response to %v: %w", c.LocalAddr(), err)
	}
	if !bytes.Equal(resp[:rrLen], rrResponse(req)) {
		return fmt.Errorf("kernel: response %x to %q", resp[:rrLen], req)
	}
	return nil
}

// TestTCPShortConnsWithKernel runs 100 short connections one after the
// other and 100 at once, xdpnet as client and as server, each with a
// request and its response checked on both sides, and every connection
// ending as it should (the client, which closes first, in TIME-WAIT).
func TestTCPShortConnsWithKernel(t *testing.T) {
	const conns = 100
	s := newTCPLab(t, lab.Native, tcp.Config{})

	// xdpnet as client: xdpnet's results come from the poller, the
	// kernel server's from its goroutines.
	ln := kernelListen(t, s.l)
	kernelResults := make(chan error, 2*conns)
	go kernelRRServer(ln, kernelResults)
	server := addrPort(ln.Addr())
	xResults := make(chan error, conns)
	t.Run("XdpnetClientSequential", func(t *testing.T) {
		var cur *xrr
		i := 0
		s.do(t, func(tb *tcp.Table, _ time.Duration) {
			s.apps = append(s.apps, func(now time.Duration) bool {
				for {
					if cur != nil {
						done, err := cur.step()
						if !done {
							return false
						}
						xResults <- err
					}
					if i == conns {
						return true
					}
					req := rrRequest(0, i)
					i++
					c, err := tb.Dial(now, netip.AddrPort{}, server)
					if err != nil {
						xResults <- err
						cur = nil
						continue
					}
					cur = &xrr{c: c, client: true, req: req, out: req}
				}
			})
		})
		for i := range conns {
			require.NoError(t, receive(t, xResults, "xdpnet's result"), "xdpnet, connection %d", i)
			require.NoError(t, receive(t, kernelResults, "the kernel's result"), "kernel, connection %d", i)
		}
	})
	t.Run("XdpnetClientConcurrent", func(t *testing.T) {
		s.do(t, func(tb *tcp.Table, now time.Duration) {
			for i := range conns {
				req := rrRequest(1, i)
				c, err := tb.Dial(now, netip.AddrPort{}, server)
				if err != nil {
					xResults <- err
					continue
				}
				a := &xrr{c: c, client: true, req: req, out: req}
				s.apps = append(s.apps, func(time.Duration) bool {
					done, err := a.step()
					if done {
						xResults <- err
					}
					return done
				})
			}
		})
		for i := range conns {
			require.NoError(t, receive(t, xResults, "xdpnet's result"), "xdpnet, result %d", i)
			require.NoError(t, receive(t, kernelResults, "the kernel's result"), "kernel, result %d", i)
		}
	})

	// xdpnet as server.
	s.listenApp(t, 7002, conns, func(c *tcp.Conn) {
		a := &xrr{c: c}
		s.apps = append(s.apps, func(time.Duration) bool {
			done, err := a.step()
			if done {
				xResults <- err
			}
			return done
		})
	})
	t.Run("XdpnetServerSequential", func(t *testing.T) {
		for i := range conns {
			require.NoError(t, kernelRRClient(s.l, 7002, rrRequest(2, i)), "kernel, connection %d", i)
		}
		for i := range conns {
			require.NoError(t, receive(t, xResults, "xdpnet's result"), "xdpnet, connection %d", i)
		}
	})
	t.Run("XdpnetServerConcurrent", func(t *testing.T) {
		errs := make(chan error, conns)
		for i := range conns {
			go func() { errs <- kernelRRClient(s.l, 7002, rrRequest(3, i)) }()
		}
		for i := range conns {
			require.NoError(t, receive(t, errs, "the kernel's result"), "kernel, result %d", i)
		}
		for i := range conns {
			require.NoError(t, receive(t, xResults, "xdpnet's result"), "xdpnet, result %d", i)
		}
	})
	// The kernel clients closed first: their ends wait in TIME-WAIT.
	tw := 0
	for line := range strings.Lines(s.l.Peer.Run(t, "ss", "-Htan", "state", "time-wait")) {
		if strings.Contains(line, netip.AddrPortFrom(s.l.StackAddr, 7002).String()) {
			tw++
		}
	}
	assert.Equal(t, 2*conns, tw, "the kernel clients' connections in TIME-WAIT")

	st := s.checkClean(t)
	assert.EqualValues(t, 2*conns, st.ActiveOpens)
	assert.EqualValues(t, 2*conns, st.PassiveOpens)
	assert.Zero(t, st.AttemptFails+st.EstabResets+st.OutRsts+st.ListenDrops)
	t.Logf("xdpnet's TCP counters: %+v", st)
}

// acceptOne listens on port and passes the connections it accepts to the
// test goroutine, which may use them only through s.do.
func (s *tcpLab) acceptOne(t *testing.T, port uint16) <-chan *tcp.Conn {
	t.Helper()
	accepted := make(chan *tcp.Conn, 1)
	s.listenApp(t, port, 1, func(c *tcp.Conn) { accepted <- c })
	return accepted
}

// TestTCPCloseOrderWithKernel closes a connection from each side first,
// and follows both ends through RFC 9293 3.6's states: the side that
// closes first goes FIN-WAIT-1, FIN-WAIT-2 and waits in TIME-WAIT; the
// other goes CLOSE-WAIT, LAST-ACK and CLOSED. The kernel's states are
// read with ss, xdpnet's with Conn.State on the poller goroutine. A
// kernel client may reconnect from its port into xdpnet's TIME-WAIT.
func TestTCPCloseOrderWithKernel(t *testing.T) {
	s := newTCPLab(t, lab.Native, tcp.Config{})
	t.Run("KernelClosesFirst", func(t *testing.T) {
		accepted := s.acceptOne(t, 7003)
		kc, err := kernelDial(s.l, 7003)
		require.NoError(t, err)
		defer kc.Close()
		kl, kr := addrPort(kc.LocalAddr()), addrPort(kc.RemoteAddr())
		c := receive(t, accepted, "an accepted connection")
		s.waitState(t, c, tcp.Established)
		waitKernelState(t, s.l, kl, kr, "ESTAB")

		require.NoError(t, kc.Close())
		waitKernelState(t, s.l, kl, kr, "FIN-WAIT-2")
		s.waitState(t, c, tcp.CloseWait)
		var readErr error
		var st tcp.State
		s.do(t, func(*tcp.Table, time.Duration) {
			_, readErr = c.Read(make([]byte, 1))
			c.Close()
			st = c.State() // our FIN is queued, not yet sent
		})
		assert.Equal(t, io.EOF, readErr)
		assert.Equal(t, tcp.LastAck, st)
		s.waitState(t, c, tcp.Closed)
		waitKernelState(t, s.l, kl, kr, "TIME-WAIT")
		s.do(t, func(*tcp.Table, time.Duration) { assert.NoError(t, c.Err()) })
	})
	t.Run("KernelReconnectsIntoTimeWait", func(t *testing.T) {
		// xdpnet's server closes first, so its end waits in TIME-WAIT;
		// the kernel connects again from the same port at once. RFC
		// 6191 (RFC 1122 4.2.2.13 without timestamps) lets a SYN above
		// the old sequence space open a new connection, as Linux does.
		accepted := make(chan *tcp.Conn, 2)
		s.listenApp(t, 7008, 2, func(c *tcp.Conn) {
			c.Close()
			accepted <- c
		})
		var from uint16
		for round := range 2 {
			kc, err := kernelDialFrom(s.l, from, 7008)
			require.NoError(t, err, "round %d", round)
			from = addrPort(kc.LocalAddr()).Port()
			n, err := kc.Read(make([]byte, 1))
			assert.Zero(t, n)
			assert.Equal(t, io.EOF, err, "round %d", round)
			require.NoError(t, kc.Close())
			c := receive(t, accepted, "an accepted connection")
			s.waitState(t, c, tcp.TimeWait)
		}
		st, _ := s.stats(t)
		assert.EqualValues(t, 1, st.TimeWaitRecycled)
	})
	t.Run("XdpnetClosesFirst", func(t *testing.T) {
		ln := kernelListen(t, s.l)
		c := s.dial(t, addrPort(ln.Addr()))
		kc := kernelAccept(t, ln)
		kl, kr := addrPort(kc.LocalAddr()), addrPort(kc.RemoteAddr())
		s.waitState(t, c, tcp.Established)
		waitKernelState(t, s.l, kl, kr, "ESTAB")

		var st tcp.State
		s.do(t, func(*tcp.Table, time.Duration) { c.Close(); st = c.State() })
		assert.Equal(t, tcp.FinWait1, st)
		s.waitState(t, c, tcp.FinWait2)
		waitKernelState(t, s.l, kl, kr, "CLOSE-WAIT")
		n, err := kc.Read(make([]byte, 1))
		assert.Zero(t, n)
		assert.Equal(t, io.EOF, err)

		// While xdpnet's poller stands still, the kernel's FIN goes
		// unacknowledged: the kernel waits in LAST-ACK.
		resume := s.pause(t)
		defer resume()
		require.NoError(t, kc.Close())
		waitKernelState(t, s.l, kl, kr, "LAST-ACK")
		resume()
		s.waitState(t, c, tcp.TimeWait)
		waitKernelState(t, s.l, kl, kr, "")
		// TIME-WAIT lasts 2×MSL, then the connection is gone.
		s.waitState(t, c, tcp.Closed)
		s.do(t, func(*tcp.Table, time.Duration) { assert.NoError(t, c.Err()) })
	})
	st := s.checkClean(t)
	assert.EqualValues(t, 1, st.ActiveOpens)
	assert.EqualValues(t, 3, st.PassiveOpens)
	assert.Zero(t, st.AttemptFails+st.EstabResets+st.OutRsts)
}

// TestTCPHalfCloseWithKernel: one side closes its write side and goes on
// reading what the other sends after that, the kernel first, then
// xdpnet.
func TestTCPHalfCloseWithKernel(t *testing.T) {
	const request, response = 256 << 10, 1 << 20
	s := newTCPLab(t, lab.Native, tcp.Config{})
	t.Run("KernelHalfCloses", func(t *testing.T) {
		// xdpnet answers only once it read the whole request and the
		// test released it.
		hold := make(chan struct{})
		flows := make(chan *xflow, 1)
		s.listenApp(t, 7004, 1, func(c *tcp.Conn) {
			x := newXflow(c, response, 5)
			x.afterEOF, x.hold = true, hold
			s.apps = append(s.apps, x.step)
			flows <- x
		})
		kc, err := kernelDial(s.l, 7004)
		require.NoError(t, err)
		defer kc.Close()
		kl, kr := addrPort(kc.LocalAddr()), addrPort(kc.RemoteAddr())
		sent, n, err := kernelSend(kc, request, 6)
		require.NoError(t, err)
		require.NoError(t, kc.CloseWrite())
		x := receive(t, flows, "an accepted connection")
		waitKernelState(t, s.l, kl, kr, "FIN-WAIT-2")
		s.waitState(t, x.c, tcp.CloseWait)
		s.release(t, hold)
		recv, m, err := kernelRecv(kc)
		require.NoError(t, err)
		waitKernelState(t, s.l, kl, kr, "TIME-WAIT")

		res := receive(t, x.done, "xdpnet's result")
		require.NoError(t, res.err)
		assert.EqualValues(t, request, n)
		assert.EqualValues(t, request, res.nrecv)
		assert.Equal(t, sent, res.recv, "kernel -> xdpnet, before the kernel's FIN")
		assert.EqualValues(t, response, m)
		assert.Equal(t, patternSum(response, 5), recv, "xdpnet -> kernel, after the kernel's FIN")
		assert.Equal(t, res.sent, recv)
		assert.Equal(t, "[ESTABLISHED CLOSE-WAIT LAST-ACK CLOSED]", fmt.Sprint(res.states))
	})
	t.Run("XdpnetHalfCloses", func(t *testing.T) {
		ln := kernelListen(t, s.l)
		x := s.dialFlow(t, addrPort(ln.Addr()), request, 7)
		c := x.c
		kc := kernelAccept(t, ln)
		kl, kr := addrPort(kc.LocalAddr()), addrPort(kc.RemoteAddr())
		recv, m, err := kernelRecv(kc)
		require.NoError(t, err)
		waitKernelState(t, s.l, kl, kr, "CLOSE-WAIT")
		s.waitState(t, c, tcp.FinWait2)
		// The response comes in two halves, further apart than the
		// minimum RTO: xdpnet acknowledges the first in FIN-WAIT-2 and
		// must have nothing to retransmit while it waits.
		h := sha256.New()
		var n int64
		for half := range 2 {
			if half == 1 {
				time.Sleep(300 * time.Millisecond)
			}
			m, err := io.CopyN(io.MultiWriter(kc, h), pattern(8+uint64(half)), response/2)
			require.NoError(t, err)
			n += m
		}
		var sent [32]byte
		copy(sent[:], h.Sum(nil))
		require.NoError(t, kc.Close())

		res := receive(t, x.done, "xdpnet's result")
		require.NoError(t, res.err)
		waitKernelState(t, s.l, kl, kr, "")
		assert.EqualValues(t, request, m)
		assert.Equal(t, patternSum(request, 7), recv, "xdpnet -> kernel, before xdpnet's FIN")
		assert.Equal(t, res.sent, recv)
		assert.EqualValues(t, response, n)
		assert.EqualValues(t, response, res.nrecv)
		assert.Equal(t, sent, res.recv, "kernel -> xdpnet, after xdpnet's FIN")
		assert.Equal(t, "[SYN-SENT ESTABLISHED FIN-WAIT-1 FIN-WAIT-2 TIME-WAIT]", fmt.Sprint(res.states))
		var cs tcp.ConnStats
		s.do(t, func(*tcp.Table, time.Duration) { cs = c.Stats() })
		assert.Zero(t, cs.Timeouts, "retransmission timeouts on a lossless link: %+v", cs)
	})
	st := s.checkClean(t)
	assert.EqualValues(t, 1, st.ActiveOpens)
	assert.EqualValues(t, 1, st.PassiveOpens)
	assert.Zero(t, st.AttemptFails+st.EstabResets+st.OutRsts)
}

// TestTCPRefusedWithKernel: a SYN to a port nobody listens on draws a
// RST either way, which the kernel reports as ECONNREFUSED and xdpnet as
// tcp.ErrRefused.
func TestTCPRefusedWithKernel(t *testing.T) {
	s := newTCPLab(t, lab.Native, tcp.Config{})
	t.Run("KernelToXdpnet", func(t *testing.T) {
		c, err := kernelDial(s.l, 4444)
		if c != nil {
			c.Close()
		}
		assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	})
	t.Run("XdpnetToKernel", func(t *testing.T) {
		ln := kernelListen(t, s.l)
		closed := addrPort(ln.Addr())
		require.NoError(t, ln.Close())
		c := s.dial(t, closed)
		s.waitState(t, c, tcp.Closed)
		s.do(t, func(*tcp.Table, time.Duration) { assert.ErrorIs(t, c.Err(), tcp.ErrRefused) })
	})
	st := s.checkClean(t)
	assert.EqualValues(t, 1, st.OutRsts, "the answer to the kernel's SYN")
	assert.EqualValues(t, 1, st.ActiveOpens)
	assert.EqualValues(t, 1, st.AttemptFails)
	assert.Zero(t, st.PassiveOpens)
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

// TestTCPResetWithKernel: resets either way end the connection at once,
// with ECONNRESET for the kernel's socket and tcp.ErrReset for xdpnet's.
func TestTCPResetWithKernel(t *testing.T) {
	s := newTCPLab(t, lab.Native, tcp.Config{})
	t.Run("KernelAborts", func(t *testing.T) {
		accepted := s.acceptOne(t, 7006)
		kc, err := kernelDial(s.l, 7006)
		require.NoError(t, err)
		defer kc.Close()
		c := receive(t, accepted, "an accepted connection")
		s.waitState(t, c, tcp.Established)
		require.NoError(t, kc.SetLinger(0))
		require.NoError(t, kc.Close()) // SO_LINGER 0: a RST, no FIN
		s.waitState(t, c, tcp.Closed)
		var readErr, writeErr error
		s.do(t, func(*tcp.Table, time.Duration) {
			_, readErr = c.Read(make([]byte, 1))
			_, writeErr = c.Write([]byte("x"))
		})
		assert.ErrorIs(t, readErr, tcp.ErrReset)
		assert.ErrorIs(t, writeErr, tcp.ErrReset)
	})
	t.Run("XdpnetAborts", func(t *testing.T) {
		ln := kernelListen(t, s.l)
		c := s.dial(t, addrPort(ln.Addr()))
		kc := kernelAccept(t, ln)
		kl, kr := addrPort(kc.LocalAddr()), addrPort(kc.RemoteAddr())
		s.waitState(t, c, tcp.Established)
		s.do(t, func(*tcp.Table, time.Duration) { c.Abort() })
		_, err := kc.Read(make([]byte, 1))
		assert.ErrorIs(t, err, syscall.ECONNRESET)
		waitKernelState(t, s.l, kl, kr, "")
	})
	t.Run("XdpnetClosesUnread", func(t *testing.T) {
		// RFC 1122 4.2.2.13: closing with data unread resets.
		accepted := s.acceptOne(t, 7007)
		kc, err := kernelDial(s.l, 7007)
		require.NoError(t, err)
		defer kc.Close()
		_, err = kc.Write([]byte("never read"))
		require.NoError(t, err)
		c := receive(t, accepted, "an accepted connection")
		var readable int
		eventually(t, func() bool {
			s.do(t, func(*tcp.Table, time.Duration) { readable = c.Readable() })
			return readable == 10
		},
			func() string { return fmt.Sprintf("%d bytes readable, not 10", readable) })
		s.do(t, func(*tcp.Table, time.Duration) { c.Close() })
		_, err = kc.Read(make([]byte, 1))
		assert.ErrorIs(t, err, syscall.ECONNRESET)
		s.do(t, func(*tcp.Table, time.Duration) { assert.ErrorIs(t, c.Err(), tcp.ErrAborted) })
	})
	st := s.checkClean(t)
	assert.EqualValues(t, 1, st.EstabResets, "the kernel's RST")
	assert.EqualValues(t, 2, st.OutRsts, "Abort's and Close's")
	assert.EqualValues(t, 1, st.ActiveOpens)
	assert.EqualValues(t, 2, st.PassiveOpens)
}
