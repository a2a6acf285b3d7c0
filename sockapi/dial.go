package sockapi

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/xdpnet/xdpnet/tcp"
)

// Go's net keepalive defaults (net/dial.go's defaultTCPKeepAliveIdle,
// Interval and Count, Go 1.23 on), which a connection dialled or
// accepted with a zero KeepAlive gets.
const (
	defaultKeepAliveIdle     = 15 * time.Second
	defaultKeepAliveInterval = 15 * time.Second
	defaultKeepAliveCount    = 9
)

// Dialer contains options for connecting to an address through a stack,
// as net.Dialer does through the kernel. The zero value of each field but
// Stack means dialling without that option: Dialer{Stack: s} dials as
// s.DialContext does. Its methods are safe for concurrent use.
type Dialer struct {
	// Stack is the stack to dial through; required.
	Stack *Stack
	// Timeout is the most a dial takes, the name's resolution included;
	// Deadline is the time after which it fails. With both, and with a
	// context's deadline, the earliest applies. A dial they end fails with
	// os.ErrDeadlineExceeded inside the *net.OpError (errors.Is also
	// matches context.DeadlineExceeded, as Go's net error does).
	Timeout  time.Duration
	Deadline time.Time
	// LocalAddr is the address to dial from: a *net.TCPAddr for TCP, a
	// *net.UDPAddr for UDP. Its IP is one of the stack's addresses
	// (Config.Addr, Config.Secondary) or 127.0.0.1
	// (which reaches only the stack itself), or nil or unspecified for
	// the one the destination picks (127.0.0.1 for 127/8); its port a given one (EADDRINUSE if that
	// connection exists already), or 0 for an ephemeral one. nil chooses
	// both.
	LocalAddr net.Addr
	// KeepAlive and KeepAliveConfig set a TCP connection's keepalive as
	// net.Dialer's do: KeepAliveConfig if its Enable is true (see
	// Conn.SetKeepAliveConfig); otherwise a positive KeepAlive is the
	// idle time before the first probe (probes 15 s apart, 9 of them);
	// zero gives the stack's default, Config.KeepAlive, which is Go's
	// (15 s, 15 s, 9) unless set; a negative one leaves keepalive off, or
	// as Control set it. The Dialer's fields win over Config.KeepAlive.
	KeepAlive       time.Duration
	KeepAliveConfig net.KeepAliveConfig
	// Control, if set, is called before the dial with the network
	// ("tcp4" or "udp4", as Go's Control gets), the remote address, and
	// the options of the socket about to connect: what net.Dialer's
	// Control does with setsockopt(2) on the file descriptor. The options
	// apply before the first segment goes out (a receive buffer set here
	// sizes the SYN's window scale); Control's error fails the dial.
	// KeepAlive and KeepAliveConfig apply after it, as Go's net applies
	// them after Control.
	Control func(network, address string, opts *SocketOptions) error
}

// Dial connects to address on network, as DialContext does with no
// context.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(background, network, address)
}

// DialContext connects to address on network ("tcp", "tcp4", "udp" or
// "udp4"), as net.Dialer.DialContext does: host names are resolved
// through the stack's own resolver (see Stack.Resolver); ctx, Timeout and
// Deadline bound the resolution and the handshake. A TCP connection is a
// *Conn; a UDP one a *PacketConn connected to address. Errors are
// *net.OpError wrapping syscall errors (ECONNREFUSED, ETIMEDOUT,
// EADDRINUSE …), os.ErrDeadlineExceeded, context.Canceled, or
// net.ErrClosed.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	opErr := func(source, addr net.Addr, err error) error {
		return &net.OpError{Op: "dial", Net: network, Source: source, Addr: addr, Err: mapContextErr(err)}
	}
	s := d.Stack
	switch {
	case s == nil:
		return nil, opErr(nil, addrOf(network, address), errors.New("sockapi: Dialer without a Stack"))
	case network != "tcp" && network != "tcp4" && network != "udp" && network != "udp4":
		return nil, opErr(nil, addrOf(network, address), net.UnknownNetworkError(network))
	}
	udp := network[:3] == "udp"
	if dl := d.deadline(ctx, time.Now()); !dl.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	local, err := d.localAddr(udp)
	if err != nil {
		return nil, opErr(nil, addrOf(network, address), err)
	}
	source := d.LocalAddr
	raddr, err := s.resolve(ctx, address)
	if err != nil {
		return nil, opErr(source, addrOf(network, address), err)
	}
	opts := &SocketOptions{udp: udp}
	if d.Control != nil {
		if err := d.Control(network[:3]+"4", raddr.String(), opts); err != nil {
			return nil, opErr(source, addrOf(network, raddr.String()), err)
		}
	}
	if udp {
		c, err := s.listenUDP(local, raddr)
		if err != nil {
			return nil, opErr(source, net.UDPAddrFromAddrPort(raddr), err)
		}
		opts.applyUDP(c)
		return c, nil
	}
	setup := &connSetup{opts: opts.tcp, keepAlive: s.keepAlive(d.KeepAlive, d.KeepAliveConfig)}
	c, err := s.dialTCP(ctx, local, raddr, setup)
	if err != nil {
		return nil, opErr(source, net.TCPAddrFromAddrPort(raddr), err)
	}
	return c, nil
}

