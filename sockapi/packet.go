package sockapi

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/internal/mpsc"
	"github.com/xdpnet/xdpnet/ip"
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
	laddr   net.Addr       // a *net.UDPAddr, or for a ping socket a *net.IPAddr
	network string         // "udp", or "ip4:icmp" for a ping socket (ICMPConn)
	raddr   *net.UDPAddr   // nil unless connected
	peer    netip.AddrPort // raddr's; zero unless connected
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
	return s.listenTable((*fastpath.Poller).UDP, laddr, raddr)
}

// listenTable binds laddr in table's table of every poller (its UDP or
// its ping sockets), connected to raddr if valid.
func (s *Stack) listenTable(table func(*fastpath.Poller) *udp.Table, laddr, raddr netip.AddrPort) (*PacketConn, error) {
	pc := &PacketConn{
		s: s, eps: make([]*udp.Endpoint, len(s.pollers)), streams: make([]udp.Stream, len(s.pollers)),
		bells: newBells(), rdl: newDeadline(), wdl: newDeadline(), done: make(chan struct{}), network: "udp",
	}
	var err error
	for q, p := range s.pollers {
		if e := s.do(background, p, func() {
			var ep *udp.Endpoint
			if raddr.IsValid() {
				// No route fails the connect at once, as on Linux.
				if _, err = p.IP().Route(raddr.Addr()); err != nil {
					err = syscallErr("connect", err)
					return
				}
			}
			if ep, err = table(p).Bind(laddr); err != nil {
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
		a := s.Addr()
		if raddr.IsValid() && raddr.Addr().IsLoopback() {
			a = ip.LoopbackAddr // the source of its datagrams, as udp picks it
		}
		local = netip.AddrPortFrom(a, local.Port())
	}
	pc.laddr = net.UDPAddrFromAddrPort(local)
	if raddr.IsValid() {
		pc.peer, pc.raddr = raddr, net.UDPAddrFromAddrPort(raddr)
	}
	if !s.track(pc) {
		pc.Close()
		return nil, net.ErrClosed
	}
	return pc, nil
}

// ReadMsgUDPAddrPort reads the next datagram into b, blocking until one
// comes, the read deadline, or Close, as net.UDPConn's: n is the bytes
// copied, and flags has syscall.MSG_TRUNC when the datagram was longer
// than b (the rest is discarded, as Linux's recvmsg does). There is no
// out-of-band data: oob is left alone and oobn is 0. It allocates
// nothing.
func (c *PacketConn) ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error) {
	n, addr, truncated, err := c.readMsg(b)
	if truncated {
		flags = syscall.MSG_TRUNC
	}
	return n, 0, flags, addr, err
}

// ReadMsgUDP is ReadMsgUDPAddrPort with the source as a *net.UDPAddr,
// allocated per datagram.
func (c *PacketConn) ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	n, oobn, flags, from, err := c.ReadMsgUDPAddrPort(b, oob)
	if err != nil {
		return n, oobn, flags, nil, err
	}
	return n, oobn, flags, net.UDPAddrFromAddrPort(from), nil
}

// ReadFromUDPAddrPort reads the next datagram, as ReadMsgUDPAddrPort
// without the flags: what does not fit b is discarded. It allocates
// nothing.
func (c *PacketConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, from, _, err := c.readMsg(b)
	return n, from, err
}

// ReadFromUDP is ReadFromUDPAddrPort with the source as a *net.UDPAddr,
// allocated per datagram.
func (c *PacketConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, from, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// ReadFrom is ReadFromUDP for net.PacketConn.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromUDP(b)
	if err != nil {
		return n, nil, err // not a typed nil in the interface
	}
	return n, from, nil
}

// Read reads a datagram from the connected peer.
func (c *PacketConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadFromUDPAddrPort(b)
	return n, err
}

// readMsg is every read: the next datagram from any poller's queue.
func (c *PacketConn) readMsg(b []byte) (int, netip.AddrPort, bool, error) {
	if c.closed.Load() {
		return 0, netip.AddrPort{}, false, c.opError("read", nil, net.ErrClosed)
	}
	if isClosed(c.rdl.wait()) {
		return 0, netip.AddrPort{}, false, c.opError("read", nil, os.ErrDeadlineExceeded)
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
			return 0, netip.AddrPort{}, false, c.opError("read", nil, net.ErrClosed)
		}
		for range c.streams {
			st := c.streams[c.next]
			c.next = (c.next + 1) % len(c.streams)
			if st.Refused() {
				return 0, netip.AddrPort{}, false, c.opError("read", nil, udp.ErrConnRefused)
			}
			if n, from, truncated, ok := st.Recv(b); ok {
				return n, from, truncated, nil
			}
		}
		if err := c.wait(&c.bells.r, &c.rdl, ready); err != nil {
			return 0, netip.AddrPort{}, false, c.opError("read", nil, err)
		}
	}
}

