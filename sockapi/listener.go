package sockapi

import (
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/tcp"
)

// Listener is a TCP listener: a net.Listener that listens on every
// poller of the stack (a SYN may land on any queue) and hands their
// connections out through one channel.
//
// The backlog is enforced by the tcp listeners' accept queues alone: the
// connections in the channel (and those a poller holds for it) count
// against the backlog there (TCP counts them held), so that with the app
// not accepting, a handshake's last ACK is dropped and the SYN,ACK sent
// again, as Linux does, rather than queued here beyond the backlog.
type Listener struct {
	s        *Stack
	addr     *net.TCPAddr
	accepted chan *Conn
	held     atomic.Int64 // connections taken from the tcp listeners and not accepted yet
	queues   []*queueListener
	setup    *connSetup // for each accepted connection
	dl       deadline
	done     chan struct{}
	closed   atomic.Bool
}

var _ net.Listener = (*Listener)(nil)

// queueListener is the listener on one poller.
type queueListener struct {
	l       *Listener
	p       *fastpath.Poller
	tl      *tcp.Listener
	pending *Conn       // accepted from tl but not yet into the channel; the poller's
	starved atomic.Bool // the channel was full: refill after an Accept
}

// listenTCP listens on addr on every poller; setup sets up each
// connection accepted.
func (s *Stack) listenTCP(addr netip.AddrPort, backlog int, setup *connSetup) (*Listener, error) {
	// Each poller's queue holds up to the backlog, less what the others
	// handed on: the channel never has to hold more than all of them.
	l := &Listener{
		s: s, accepted: make(chan *Conn, max(backlog, 1)*len(s.pollers)), setup: setup,
		dl: newDeadline(), done: make(chan struct{}),
	}
	held := func() int { return int(l.held.Load()) }
	var err error
	for _, p := range s.pollers {
		q := &queueListener{l: l, p: p}
		if e := s.do(background, p, func() {
			if q.tl, err = p.TCP().Listen(addr, backlog); err == nil {
				q.tl.Owner, q.tl.Held = q, held
			}
		}); e != nil {
			err = e
		}
		if err != nil {
			l.Close()
			return nil, err
		}
		l.queues = append(l.queues, q)
	}
	// A wildcard listener reports the stack's address, the one to dial
	// (the stack has one).
	local := l.queues[0].tl.Addr()
	if local.Addr().IsUnspecified() {
		local = netip.AddrPortFrom(s.Addr(), local.Port())
	}
	l.addr = net.TCPAddrFromAddrPort(local)
	if !s.track(l) {
		l.Close()
		return nil, net.ErrClosed
	}
	return l, nil
}

// Notify moves the poller's accepted connections into the channel, on the
// poller's goroutine; what does not fit waits in the tcp listener's
// accept queue, whose limit then holds new clients back.
func (q *queueListener) Notify() bool {
	woke := false
	for {
		if q.pending == nil {
			tc, err := q.tl.Accept()
			if err != nil {
				return woke
			}
			q.l.held.Add(1)
			q.pending = newConn(q.l.s, q.p, tc, q.l.setup)
		}
		select {
		case q.l.accepted <- q.pending:
			q.pending = nil
			woke = true
		default:
			q.starved.Store(true)
			return woke
		}
	}
}

// Accept waits for the next connection, the deadline, or Close.
func (l *Listener) Accept() (net.Conn, error) {
	return l.AcceptTCP()
}

// AcceptTCP is Accept with the connection's own type.
func (l *Listener) AcceptTCP() (*Conn, error) {
	if l.closed.Load() {
		return nil, l.opError(net.ErrClosed)
	}
	select {
	case c := <-l.accepted:
		l.held.Add(-1)
		l.refill()
		if !l.s.track(c) {
			c.Close()
			return nil, l.opError(net.ErrClosed)
		}
		return c, nil
	case <-l.done:
		return nil, l.opError(net.ErrClosed)
	case <-l.s.done:
		return nil, l.opError(net.ErrClosed)
	case <-l.dl.wait():
		return nil, l.opError(os.ErrDeadlineExceeded)
	}
}

// refill asks the pollers whose connections did not fit the channel to
// move them now that there is room.
func (l *Listener) refill() {
	for _, q := range l.queues {
		if q.starved.CompareAndSwap(true, false) {
			q.p.Do(func() { q.Notify() })
		}
	}
}

// SetDeadline sets the deadline of Accept calls, blocked ones included.
func (l *Listener) SetDeadline(t time.Time) error {
	l.dl.set(t)
	return nil
}

// Close stops listening; connections not yet accepted are reset.
func (l *Listener) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return l.opError(net.ErrClosed)
	}
	close(l.done)
	l.s.untrack(l)
	for _, q := range l.queues {
		l.s.do(background, q.p, func() {
			q.tl.Close()
			if q.pending != nil {
				q.pending.tc.Abort()
				q.pending = nil
			}
		})
	}
	for {
		select {
		case c := <-l.accepted:
			c.SetLinger(0)
			c.Close()
		default:
			return nil
		}
	}
}

func (l *Listener) close() { l.Close() }

// Addr is the listener's address.
func (l *Listener) Addr() net.Addr { return l.addr }

func (l *Listener) opError(err error) error {
	return &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: err}
}
