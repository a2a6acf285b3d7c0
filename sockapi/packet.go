package sockapi

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/internal/mpsc"
	"github.com/xdpnet/xdpnet/udp"
)

// PacketConn is a UDP socket: a net.PacketConn, and a net.Conn once
// connected (DialContext "udp"), which is what Go's DNS resolver needs.
// It is bound on every poller, since a datagram may land on any queue.
// Datagrams cross between the app and the pollers through each
// endpoint's lock-free queues, as TCP's bytes do: reads take
// from every queue's receive side, writes go to the first poller's send
// side and kick it.
type PacketConn struct {
	s       *Stack
	eps     []*udp.Endpoint // one per poller, the pollers'
	streams []udp.Stream    // the app's sides of eps
	kick    mpsc.Node[fastpath.Kickable]
	bells   bells // read and write; Owner of the core's sockets
	rdl     deadline
	wdl     deadline
	laddr   *net.UDPAddr
	raddr   *net.UDPAddr // nil unless connected
	done    chan struct{}
	closed  atomic.Bool
	// rmu and wmu serialize concurrent reads and concurrent writes: each
	// queue has one producer and one consumer.
	rmu, wmu sync.Mutex
	next     int // the queue a read looks at first, round robin; under rmu
}

var (
	_ net.PacketConn = (*PacketConn)(nil)
	_ net.Conn       = (*PacketConn)(nil)
)

// listenUDP binds laddr on every poller, connected to raddr if valid.
func (s *Stack) listenUDP(laddr, raddr netip.AddrPort) (*PacketConn, error) {
	pc := &PacketConn{
		s: s, eps: make([]*udp.Endpoint, len(s.pollers)), streams: make([]udp.Stream, len(s.pollers)),
		bells: newBells(), rdl: newDeadline(), wdl: newDeadline(), done: make(chan struct{}),
	}
	var err error
	for q, p := range s.pollers {
		if e := s.do(background, p, func() {
			var ep *udp.Endpoint
			if ep, err = p.UDP().Bind(laddr); err != nil {
				return
			}
			if raddr.IsValid() {
				if err = ep.Connect(raddr); err != nil {
					ep.Close()
					return
				}
			}
			ep.Owner = &pc.bells
			pc.eps[q], pc.streams[q] = ep, ep.Stream()
			laddr = ep.LocalAddr() // the first picks the port; all share it
		}); e != nil {
			err = e
		}
		if err != nil {
			pc.Close()
			return nil, err
		}
	}
	pc.kick.Value = pc.eps[0]
	local := laddr
	if local.Addr().IsUnspecified() {
		local = netip.AddrPortFrom(s.Addr(), local.Port())
	}
	pc.laddr = net.UDPAddrFromAddrPort(local)
	if raddr.IsValid() {
		pc.raddr = net.UDPAddrFromAddrPort(raddr)
	}
	if !s.track(pc) {
		pc.Close()
		return nil, net.ErrClosed
	}
	return pc, nil
}

// ReadFrom reads the next datagram, blocking until one comes, the read
// deadline, or Close.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.readFrom(b)
	if err != nil {
		return 0, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

func (c *PacketConn) readFrom(b []byte) (int, netip.AddrPort, error) {
	if c.closed.Load() {
		return 0, netip.AddrPort{}, c.opError("read", nil, net.ErrClosed)
	}
	if isClosed(c.rdl.wait()) {
		return 0, netip.AddrPort{}, c.opError("read", nil, os.ErrDeadlineExceeded)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	ready := func() bool {
		for _, st := range c.streams {
			if st.Ready() {
				return true
			}
		}
		return false
	}
	for {
		if c.closed.Load() {
			return 0, netip.AddrPort{}, c.opError("read", nil, net.ErrClosed)
		}
		for range c.streams {
			st := c.streams[c.next]
			c.next = (c.next + 1) % len(c.streams)
			if st.Refused() {
				return 0, netip.AddrPort{}, c.opError("read", nil, udp.ErrConnRefused)
			}
			if n, from, ok := st.Recv(b); ok {
				return n, from, nil
			}
		}
		if err := c.wait(&c.bells.r, &c.rdl, ready); err != nil {
			return 0, netip.AddrPort{}, c.opError("read", nil, err)
		}
	}
}

// Read reads a datagram from the connected peer.
func (c *PacketConn) Read(b []byte) (int, error) {
	n, _, err := c.readFrom(b)
	return n, err
}

// WriteTo sends b to addr.
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, c.opError("write", addr, &net.AddrError{Err: "not a UDP address", Addr: addr.String()})
	}
	return c.write(b, ua.AddrPort(), addr)
}

