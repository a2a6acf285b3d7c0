package sockapi

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/xdpnet/xdpnet/udp"
)

// PacketConn is a UDP socket: a net.PacketConn, and a net.Conn once
// connected (DialContext "udp"), which is what Go's DNS resolver needs.
// It is bound on every poller, since a datagram may land on any queue;
// each poller moves what its endpoint received into the socket's queue.
//
// Datagrams cross between the app and the pollers through a channel and
// the poller's Do queue, one allocation each: UDP here serves control
// traffic such as DNS. (TCP data goes through lock-free rings.)
type PacketConn struct {
	s      *Stack
	eps    []*udp.Endpoint // one per poller, the pollers'
	recv   chan datagram
	rdl    deadline
	wdl    deadline
	laddr  *net.UDPAddr
	raddr  *net.UDPAddr // nil unless connected
	done   chan struct{}
	closed atomic.Bool
	drops  atomic.Uint64 // datagrams dropped for a full queue
}

var (
	_ net.PacketConn = (*PacketConn)(nil)
	_ net.Conn       = (*PacketConn)(nil)
)

type datagram struct {
	b    []byte
	from netip.AddrPort
	err  error // an asynchronous error instead (ECONNREFUSED)
}

// recvQueue bounds the datagrams waiting for ReadFrom; more stay in the
// endpoints' own bounded queues.
const recvQueue = 256

// udpPump is a poller's part: its sockets' endpoints, emptied each round.
type udpPump struct {
	socks []*PacketConn
	buf   [65536]byte
}

// run moves received datagrams into the sockets' queues.
func (u *udpPump) run(q int) {
	for _, pc := range u.socks {
		ep := pc.eps[q]
		for len(pc.recv) < cap(pc.recv) {
			n, from, err := ep.ReadFrom(u.buf[:])
			if errors.Is(err, udp.ErrWouldBlock) {
				break
			}
			d := datagram{from: from, err: err}
			if err == nil {
				d.b = append([]byte(nil), u.buf[:n]...)
			}
			select {
			case pc.recv <- d:
			default: // another poller filled it: dropped, as by a full socket buffer
				pc.drops.Add(1)
			}
		}
	}
}

// listenUDP binds laddr on every poller, connected to raddr if valid.
func (s *Stack) listenUDP(laddr, raddr netip.AddrPort) (*PacketConn, error) {
	pc := &PacketConn{
		s: s, eps: make([]*udp.Endpoint, len(s.pollers)), recv: make(chan datagram, recvQueue),
		rdl: newDeadline(), wdl: newDeadline(), done: make(chan struct{}),
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
			pc.eps[q] = ep
			laddr = ep.LocalAddr() // the first picks the port; all share it
			s.pumps[q].socks = append(s.pumps[q].socks, pc)
		}); e != nil {
			err = e
		}
		if err != nil {
			pc.Close()
			return nil, err
		}
	}
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
	select {
	case d := <-c.recv:
		if d.err != nil {
			return 0, netip.AddrPort{}, c.opError("read", nil, d.err)
		}
		return copy(b, d.b), d.from, nil
	case <-c.rdl.wait():
		return 0, netip.AddrPort{}, c.opError("read", nil, os.ErrDeadlineExceeded)
	case <-c.done:
	case <-c.s.done:
	}
	return 0, netip.AddrPort{}, c.opError("read", nil, net.ErrClosed)
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

// write hands a copy of b to poller 0's endpoint and waits for its
// verdict, so a datagram too large or a refused peer is this call's
// error.
func (c *PacketConn) write(b []byte, dst netip.AddrPort, addr net.Addr) (int, error) {
	if c.closed.Load() {
		return 0, c.opError("write", addr, net.ErrClosed)
	}
	if isClosed(c.wdl.wait()) {
		return 0, c.opError("write", addr, os.ErrDeadlineExceeded)
	}
	p := append([]byte(nil), b...)
	var n int
	var err error
	if e := c.s.do(background, c.s.pollers[0], func() { n, err = c.eps[0].WriteTo(p, dst) }); e != nil {
		err = e
	}
	if err != nil {
		return 0, c.opError("write", addr, err)
	}
	return n, nil
}

// Close closes the socket on every poller.
func (c *PacketConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opError("close", nil, net.ErrClosed)
	}
	close(c.done)
	c.s.untrack(c)
	for q, p := range c.s.pollers {
		c.s.do(background, p, func() {
			if ep := c.eps[q]; ep != nil {
				ep.Close()
			}
			u := c.s.pumps[q]
			for i, pc := range u.socks {
				if pc == c {
					u.socks = append(u.socks[:i], u.socks[i+1:]...)
					break
				}
			}
		})
	}
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

// SetWriteDeadline sets the write deadline.
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