// deadline is the earliest of now+Timeout, Deadline and ctx's deadline,
// or zero for none, as net.Dialer's.
func (d *Dialer) deadline(ctx context.Context, now time.Time) time.Time {
	var earliest time.Time
	if d.Timeout != 0 { // negative too, as Go's net: a dial already late
		earliest = now.Add(d.Timeout)
	}
	if dl, ok := ctx.Deadline(); ok && (earliest.IsZero() || dl.Before(earliest)) {
		earliest = dl
	}
	if !d.Deadline.IsZero() && (earliest.IsZero() || d.Deadline.Before(earliest)) {
		earliest = d.Deadline
	}
	return earliest
}

// localAddr is LocalAddr as the protocol tables take it: the unspecified
// address for the stack's, port 0 for an ephemeral one.
func (d *Dialer) localAddr(udp bool) (netip.AddrPort, error) {
	var ap netip.AddrPort
	switch la := d.LocalAddr.(type) {
	case nil:
		return netip.AddrPortFrom(netip.IPv4Unspecified(), 0), nil
	case *net.TCPAddr:
		if udp {
			return ap, &net.AddrError{Err: "mismatched local address type", Addr: la.String()}
		}
		ap = la.AddrPort()
	case *net.UDPAddr:
		if !udp {
			return ap, &net.AddrError{Err: "mismatched local address type", Addr: la.String()}
		}
		ap = la.AddrPort()
	default:
		return ap, &net.AddrError{Err: "mismatched local address type", Addr: la.String()}
	}
	a := ap.Addr().Unmap()
	switch {
	case !a.IsValid():
		a = netip.IPv4Unspecified()
	case !a.Is4():
		return ap, &net.AddrError{Err: "xdpnet speaks IPv4 only", Addr: d.LocalAddr.String()}
	}
	return netip.AddrPortFrom(a, ap.Port()), nil
}

// ListenConfig contains options for listening on a stack, as
// net.ListenConfig does on the kernel. ListenConfig{Stack: s} listens as
// s.Listen does.
type ListenConfig struct {
	// Stack is the stack to listen on; required.
	Stack *Stack
	// KeepAlive and KeepAliveConfig set the keepalive of the connections
	// the listener accepts, as Dialer's do for dialled ones (zero: the
	// stack's default, Go's 15 s unless Config.KeepAlive says otherwise).
	KeepAlive       time.Duration
	KeepAliveConfig net.KeepAliveConfig
	// Control, if set, is called before listening with the network
	// ("tcp4" or "udp4"), the local address as given, and the socket's
	// options, as net.ListenConfig's Control. A TCP listener's options
	// apply to each connection it accepts, as Linux's accepted sockets
	// inherit the listener's, before KeepAlive and KeepAliveConfig;
	// Control's error fails the listen.
	Control func(network, address string, opts *SocketOptions) error
}

// Listen listens on address ("host:port"; an empty host or 0.0.0.0
// means every local address, the stack's and 127.0.0.1 (the loopback
// path's), port 0 picks a free port) for network "tcp"
// or "tcp4", as net.ListenConfig.Listen does. Listening does not block:
// ctx is there for net.ListenConfig's signature and is not waited on.
func (lc *ListenConfig) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	s := lc.Stack
	addr, opts, err := lc.prepare(network, address, "tcp")
	if err != nil {
		return nil, err
	}
	setup := &connSetup{opts: opts.tcp, keepAlive: s.keepAlive(lc.KeepAlive, lc.KeepAliveConfig)}
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: network, Addr: net.TCPAddrFromAddrPort(addr), Err: syscallErr("bind", err)}
	}
	if addr.Port() != 0 {
		l, err := s.listenTCP(addr, s.listenBacklog(), setup)
		if err != nil {
			return nil, opErr(err)
		}
		return l, nil
	}
	// Port 0: a free port of the ephemeral range, free on every poller.
	lo, hi := s.ephemeralRange()
	for range 64 {
		port := lo + uint16(rand.IntN(int(hi-lo)+1))
		l, err := s.listenTCP(netip.AddrPortFrom(addr.Addr(), port), s.listenBacklog(), setup)
		if err == nil {
			return l, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, opErr(err)
		}
	}
	return nil, opErr(tcp.ErrPortInUse)
}

