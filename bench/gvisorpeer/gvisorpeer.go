// Package gvisorpeer runs gVisor's userspace TCP/IP stack (netstack,
// gvisor.dev/gvisor/pkg/tcpip with adapters/gonet) over gVisor's own
// AF_XDP link endpoint, so that bench can put it on the same veth end as
// xdpnet and the kernel and compare the three.
//
// gVisor's endpoint loads no XDP program: Open attaches ours (xdp/steer)
// with the stack's address and registers gVisor's socket in its XSKMAP at
// queue 0. The endpoint's MTU is fixed at 1500 and it has no offloads; the
// peer must send finished checksums (`ethtool -K <peer> tx off`, as the lab
// does).
//
// gVisor's TCP can stop for good after a zero-window stall (measured here
// before this package existed). Bulk users should bound what they keep
// outstanding (Config.SendBuffer) and put every transfer under a deadline:
// StallConn turns a transfer that stops making progress into ErrStalled
// instead of a hang.
//
// In the lab, open it inside the namespace of xdpnet's end; its methods
// then work from anywhere:
//
//	var st *gvisorpeer.Stack
//	err := l.Local.Do(func() (err error) {
//		st, err = gvisorpeer.Open(gvisorpeer.Config{Interface: l.Local.Link, Addr: netip.PrefixFrom(l.StackAddr, 24)})
//		return err
//	})
//	...
//	defer st.Close()
//	ln, err := st.Listen("tcp", ":7000")   // a gVisor server
//	c, err := st.Dial(ctx, "tcp", "198.18.0.3:7")  // a gVisor client
package gvisorpeer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/xdpnet/xdpnet/xdp/steer"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/xdp"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// MTU is the only MTU gVisor's AF_XDP endpoint supports: a frame must fit
// one 2048-byte UMEM frame.
const MTU = xdp.MTU

// nic is the stack's one NIC.
const nic tcpip.NICID = 1

// Config says where the stack runs.
type Config struct {
	// Interface is the interface to bind, in the calling thread's network
	// namespace. Its MTU must be MTU.
	Interface string
	// Addr is the stack's IPv4 address and the on-link prefix; the
	// interface's kernel must not have the address.
	Addr netip.Prefix
	// Mode is the XDP attach mode of the steering program; Auto is native
	// where the driver has it.
	Mode steer.Mode
	// SendBuffer, if not zero, is every TCP connection's send buffer in
	// bytes, fixed (no auto-tuning): the most a sender keeps outstanding.
	SendBuffer int
	// ReceiveBuffer, if not zero, fixes every TCP connection's receive
	// buffer (the window it offers) in bytes.
	ReceiveBuffer int
}

// Stack is a running gVisor netstack on one AF_XDP socket.
type Stack struct {
	s    *stack.Stack
	addr tcpip.Address
	fd   int // gVisor's AF_XDP socket
	// prog is the steering program. It must stay referenced for the
	// stack's life: its finalizer detaches it.
	prog *steer.Program
}

// Open binds an AF_XDP socket to queue 0 of cfg.Interface, starts gVisor's
// stack on it and attaches the steering program. Call it in the network
// namespace of the interface (the socket stays bound there); the Stack's
// methods work from any goroutine and thread.
func Open(cfg Config) (*Stack, error) {
	if !cfg.Addr.Addr().Is4() {
		return nil, fmt.Errorf("gvisorpeer: address %v: want an IPv4 prefix", cfg.Addr)
	}
	ifc, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("gvisorpeer: %w", err)
	}
	if ifc.MTU != MTU {
		return nil, fmt.Errorf("gvisorpeer: %s has MTU %d: gVisor's AF_XDP endpoint supports only %d", ifc.Name, ifc.MTU, MTU)
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("gvisorpeer: AF_XDP socket: %w", err)
	}
	st := &Stack{fd: fd, addr: tcpip.AddrFrom4(cfg.Addr.Addr().As4())}
	if err := st.start(cfg, ifc); err != nil {
		st.Close()
		if st.s == nil { // no goroutine polls the socket yet
			unix.Close(fd)
		}
		return nil, fmt.Errorf("gvisorpeer: %w", err)
	}
	return st, nil
}

