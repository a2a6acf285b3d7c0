package sockapi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/internal/mpsc"
	"github.com/xdpnet/xdpnet/tcp"
)

// Conn is a TCP connection: a net.Conn whose bytes travel through
// lock-free rings between the caller's goroutine and the poller that
// runs the connection. Like *net.TCPConn, one goroutine may read while
// another writes, and Close may come from any goroutine.
type Conn struct {
	s      *Stack
	p      *fastpath.Poller
	tc     *tcp.Conn  // the poller's: only Status is read here, the rest on the poller
	st     tcp.Stream // the rings
	kick   mpsc.Node[fastpath.Kickable]
	bells  bells // read and write; Owner of the core's sockets
	rdl    deadline
	wdl    deadline
	laddr  *net.TCPAddr
	raddr  *net.TCPAddr
	done   chan struct{} // closed by Close
	closed atomic.Bool
	wshut  atomic.Bool  // CloseWrite was called
	rshut  atomic.Bool  // CloseRead was called
	linger atomic.Int64 // SetLinger's seconds; -1: Close returns at once
	// failed: a Read or Write reported the error that ended the
	// connection. As on Linux, which reports a socket's error once, reads
	// then see EOF and writes EPIPE.
	failed atomic.Bool
	// rmu and wmu serialize concurrent Reads and concurrent Writes, as
	// Go's net does: each ring has one producer and one consumer. The
	// poller never takes them.
	rmu, wmu sync.Mutex
	// lent counts the ReadFrom and WriteTo calls in the other side's Read
	// or Write with a span of a ring; Close leaves its hand-off to the
	// last of them (see lend).
	lent lent
}

// lent is Conn.lent: how many spans are out, and Close's hand-off if it
// came meanwhile.
type lent struct {
	mu      sync.Mutex
	n       int
	handOff func()
}

var _ net.Conn = (*Conn)(nil)

// newConn wraps tc, with setup's options; it runs on tc's poller, which
// it makes tc's owner.
func newConn(s *Stack, p *fastpath.Poller, tc *tcp.Conn, setup *connSetup) *Conn {
	c := &Conn{
		s: s, p: p, tc: tc, st: tc.Stream(),
		bells: newBells(), rdl: newDeadline(), wdl: newDeadline(),
		laddr: net.TCPAddrFromAddrPort(tc.LocalAddr()), raddr: net.TCPAddrFromAddrPort(tc.RemoteAddr()),
		done: make(chan struct{}),
	}
	c.kick.Value = tc
	c.linger.Store(-1)
	tc.Owner = &c.bells
	setup.apply(tc)
	return c
}

// Read reads received data, blocking until some is there, the peer's
// FIN (io.EOF), an error, or the read deadline.
func (c *Conn) Read(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opError("read", net.ErrClosed)
	}
	if isClosed(c.rdl.wait()) {
		// As Go's net: a deadline past fails the call, data there or not.
		return 0, c.opError("read", os.ErrDeadlineExceeded)
	}
	if len(b) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.closed.Load() { // closed while this call waited for the lock
		return 0, c.opError("read", net.ErrClosed)
	}
	avail, err := c.readable()
	if err != nil {
		return 0, err
	}
	n := c.st.Read(b)
	c.consumed(avail)
	return n, nil
}

// readable waits, with rmu held, until received data waits and returns
// how much, or returns the error Read returns instead (io.EOF at the
// end).
func (c *Conn) readable() (int, error) {
	for {
		if avail := c.st.Readable(); avail > 0 {
			return avail, nil
		}
		st := c.tc.Status()
		switch {
		case c.st.Readable() > 0:
			continue
		case st.Err != nil && !c.failed.Swap(true):
			return 0, c.opError("read", st.Err)
		case st.Err != nil || st.EOF || st.State == tcp.Closed || c.rshut.Load():
			return 0, io.EOF
		}
		ready := func() bool {
			s := c.tc.Status()
			return c.st.Readable() > 0 || s.EOF || s.Err != nil || s.State == tcp.Closed || c.rshut.Load()
		}
		if err := c.wait(&c.bells.r, &c.rdl, ready); err != nil {
			return 0, c.opError("read", err)
		}
	}
}