// WriteMsgUDPAddrPort sends b to addr, or to the connected peer if addr
// is the zero AddrPort, as net.UDPConn's; a connected socket may name
// another destination, as Linux's sendmsg allows (Go's net refuses it).
// Out-of-band data is not supported: a non-empty oob fails with
// EOPNOTSUPP. It allocates nothing.
func (c *PacketConn) WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error) {
	if len(oob) > 0 {
		return 0, 0, c.writeErr(addr, syscall.EOPNOTSUPP)
	}
	if !addr.IsValid() {
		if !c.peer.IsValid() {
			return 0, 0, c.opError("write", nil, udp.ErrNoDestination)
		}
		addr = c.peer
	}
	n, err = c.write(b, addr)
	return n, 0, err
}

// WriteMsgUDP is WriteMsgUDPAddrPort with a *net.UDPAddr; nil means the
// connected peer.
func (c *PacketConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	var dst netip.AddrPort
	if addr != nil {
		dst = addr.AddrPort()
	}
	return c.WriteMsgUDPAddrPort(b, oob, dst)
}

// WriteToUDPAddrPort sends b to addr. It allocates nothing.
func (c *PacketConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.write(b, addr)
}

// WriteToUDP sends b to addr.
func (c *PacketConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	if addr == nil {
		return 0, c.opError("write", nil, udp.ErrNoDestination)
	}
	return c.write(b, addr.AddrPort())
}

// WriteTo sends b to addr, a *net.UDPAddr (EINVAL otherwise, as
// net.UDPConn's).
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, c.opError("write", addr, syscall.EINVAL)
	}
	return c.WriteToUDP(b, ua)
}

// Write sends b to the connected peer.
func (c *PacketConn) Write(b []byte) (int, error) {
	n, _, err := c.WriteMsgUDPAddrPort(b, nil, netip.AddrPort{})
	return n, err
}

// write queues b on the first poller's endpoint and kicks it, waiting
// while the queue is full (as a UDP socket blocks on a full send buffer)
// until the write deadline.
func (c *PacketConn) write(b []byte, dst netip.AddrPort) (int, error) {
	if c.closed.Load() {
		return 0, c.writeErr(dst, net.ErrClosed)
	}
	if isClosed(c.wdl.wait()) {
		return 0, c.writeErr(dst, os.ErrDeadlineExceeded)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	st := c.streams[0]
	for {
		if c.closed.Load() {
			return 0, c.writeErr(dst, net.ErrClosed)
		}
		if c.raddr != nil && st.Refused() {
			return 0, c.writeErr(dst, udp.ErrConnRefused)
		}
		err := st.Send(b, dst)
		if err == nil {
			c.s.pollers[0].Kick(&c.kick)
			return len(b), nil
		}
		if !errors.Is(err, udp.ErrWouldBlock) {
			return 0, c.writeErr(dst, err)
		}
		c.s.pollers[0].Kick(&c.kick) // the queue drains as the poller sends
		if err := c.wait(&c.bells.w, &c.wdl, func() bool { return st.Fits(len(b)) }); err != nil {
			return 0, c.writeErr(dst, err)
		}
	}
}

// writeErr is a write's error for dst: the address is made only on
// failure, so that the AddrPort forms allocate nothing when they succeed.
func (c *PacketConn) writeErr(dst netip.AddrPort, err error) error {
	var addr net.Addr
	switch {
	case c.network != "udp":
		addr = &net.IPAddr{IP: dst.Addr().AsSlice()}
	case dst.IsValid():
		addr = net.UDPAddrFromAddrPort(dst)
	}
	return c.opError("write", addr, err)
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

// SetReadBuffer bounds each queue's receive buffer at bytes of payload,
// as SO_RCVBUF does on Linux (not doubled: the buffer holds only
// payload); Config.UDPReadBuffer bounds it in turn, as
// net.core.rmem_max bounds SO_RCVBUF. Datagrams past it are dropped, as
// by a full socket buffer. The socket has a queue per poller: each has
// this bound.
func (c *PacketConn) SetReadBuffer(bytes int) error {
	return c.setBuffer(bytes, udp.Stream.SetRecvBuffer)
}

// SetWriteBuffer bounds the send queue at bytes of payload, as
// SO_SNDBUF (not doubled); Config.UDPWriteBuffer bounds it. Writes block
// while it is full.
func (c *PacketConn) SetWriteBuffer(bytes int) error {
	return c.setBuffer(bytes, udp.Stream.SetSendBuffer)
}

func (c *PacketConn) setBuffer(bytes int, set func(udp.Stream, int)) error {
	switch {
	case c.closed.Load():
		return c.opError("set", nil, net.ErrClosed)
	case bytes <= 0:
		return c.opError("set", nil, syscall.EINVAL)
	}
	for _, st := range c.streams {
		set(st, bytes)
	}
	return nil
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
	return &net.OpError{Op: op, Net: c.network, Source: c.laddr, Addr: addr, Err: err}
}