// ListenPacket opens a UDP endpoint on address for network "udp" or
// "udp4", as net.ListenConfig.ListenPacket does, or for "ip4:icmp" an
// ICMP echo socket (an *ICMPConn) on address, an IPv4 address without a
// port ("" and "0.0.0.0" for any).
func (lc *ListenConfig) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	if network == icmpNetwork && lc.Stack != nil {
		c, err := lc.listenICMP(network, address)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return c, nil
	}
	addr, opts, err := lc.prepare(network, address, "udp")
	if err != nil {
		return nil, err
	}
	c, err := lc.Stack.listenUDP(addr, netip.AddrPort{})
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: net.UDPAddrFromAddrPort(addr), Err: syscallErr("bind", err)}
	}
	opts.applyUDP(c)
	return c, nil
}

// prepare parses a listen's address for proto's networks and runs
// Control.
func (lc *ListenConfig) prepare(network, address, proto string) (netip.AddrPort, *SocketOptions, error) {
	if lc.Stack == nil {
		return netip.AddrPort{}, nil, &net.OpError{Op: "listen", Net: network, Err: errors.New("sockapi: ListenConfig without a Stack")}
	}
	addr, err := lc.Stack.localAddr(network, address, proto)
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	opts := &SocketOptions{udp: proto == "udp"}
	if lc.Control != nil {
		if err := lc.Control(proto+"4", address, opts); err != nil {
			return netip.AddrPort{}, nil, &net.OpError{Op: "listen", Net: network, Addr: addrOf(network, addr.String()), Err: err}
		}
	}
	return addr, opts, nil
}

// keepAlive is the keepalive of a new connection whose Dialer or
// ListenConfig has KeepAlive d and KeepAliveConfig kc, read as Go's net
// reads them: kc if enabled; else nothing for a negative d, idle d for a
// positive one, and for zero the stack's default, Config.KeepAlive (Go's
// when zero). A result not enabled leaves keepalive as it is.
func (s *Stack) keepAlive(d time.Duration, kc net.KeepAliveConfig) net.KeepAliveConfig {
	switch {
	case kc.Enable:
		return kc
	case d < 0:
		return net.KeepAliveConfig{}
	case d > 0:
		return net.KeepAliveConfig{Enable: true, Idle: d}
	}
	switch k := s.cfg.KeepAlive; {
	case k < 0:
		return net.KeepAliveConfig{}
	case k > 0:
		return net.KeepAliveConfig{Enable: true, Idle: k, Interval: k}
	}
	return net.KeepAliveConfig{Enable: true}
}

// connSetup is what a new TCP connection gets on its poller before the
// app sees it: a Control's options, then the keepalive.
type connSetup struct {
	opts      []func(*tcp.Conn)
	keepAlive net.KeepAliveConfig // applied if Enable
}

func (cs *connSetup) apply(tc *tcp.Conn) {
	for _, o := range cs.opts {
		o(tc)
	}
	if cs.keepAlive.Enable {
		setKeepAliveConfig(tc, cs.keepAlive)
	}
}

