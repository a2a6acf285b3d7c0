package sockapi

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
)

var background = context.Background()

// defaultBacklog is the accept queue of Listen, per poller: Linux's
// SOMAXCONN.
const defaultBacklog = 4096

// listenBacklog is the accept queue of Listen: Config.ListenBacklog.
func (s *Stack) listenBacklog() int {
	if s.cfg.ListenBacklog > 0 {
		return s.cfg.ListenBacklog
	}
	return defaultBacklog
}

// Dial connects to address on network ("tcp", "tcp4", "udp" or "udp4"),
// as net.Dial does; see DialContext.
func (s *Stack) Dial(network, address string) (net.Conn, error) {
	return s.DialContext(background, network, address)
}

// DialContext connects to address on network as a zero Dialer does
// (Dialer{Stack: s}), as net.Dialer.DialContext does: host names are
// resolved through the stack's own resolver (see Resolver); ctx bounds
// the resolution and the handshake; a TCP connection has keepalive on at
// the stack's default (Config.KeepAlive). A TCP connection is a *Conn; a
// UDP one a *PacketConn connected to address.
func (s *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return (&Dialer{Stack: s}).DialContext(ctx, network, address)
}

// Listen listens on address ("host:port"; an empty host or 0.0.0.0
// means every local address, the stack's and 127.0.0.1 (the loopback
// path's), port 0 picks a free port) for network "tcp"
// or "tcp4", as net.Listen does: as a zero ListenConfig does, so the
// connections it accepts have keepalive on at the stack's default.
func (s *Stack) Listen(network, address string) (net.Listener, error) {
	return (&ListenConfig{Stack: s}).Listen(background, network, address)
}

// ListenPacket opens a UDP endpoint on address for network "udp" or
// "udp4", as net.ListenPacket does, or an ICMP echo socket (*ICMPConn)
// for "ip4:icmp".
func (s *Stack) ListenPacket(network, address string) (net.PacketConn, error) {
	return (&ListenConfig{Stack: s}).ListenPacket(background, network, address)
}

// localAddr parses a local address for proto's networks.
func (s *Stack) localAddr(network, address, proto string) (netip.AddrPort, error) {
	if network != proto && network != proto+"4" {
		return netip.AddrPort{}, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return netip.AddrPort{}, &net.OpError{Op: "listen", Net: network, Err: &net.AddrError{Err: "invalid port", Addr: address}}
	}
	a := netip.IPv4Unspecified()
	if host != "" {
		if a, err = netip.ParseAddr(host); err != nil || !a.Unmap().Is4() {
			return netip.AddrPort{}, &net.OpError{Op: "listen", Net: network, Err: &net.AddrError{Err: "not an IPv4 address of the stack", Addr: address}}
		}
		a = a.Unmap()
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// resolve turns "host:port" into an address, resolving the host through
// the stack's resolver if it is a name.
func (s *Stack) resolve(ctx context.Context, address string) (netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	port, err := s.Resolver().LookupPort(ctx, "tcp", portStr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a = a.Unmap(); !a.Is4() {
			return netip.AddrPort{}, &net.AddrError{Err: "xdpnet speaks IPv4 only", Addr: address}
		}
		return netip.AddrPortFrom(a, uint16(port)), nil
	}
	addrs, err := s.Resolver().LookupNetIP(ctx, "ip4", host)
	if err != nil {
		// Go's resolver names the server of /etc/resolv.conf it meant to
		// ask; the Dial below sent the query to Config.Nameserver instead.
		var de *net.DNSError
		if s.cfg.Nameserver.IsValid() && errors.As(err, &de) {
			de.Server = s.cfg.Nameserver.String()
		}
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(addrs[0].Unmap(), uint16(port)), nil
}

// Resolver is a Go resolver whose queries travel over the stack's UDP
// (to Config.Nameserver, else to the servers of /etc/resolv.conf). With
// Nameserver set, the *net.DNSError of a lookup made through it names the
// server of /etc/resolv.conf (Go's resolver does not know of the
// redirection); Dial and Listen correct it to Nameserver.
func (s *Stack) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			if s.cfg.Nameserver.IsValid() {
				address = s.cfg.Nameserver.String()
			}
			// The resolver asks for "udp" first and "tcp" for truncated
			// answers; both work on the stack.
			return s.DialContext(ctx, network, address)
		},
	}
}

func (s *Stack) ephemeralRange() (uint16, uint16) {
	lo, hi := s.tcp.EphemeralLo, s.tcp.EphemeralHi
	if lo == 0 && hi == 0 {
		return 32768, 60999
	}
	return lo, hi
}

// addrOf is address as a net.Addr for error messages.
func addrOf(network, address string) net.Addr {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil
	}
	if len(network) >= 3 && network[:3] == "udp" {
		return net.UDPAddrFromAddrPort(ap)
	}
	return net.TCPAddrFromAddrPort(ap)
}

// mapContextErr turns a context's error into what net returns for it: a
// timeout error for a deadline (net.Error with Timeout true).
func mapContextErr(err error) error {
	switch err {
	case context.DeadlineExceeded:
		return errTimeout{}
	case context.Canceled:
		return errCanceled{}
	}
	return err
}

// errTimeout is a dial's deadline passed: os.ErrDeadlineExceeded, as a
// connect(2) whose deadline passes gives in Go's net, and
// context.DeadlineExceeded too, as Go's own errTimeout is.
type errTimeout struct{}

func (errTimeout) Error() string   { return "i/o timeout" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }
func (errTimeout) Is(err error) bool {
	return err == context.DeadlineExceeded || err == os.ErrDeadlineExceeded
}

type errCanceled struct{}

func (errCanceled) Error() string     { return "operation was canceled" }
func (errCanceled) Is(err error) bool { return err == context.Canceled }