// start builds the stack on st.fd and steers cfg.Addr's traffic to it.
func (st *Stack) start(cfg Config, ifc *net.Interface) error {
	ep, err := xdp.New(&xdp.Options{
		FD:             st.fd,
		Address:        tcpip.LinkAddress(ifc.HardwareAddr),
		InterfaceIndex: ifc.Index,
		QueueID:        0,
		Bind:           true,
	})
	if err != nil {
		return fmt.Errorf("gVisor's AF_XDP endpoint on %s: %w", ifc.Name, err)
	}
	st.s = stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	sack := tcpip.TCPSACKEnabled(true)
	if e := st.s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); e != nil {
		return fmt.Errorf("SACK: %s", e)
	}
	if n := cfg.SendBuffer; n > 0 {
		o := tcpip.TCPSendBufferSizeRangeOption{Min: n, Default: n, Max: n}
		if e := st.s.SetTransportProtocolOption(tcp.ProtocolNumber, &o); e != nil {
			return fmt.Errorf("send buffer %d: %s", n, e)
		}
	}
	if n := cfg.ReceiveBuffer; n > 0 {
		o := tcpip.TCPReceiveBufferSizeRangeOption{Min: n, Default: n, Max: n}
		if e := st.s.SetTransportProtocolOption(tcp.ProtocolNumber, &o); e != nil {
			return fmt.Errorf("receive buffer %d: %s", n, e)
		}
		moderate := tcpip.TCPModerateReceiveBufferOption(false)
		if e := st.s.SetTransportProtocolOption(tcp.ProtocolNumber, &moderate); e != nil {
			return fmt.Errorf("receive buffer moderation: %s", e)
		}
	}
	if e := st.s.CreateNIC(nic, ep); e != nil {
		return fmt.Errorf("NIC: %s", e)
	}
	pa := tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: st.addr, PrefixLen: cfg.Addr.Bits()},
	}
	if e := st.s.AddProtocolAddress(nic, pa, stack.AddressProperties{}); e != nil {
		return fmt.Errorf("address %v: %s", cfg.Addr, e)
	}
	st.s.SetRouteTable([]tcpip.Route{{Destination: pa.AddressWithPrefix.Subnet(), NIC: nic}})

	st.prog, err = steer.Attach(steer.Config{Ifindex: ifc.Index, Addrs: []netip.Addr{cfg.Addr.Addr()}, Mode: cfg.Mode})
	if err != nil {
		return err
	}
	return st.prog.Register(0, st.fd)
}

// Close resets the stack's connections and detaches the steering
// program; the interface's traffic goes to its kernel again.
//
// gVisor's AF_XDP endpoint (this version) cannot be torn down: its Close
// does nothing, it never unmaps its rings and UMEM, and removing its NIC
// (stack.Wait) never returns because its receive goroutine does not stop.
// So Close leaves that goroutine parked in ppoll, which nothing wakes
// once the program is detached, and keeps the socket open (closing the
// descriptor under it would make its poll spin on POLLNVAL): about 2.1 MB
// of mappings, one descriptor and one goroutine stay with the process
// until it exits, and the socket keeps the network namespace it was made
// in alive (nameless, once its name is deleted) until then too.
func (st *Stack) Close() error {
	if st.s != nil {
		st.s.Close()
	}
	if st.prog != nil {
		return st.prog.Close()
	}
	return nil
}

// Addr is the stack's IPv4 address.
func (st *Stack) Addr() netip.Addr { return netip.AddrFrom4(st.addr.As4()) }

// Mode is the XDP attach mode of the steering program in force.
func (st *Stack) Mode() steer.Mode { return st.prog.Mode() }

// Dial connects to address ("ip:port") over TCP; network must be "tcp" or
// "tcp4".
func (st *Stack) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	fa, err := fullAddr("tcp", network, address)
	if err != nil {
		return nil, err
	}
	c, err := gonet.DialContextTCP(ctx, st.s, fa, ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("gvisorpeer: dial %s: %w", address, err)
	}
	return c, nil
}