// Write sends b to the connected peer.
func (c *PacketConn) Write(b []byte) (int, error) {
	if c.raddr == nil {
		return 0, c.opError("write", nil, udp.ErrNoDestination)
	}
	return c.write(b, c.raddr.AddrPort(), c.raddr)
}

// write queues b on the first poller's endpoint and kicks it, waiting
// while the queue is full (as a UDP socket blocks on a full send buffer)
// until the write deadline.
func (c *PacketConn) write(b []byte, dst netip.AddrPort, addr net.Addr) (int, error) {
	if c.closed.Load() {
		return 0, c.opError("write", addr, net.ErrClosed)
	}
	if isClosed(c.wdl.wait()) {
		return 0, c.opError("write", addr, os.ErrDeadlineExceeded)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	st := c.streams[0]
	for {
		if c.closed.Load() {
			return 0, c.opError("write", addr, net.ErrClosed)
		}
		if c.raddr != nil && st.Refused() {
			return 0, c.opError("write", addr, udp.ErrConnRefused)
		}
		err := st.Send(b, dst)
		if err == nil {
			c.s.pollers[0].Kick(&c.kick)
			return len(b), nil
		}
		if !errors.Is(err, udp.ErrWouldBlock) {
			return 0, c.opError("write", addr, err)
		}
		c.s.pollers[0].Kick(&c.kick) // the queue drains as the poller sends
		if err := c.wait(&c.bells.w, &c.wdl, func() bool { return st.Fits(len(b)) }); err != nil {
			return 0, c.opError("write", addr, err)
		}
	}
}

// wait waits on b until ready or the end of the socket or stack.
func (c *PacketConn) wait(b *bell, dl *deadline, ready func() bool) error {
	return waitErr(b, dl, ready, c.done, c.s.done)
}

// Close closes the socket on every poller, once the reads and writes in
// flight let go of the queues.
func (c *PacketConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opError("close", nil, net.ErrClosed)
	}
	close(c.done)
	c.s.untrack(c)
	c.rmu.Lock()
	c.wmu.Lock()
	for q, p := range c.s.pollers {
		c.s.do(background, p, func() {
			if ep := c.eps[q]; ep != nil {
				ep.Owner = nil
				ep.Close()
			}
		})
	}
	c.wmu.Unlock()
	c.rmu.Unlock()
	return nil
}

func (c *PacketConn) close() { c.Close() }

// LocalAddr is the bound address.
func (c *PacketConn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr is the connected peer, or nil.
func (c *PacketConn) RemoteAddr() net.Addr {
	if c.raddr == nil {
		return nil
	}
	return c.raddr
}

// SetDeadline sets both deadlines.
func (c *PacketConn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline sets the read deadline, blocked reads included.
func (c *PacketConn) SetReadDeadline(t time.Time) error {
	c.rdl.set(t)
	return nil
}

// SetWriteDeadline sets the write deadline, blocked writes included.
func (c *PacketConn) SetWriteDeadline(t time.Time) error {
	c.wdl.set(t)
	return nil
}

func (c *PacketConn) opError(op string, addr net.Addr, err error) error {
	if addr == nil && c.raddr != nil {
		addr = c.raddr
	}
	return &net.OpError{Op: op, Net: "udp", Source: c.laddr, Addr: addr, Err: err}
}
