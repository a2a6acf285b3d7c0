package sockapi

import (
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/xdpnet/xdpnet/fastpath"
)

// ICMPConn is an ICMP echo socket, with the semantics of Linux's ping
// sockets (SOCK_DGRAM, IPPROTO_ICMP): the app writes whole ICMP echo
// requests (type 8, code 0, as golang.org/x/net/icmp marshals them) and
// reads whole echo replies, from the IPv4 payload on. The stack picks the
// socket's identifier, as it picks an ephemeral port, writes it over the
// identifier of every request and computes the checksum afresh; a read
// returns only the replies that carry it, so two sockets never see each
// other's. Any other message written fails with EINVAL. It is UDP's socket
// underneath (udp's ping mode): the same bounded queues, deadlines and
// Close.
type ICMPConn struct {
	pc *PacketConn
	id uint16
}

var _ net.PacketConn = (*ICMPConn)(nil)

// icmpNetwork is the network of Go's net for ICMP over IPv4.
const icmpNetwork = "ip4:icmp"

// listenICMP opens an echo socket on address: "", "0.0.0.0" or one of the
// stack's addresses.
func (lc *ListenConfig) listenICMP(network, address string) (*ICMPConn, error) {
	a := netip.IPv4Unspecified()
	if address != "" {
		var err error
		if a, err = netip.ParseAddr(address); err != nil || !a.Unmap().Is4() {
			return nil, &net.OpError{Op: "listen", Net: network, Err: &net.AddrError{Err: "not an IPv4 address of the stack", Addr: address}}
		}
		a = a.Unmap()
	}
	laddr := &net.IPAddr{IP: a.AsSlice()}
	opts := &SocketOptions{udp: true}
	if lc.Control != nil {
		if err := lc.Control(icmpNetwork, address, opts); err != nil {
			return nil, &net.OpError{Op: "listen", Net: network, Addr: laddr, Err: err}
		}
	}
	pc, err := lc.Stack.listenTable((*fastpath.Poller).Ping, netip.AddrPortFrom(a, 0), netip.AddrPort{})
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: laddr, Err: syscallErr("bind", err)}
	}
	pc.network = icmpNetwork
	c := &ICMPConn{pc: pc, id: pc.laddr.(*net.UDPAddr).AddrPort().Port()}
	pc.laddr = &net.IPAddr{IP: pc.laddr.(*net.UDPAddr).IP}
	opts.applyUDP(pc)
	return c, nil
}

// ID is the identifier the stack picked for the socket's echo requests.
func (c *ICMPConn) ID() uint16 { return c.id }

// ReadFromAddr reads the next echo reply, the whole ICMP message, into b,
// blocking until one comes, the read deadline, or Close; what does not fit
// b is discarded. It returns the reply's source and allocates nothing.
func (c *ICMPConn) ReadFromAddr(b []byte) (int, netip.Addr, error) {
	n, from, _, err := c.pc.readMsg(b)
	return n, from.Addr(), err
}

// ReadFrom is ReadFromAddr with the source as a *net.IPAddr, allocated
// per message.
func (c *ICMPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddr(b)
	if err != nil {
		return n, nil, err
	}
	return n, &net.IPAddr{IP: from.AsSlice()}, nil
}

// WriteToAddr sends b, an ICMP echo request, to dst, blocking while the
// send queue is full until the write deadline. It allocates nothing.
func (c *ICMPConn) WriteToAddr(b []byte, dst netip.Addr) (int, error) {
	return c.pc.write(b, netip.AddrPortFrom(dst, 0))
}

// WriteTo sends b to addr, a *net.IPAddr, or a *net.UDPAddr whose port
// is ignored (as golang.org/x/net/icmp passes for "udp4" ping sockets);
// EINVAL otherwise.
func (c *ICMPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	var dst netip.Addr
	switch a := addr.(type) {
	case *net.IPAddr:
		dst, _ = netip.AddrFromSlice(a.IP)
	case *net.UDPAddr:
		dst, _ = netip.AddrFromSlice(a.IP)
	default:
		return 0, c.pc.opError("write", addr, syscall.EINVAL)
	}
	return c.WriteToAddr(b, dst.Unmap())
}

// Close closes the socket; blocked reads and writes return net.ErrClosed.
func (c *ICMPConn) Close() error { return c.pc.Close() }

// LocalAddr is the bound address, a *net.IPAddr.
func (c *ICMPConn) LocalAddr() net.Addr { return c.pc.LocalAddr() }

// SetDeadline sets both deadlines.
func (c *ICMPConn) SetDeadline(t time.Time) error { return c.pc.SetDeadline(t) }

// SetReadDeadline sets the read deadline, blocked reads included.
func (c *ICMPConn) SetReadDeadline(t time.Time) error { return c.pc.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline, blocked writes included.
func (c *ICMPConn) SetWriteDeadline(t time.Time) error { return c.pc.SetWriteDeadline(t) }