// consumed follows a read from a ring that held avail bytes: the window
// opens as the ring drains, and the poller needs to hear of it only when
// the ring had filled past half (before that, the window the peer has
// still lets it send).
func (c *Conn) consumed(avail int) {
	if 2*avail >= c.st.ReadCap() {
		c.p.Kick(&c.kick)
	}
}

// Write writes b, blocking while the send ring is full, until all of b is
// queued, an error, or the write deadline; it returns how much was
// queued. Data queued is sent after Write returns.
func (c *Conn) Write(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, c.opError("write", net.ErrClosed)
	}
	if c.wshut.Load() {
		return 0, c.opError("write", syscall.EPIPE)
	}
	if isClosed(c.wdl.wait()) {
		return 0, c.opError("write", os.ErrDeadlineExceeded)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return 0, c.opError("write", net.ErrClosed)
	}
	return c.write(b)
}

// write is Write's work, with wmu held.
func (c *Conn) write(b []byte) (int, error) {
	n := 0
	for {
		if err := c.writeStatus(); err != nil {
			return n, err
		}
		if m := c.st.Write(b[n:]); m > 0 {
			n += m
			c.p.Kick(&c.kick)
		}
		if n == len(b) {
			return n, nil
		}
		if err := c.awaitRoom(); err != nil {
			return n, err
		}
	}
}

// writeStatus is the error a Write returns once the connection failed
// or ended, or nil.
func (c *Conn) writeStatus() error {
	st := c.tc.Status()
	switch {
	case st.Err != nil && !c.failed.Swap(true):
		return c.opError("write", st.Err)
	case st.Err != nil || st.State == tcp.Closed:
		return c.opError("write", syscall.EPIPE)
	}
	return nil
}

// awaitRoom waits, with wmu held, for room in the send ring, or the
// connection's end.
func (c *Conn) awaitRoom() error {
	ready := func() bool { s := c.tc.Status(); return c.st.Writable() > 0 || s.Err != nil || s.State == tcp.Closed }
	if err := c.wait(&c.bells.w, &c.wdl, ready); err != nil {
		return c.opError("write", err)
	}
	return nil
}

// wait waits on b until ready or the end of the connection or stack.
func (c *Conn) wait(b *bell, dl *deadline, ready func() bool) error {
	return waitErr(b, dl, ready, c.done, c.s.done)
}

// Close closes the connection. Written data still goes out, followed by
// a FIN, after Close returns (as close(2) without SO_LINGER); with
// SetLinger(n > 0) Close waits up to n seconds for the peer to
// acknowledge everything, and says so if it did not; with SetLinger(0),
// or with data received and not read, the connection is reset. An error
// means written data may not have arrived.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opError("close", net.ErrClosed)
	}
	close(c.done)
	c.s.untrack(c)
	// Hand the close to the poller only once the Reads and Writes in
	// flight let go of the rings (close(done) ended their waits): after
	// it, the poller may give the rings to another connection.
	linger := c.linger.Load()
	c.lent.mu.Lock()
	later := c.lent.n > 0
	if later {
		c.lent.handOff = func() { c.handOff(linger) }
	}
	c.lent.mu.Unlock()
	if !later {
		c.handOff(linger)
	}
	if linger > 0 {
		return c.lingerWait(time.Duration(linger) * time.Second)
	}
	if err := c.tc.Status().Err; err != nil && !errors.Is(err, tcp.ErrAborted) {
		return c.opError("close", err)
	}
	return nil
}

// handOff hands the close to the poller once the Reads and Writes in
// flight let go of the rings (close(done) ended their waits): after it,
// the poller may give the rings to another connection. A ReadFrom or
// WriteTo in the other side's Read or Write holds a span of a ring that
// long, so Close leaves the hand-off to the last of them (lend).
func (c *Conn) handOff(linger int64) {
	c.rmu.Lock()
	c.wmu.Lock()
	c.p.Do(func() {
		if linger == 0 {
			c.tc.Abort()
		} else {
			c.tc.Close()
		}
	})
	c.wmu.Unlock()
	c.rmu.Unlock()
}