// setKeepAliveConfig sets tc's keepalive as Go's
// TCPConn.SetKeepAliveConfig does: a zero Idle, Interval or Count is Go's
// default (15 s, 15 s, 9), a negative one leaves the connection's as it
// is (Linux's defaults at first: 2 h, 75 s, 9).
func setKeepAliveConfig(tc *tcp.Conn, kc net.KeepAliveConfig) {
	tc.SetKeepAlivePeriod(orDefault(kc.Idle, defaultKeepAliveIdle), orDefault(kc.Interval, defaultKeepAliveInterval))
	tc.SetKeepAliveCount(orDefault(kc.Count, defaultKeepAliveCount))
	tc.SetKeepAlive(kc.Enable)
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// SocketOptions are the options of a socket about to be dialled or to
// listen, for the Control of a Dialer or ListenConfig: the stack's own
// socket options, where Go's Control sets the kernel's through the file
// descriptor. Each setter takes the values of Conn's (or PacketConn's)
// setter of the same name and fails with the same errno, bare (Control
// returns it, and the dial or listen wraps it); what they set applies in
// the order set, when the socket is made. On a UDP socket only
// the buffers apply; the TCP options fail with ENOPROTOOPT, as
// setsockopt(2) does on Linux.
type SocketOptions struct {
	udp               bool
	tcp               []func(*tcp.Conn)
	udpRead, udpWrite int // 0: not set
}

// tcpOption records o for a TCP socket.
func (o *SocketOptions) tcpOption(f func(*tcp.Conn)) error {
	if o.udp {
		return syscall.ENOPROTOOPT
	}
	o.tcp = append(o.tcp, f)
	return nil
}

// SetNoDelay is Conn.SetNoDelay: Nagle's algorithm off (true, the
// default) or on.
func (o *SocketOptions) SetNoDelay(noDelay bool) error {
	return o.tcpOption(func(tc *tcp.Conn) { tc.SetNagle(!noDelay) })
}

// SetReadBuffer is Conn.SetReadBuffer, or PacketConn.SetReadBuffer on a
// UDP socket.
func (o *SocketOptions) SetReadBuffer(bytes int) error {
	switch {
	case bytes <= 0:
		return syscall.EINVAL
	case o.udp:
		o.udpRead = bytes
		return nil
	}
	return o.tcpOption(func(tc *tcp.Conn) { tc.SetRecvBuffer(bytes) })
}

// SetWriteBuffer is Conn.SetWriteBuffer, or PacketConn.SetWriteBuffer on
// a UDP socket.
func (o *SocketOptions) SetWriteBuffer(bytes int) error {
	switch {
	case bytes <= 0:
		return syscall.EINVAL
	case o.udp:
		o.udpWrite = bytes
		return nil
	}
	return o.tcpOption(func(tc *tcp.Conn) { tc.SetSendBuffer(bytes) })
}

// SetCongestionControl is Conn.SetCongestionControl: Cubic or Reno
// (ENOENT for another name).
func (o *SocketOptions) SetCongestionControl(cc CongestionControl) error {
	if o.udp {
		return syscall.ENOPROTOOPT
	}
	if err := tcp.CheckCongestionControl(string(cc)); err != nil {
		return err
	}
	// The name is checked: setting it cannot fail.
	return o.tcpOption(func(tc *tcp.Conn) { _ = tc.SetCongestionControl(string(cc)) })
}

// SetKeepAlive is Conn.SetKeepAlive.
func (o *SocketOptions) SetKeepAlive(on bool) error {
	return o.tcpOption(func(tc *tcp.Conn) { tc.SetKeepAlive(on) })
}

// SetKeepAlivePeriod is Conn.SetKeepAlivePeriod: the idle time and the
// probe interval.
func (o *SocketOptions) SetKeepAlivePeriod(d time.Duration) error {
	if d <= 0 {
		return syscall.EINVAL
	}
	return o.tcpOption(func(tc *tcp.Conn) { tc.SetKeepAlivePeriod(d, d) })
}

// SetUserTimeout is Conn.SetUserTimeout.
func (o *SocketOptions) SetUserTimeout(d time.Duration) error {
	if d < 0 {
		return syscall.EINVAL
	}
	return o.tcpOption(func(tc *tcp.Conn) { tc.SetUserTimeout(d) })
}

// SetFinWait2Timeout is Conn.SetFinWait2Timeout.
func (o *SocketOptions) SetFinWait2Timeout(d time.Duration) error {
	if d < 0 {
		return syscall.EINVAL
	}
	return o.tcpOption(func(tc *tcp.Conn) { tc.SetFinWait2Timeout(d) })
}

// SetCork is Conn.SetCork.
func (o *SocketOptions) SetCork(on bool) error {
	return o.tcpOption(func(tc *tcp.Conn) { tc.SetCork(on) })
}

// SetPacing is Conn.SetPacing.
func (o *SocketOptions) SetPacing(on bool) error {
	return o.tcpOption(func(tc *tcp.Conn) { tc.SetPacing(on) })
}

// SetKeepAliveConfig is Conn.SetKeepAliveConfig.
func (o *SocketOptions) SetKeepAliveConfig(cfg net.KeepAliveConfig) error {
	return o.tcpOption(func(tc *tcp.Conn) { setKeepAliveConfig(tc, cfg) })
}

// applyUDP sets the UDP buffers the options set on c, a new socket.
func (o *SocketOptions) applyUDP(c *PacketConn) {
	if o.udpRead > 0 {
		c.SetReadBuffer(o.udpRead)
	}
	if o.udpWrite > 0 {
		c.SetWriteBuffer(o.udpWrite)
	}
}