// Listen listens for TCP connections on address ("ip:port" or ":port",
// the stack's address then); network must be "tcp" or "tcp4".
func (st *Stack) Listen(network, address string) (net.Listener, error) {
	fa, err := fullAddr("tcp", network, address)
	if err != nil {
		return nil, err
	}
	if fa.Addr.Len() == 0 {
		fa.Addr = st.addr
	}
	l, err := gonet.ListenTCP(st.s, fa, ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("gvisorpeer: listen %s: %w", address, err)
	}
	return l, nil
}

// ListenPacket binds a UDP socket on address ("ip:port" or ":port", the
// stack's address then); network must be "udp" or "udp4".
func (st *Stack) ListenPacket(network, address string) (net.PacketConn, error) {
	fa, err := fullAddr("udp", network, address)
	if err != nil {
		return nil, err
	}
	if fa.Addr.Len() == 0 {
		fa.Addr = st.addr
	}
	c, err := gonet.DialUDP(st.s, &fa, nil, ipv4.ProtocolNumber)
	if err != nil {
		return nil, fmt.Errorf("gvisorpeer: listen %s: %w", address, err)
	}
	return c, nil
}

// fullAddr parses a proto ("tcp" or "udp") address for gonet: network is
// proto or proto+"4". An empty host gives an empty address.
func fullAddr(proto, network, address string) (tcpip.FullAddress, error) {
	if network != proto && network != proto+"4" {
		return tcpip.FullAddress{}, fmt.Errorf("gvisorpeer: network %q: want %s", network, proto)
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return tcpip.FullAddress{}, fmt.Errorf("gvisorpeer: %w", err)
	}
	ap, err := netip.ParseAddrPort(net.JoinHostPort(orUnspecified(host), port))
	if err != nil || !ap.Addr().Is4() {
		return tcpip.FullAddress{}, fmt.Errorf("gvisorpeer: address %q: want ipv4:port", address)
	}
	fa := tcpip.FullAddress{NIC: nic, Port: ap.Port()}
	if host != "" {
		fa.Addr = tcpip.AddrFrom4(ap.Addr().As4())
	}
	return fa, nil
}

func orUnspecified(host string) string {
	if host == "" {
		return "0.0.0.0"
	}
	return host
}

// Stats are the stack's TCP counters and the steering program's.
type Stats struct {
	SegmentsSent     uint64 // TCP segments sent, retransmissions included
	SegmentsReceived uint64 // valid TCP segments received
	Retransmits      uint64 // TCP segments retransmitted
	Timeouts         uint64 // retransmission timer expiries
	Resets           uint64 // RSTs sent
	// Redirected is frames the steering program sent to the socket.
	Redirected uint64
}

// Stats reads the counters.
func (st *Stack) Stats() (Stats, error) {
	t := st.s.Stats().TCP
	ps, err := st.prog.Stats()
	return Stats{
		SegmentsSent:     t.SegmentsSent.Value(),
		SegmentsReceived: t.ValidSegmentsReceived.Value(),
		Retransmits:      t.Retransmits.Value(),
		Timeouts:         t.Timeouts.Value(),
		Resets:           t.ResetsSent.Value(),
		Redirected:       ps.Redirected,
	}, err
}

// ErrStalled is what a StallConn's Read or Write returns, wrapped, when it
// made no progress for the conn's allowance.
var ErrStalled = errors.New("gvisorpeer: transfer stalled")

// StallConn is a net.Conn whose every Read and Write must make progress
// within D: each call sets a deadline D from now, and a call that times
// out fails with ErrStalled. Write large transfers in chunks, so that D
// bounds each chunk rather than the whole.
type StallConn struct {
	net.Conn
	D time.Duration
}

// Read reads under the stall deadline.
func (c StallConn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.D)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	return n, c.stalled("read", err)
}

// Write writes under the stall deadline.
func (c StallConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.D)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(b)
	return n, c.stalled("write", err)
}

func (c StallConn) stalled(op string, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) || isTimeout(err) {
		return fmt.Errorf("%w: %s made no progress for %v (%v)", ErrStalled, op, c.D, err)
	}
	return err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