// lend marks a span of a ring lent to the other side's Read or Write
// (ReadFrom's reader, WriteTo's writer), which may block for as long as
// it likes; it fails once Close came. Close then does not wait for it
// (as Go's net does not wait for a blocked io.Copy's other side): the
// last span back hands the close to the poller, so the rings stay the
// connection's while a span is out.
func (c *Conn) lend() bool {
	c.lent.mu.Lock()
	defer c.lent.mu.Unlock()
	if c.closed.Load() {
		return false
	}
	c.lent.n++
	return true
}

// unlend ends a lend. It reports false if Close came meanwhile: the span
// is no longer the caller's to publish, and the last one back has
// started Close's hand-off, which waits for the caller's mutex.
func (c *Conn) unlend() bool {
	c.lent.mu.Lock()
	defer c.lent.mu.Unlock()
	c.lent.n--
	if h := c.lent.handOff; h != nil {
		if c.lent.n == 0 {
			c.lent.handOff = nil
			go h()
		}
		return false
	}
	return true
}

// lingerWait waits until the peer acknowledged all data and the FIN.
func (c *Conn) lingerWait(d time.Duration) error {
	dl := newDeadline()
	dl.set(time.Now().Add(d))
	defer dl.set(time.Time{})
	acked := func() bool {
		s := c.tc.Status()
		return s.Err != nil || s.State == tcp.FinWait2 || s.State == tcp.TimeWait || s.State == tcp.Closed
	}
	for !acked() {
		switch c.bells.w.wait(acked, dl.wait(), nil, c.s.done) {
		case nil:
		case c.s.done:
			return c.opError("close", net.ErrClosed)
		default:
			return c.opError("close", os.ErrDeadlineExceeded)
		}
	}
	if err := c.tc.Status().Err; err != nil {
		return c.opError("close", err)
	}
	return nil
}

// close is the stack closing the connection.
func (c *Conn) close() { c.Close() }

// CloseWrite shuts the write side: a FIN follows the data written. Reads
// go on until the peer's FIN.
func (c *Conn) CloseWrite() error {
	if c.closed.Load() {
		return c.opError("close", net.ErrClosed)
	}
	if c.wshut.CompareAndSwap(false, true) {
		c.p.Do(func() { c.tc.CloseWrite() })
	}
	return nil
}

// LocalAddr is the connection's local address.
func (c *Conn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.raddr }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opError("set", net.ErrClosed)
	}
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline sets the deadline of Read calls, blocked ones included.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opError("set", net.ErrClosed)
	}
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the deadline of Write calls, blocked ones
// included.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.closed.Load() {
		return c.opError("set", net.ErrClosed)
	}
	c.wdl.set(t)
	return nil
}

// SetNoDelay turns Nagle's algorithm off (true, the default, as in Go's
// net) or on.
func (c *Conn) SetNoDelay(noDelay bool) error {
	return c.option(func() { c.tc.SetNagle(!noDelay) })
}

// SetKeepAlive turns keepalive probes on or off; SetKeepAlivePeriod sets
// the idle time before the first probe and between probes (as Go's net
// sets TCP_KEEPIDLE and TCP_KEEPINTVL).
func (c *Conn) SetKeepAlive(on bool) error {
	return c.option(func() { c.tc.SetKeepAlive(on) })
}

// SetKeepAlivePeriod sets the keepalive idle time and probe interval.
func (c *Conn) SetKeepAlivePeriod(d time.Duration) error {
	if d <= 0 {
		return c.opError("set", syscall.EINVAL)
	}
	return c.option(func() { c.tc.SetKeepAlivePeriod(d, d) })
}

// SetKeepAliveConfig sets keepalive as *net.TCPConn's does: on or off
// (Enable), the idle time before the first probe, the interval between
// probes, and how many go unanswered before the connection fails with
// ETIMEDOUT (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT). A zero field is
// Go's default (15 s, 15 s, 9), a negative one leaves the connection's
// setting as it is. Unlike the kernel's, the times are not rounded to
// seconds.
func (c *Conn) SetKeepAliveConfig(cfg net.KeepAliveConfig) error {
	return c.option(func() { setKeepAliveConfig(c.tc, cfg) })
}

// SetLinger sets how Close treats data not yet acknowledged: sec < 0 (the
// default) sends it after Close returns; sec == 0 discards it and resets
// the connection; sec > 0 makes Close wait up to sec seconds for it.
func (c *Conn) SetLinger(sec int) error {
	if c.closed.Load() {
		return c.opError("set", net.ErrClosed)
	}
	c.linger.Store(int64(sec))
	return nil
}

// SetReadBuffer pins the receive buffer, and so the window, at bytes, as
// SO_RCVBUF does on Linux: auto-tuning stops for it. Unlike Linux the
// value is not doubled: the buffer holds only payload, so bytes is the
// most the connection takes before the app reads.
// Config.RecvBufferMax bounds it, as net.core.rmem_max bounds
// SO_RCVBUF.
func (c *Conn) SetReadBuffer(bytes int) error {
	if bytes <= 0 {
		return c.opError("set", syscall.EINVAL)
	}
	return c.option(func() { c.tc.SetRecvBuffer(bytes) })
}

// SetWriteBuffer pins the send buffer at bytes, as SO_SNDBUF (not
// doubled either): Write blocks once bytes wait to be sent or
// acknowledged. Config.SendBufferMax bounds it.
func (c *Conn) SetWriteBuffer(bytes int) error {
	if bytes <= 0 {
		return c.opError("set", syscall.EINVAL)
	}
	return c.option(func() { c.tc.SetSendBuffer(bytes) })
}

// SetUserTimeout bounds how long written data may stay unacknowledged:
// past it the connection ends with ETIMEDOUT, as Linux's TCP_USER_TIMEOUT
// (RFC 5482). It caps the retransmissions, the probing of a peer whose
// window stays closed, and with keepalive the wait for an answer to the
// probes. 0 restores the default (retransmissions counted, probing
// unbounded); a negative d fails with EINVAL.
func (c *Conn) SetUserTimeout(d time.Duration) error {
	if d < 0 {
		return c.opError("set", syscall.EINVAL)
	}
	return c.option(func() { c.tc.SetUserTimeout(d) })
}

// SetFinWait2Timeout sets how long the connection, once closed, waits in
// FIN-WAIT-2 for the peer's FIN before it is dropped, as Linux's
// TCP_LINGER2; 0 restores the default, 60 s (2×Config.MSL). A negative d
// fails with EINVAL.
func (c *Conn) SetFinWait2Timeout(d time.Duration) error {
	if d < 0 {
		return c.opError("set", syscall.EINVAL)
	}
	return c.option(func() { c.tc.SetFinWait2Timeout(d) })
}

// SetCork holds back segments shorter than the MSS while on, as Linux's
// TCP_CORK, so a reply built from several writes leaves in full segments;
// turning it off sends what waits, and nothing waits longer than 200 ms.
func (c *Conn) SetCork(on bool) error {
	return c.option(func() { c.tc.SetCork(on) })
}

// SetPacing turns pacing of the connection's sending rate on or off
// (Config.Pacing sets the stack's default), as Linux paces with the fq
// qdisc: segments leave in bursts of about a millisecond at twice the
// congestion window per round trip in slow start, 1.2 times after.
func (c *Conn) SetPacing(on bool) error {
	return c.option(func() { c.tc.SetPacing(on) })
}

// SetCongestionControl selects the connection's congestion control,
// Cubic or Reno, as Linux's TCP_CONGESTION (an unknown name fails with
// ENOENT, as there).
func (c *Conn) SetCongestionControl(cc CongestionControl) error {
	var err error
	if e := c.option(func() { err = c.tc.SetCongestionControl(string(cc)) }); e != nil {
		return e
	}
	if err != nil {
		return c.opError("set", err)
	}
	return nil
}

// CongestionControl is the connection's congestion control.
func (c *Conn) CongestionControl() (CongestionControl, error) {
	var cc CongestionControl
	err := c.option(func() { cc = CongestionControl(c.tc.CongestionControl()) })
	return cc, err
}

// Info returns a snapshot of the connection's TCP state and counters,
// as Linux's TCP_INFO. The state is the poller's: the snapshot is taken
// on the poller's goroutine between its rounds, so it is consistent and
// races nothing, and this call waits for it (one round at most). After
// Close it fails with net.ErrClosed.
func (c *Conn) Info() (TCPInfo, error) {
	if c.closed.Load() {
		return TCPInfo{}, c.opError("get", net.ErrClosed)
	}
	var info tcp.Info
	if err := c.s.do(context.Background(), c.p, func() { info = c.tc.Info() }); err != nil {
		return TCPInfo{}, c.opError("get", err)
	}
	return tcpInfo(info), nil
}

// option runs an option's change on the poller and waits for it.
func (c *Conn) option(fn func()) error {
	if c.closed.Load() {
		return c.opError("set", net.ErrClosed)
	}
	if err := c.s.do(context.Background(), c.p, fn); err != nil {
		return c.opError("set", err)
	}
	return nil
}

// opError wraps err as Go's net package does, so callers' errors.Is and
// net.Error checks work unchanged and the text reads the same ("read tcp
// a->b: read: connection reset by peer").
func (c *Conn) opError(op string, err error) error {
	call := op
	switch op {
	case "set":
		call = "setsockopt"
	case "get":
		call = "getsockopt"
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.laddr, Addr: c.raddr, Err: syscallErr(call, err)}
}

// syscallErr is err as Go's net reports an errno: an *os.SyscallError
// naming the system call Linux would have failed, around the bare errno
// (the protocol cores' errors wrap one with text of their own, which
// would read twice). Other errors (net.ErrClosed, deadlines, a
// context's) pass unchanged.
func syscallErr(call string, err error) error {
	var errno syscall.Errno
	var se *os.SyscallError
	if errors.As(err, &se) || !errors.As(err, &errno) {
		return err
	}
	return os.NewSyscallError(call, errno)
}

// dialTCP opens a connection from local (port 0: an ephemeral one) to
// raddr, set up by setup, and waits for the handshake, ctx's end, or the
// stack's.
func (s *Stack) dialTCP(ctx context.Context, local, raddr netip.AddrPort, setup *connSetup) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := s.dialPoller(local, raddr)
	var c *Conn
	var err error
	// Not bounded by ctx: the poller would make the connection anyway,
	// and it has to be closed; the handshake's wait below is.
	if e := s.do(background, p, func() {
		var tc *tcp.Conn
		// No route fails at once with ENETUNREACH, as Linux's connect.
		if _, err = p.IP().Route(raddr.Addr()); err != nil {
			return
		}
		if tc, err = p.TCP().Dial(p.Now(), local, raddr); err == nil {
			c = newConn(s, p, tc, setup)
		}
	}); e != nil {
		err = e
	}
	if err != nil {
		return nil, syscallErr("connect", err)
	}
	if !s.track(c) {
		c.Close()
		return nil, net.ErrClosed
	}
	connected := func() bool { s := c.tc.Status(); return s.State != tcp.SynSent && s.State != tcp.SynReceived }
	for !connected() {
		ctxDone := ctx.Done()
		switch c.bells.w.wait(connected, nil, ctxDone, s.done) {
		case nil:
			continue
		case s.done:
			err = net.ErrClosed
		default:
			err = ctx.Err()
		}
		c.SetLinger(0)
		c.Close()
		return nil, err
	}
	if st := c.tc.Status(); st.Err != nil {
		c.Close()
		return nil, syscallErr("connect", st.Err)
	}
	return c, nil
}
