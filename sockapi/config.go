package sockapi

import (
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/sockapi/inline"
	"github.com/xdpnet/xdpnet/tcp"
	"github.com/xdpnet/xdpnet/udp"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// Config describes a stack. Addr is required; the rest have defaults:
// the zero value of each field selects Linux's behaviour, or Go's net
// package's where the two differ.
type Config struct {
	// Interface is the network interface Open takes queues of.
	Interface string
	// Addr is the stack's address and subnet, e.g. 198.18.0.2/24.
	Addr netip.Prefix
	// Secondary are more addresses of the stack, each in Addr's subnet
	// (Linux's secondary addresses): the stack answers ARP and ICMP for
	// each, listeners on the unspecified address accept on each, and a
	// Dialer's LocalAddr may name one, so that a load generator's
	// connections to one server are not capped by one address's
	// ephemeral ports. At most 255; optional.
	Secondary []netip.Addr
	// Gateway is the default router, inside Addr's subnet; optional.
	Gateway netip.Addr
	// ARPRetries and ARPInterval shape a neighbour's resolution: one ARP
	// request, ARPRetries more ARPInterval apart, and failure one more
	// interval after the last (a dial waiting on it then fails with
	// EHOSTUNREACH). Defaults 2 and 1 s, Linux's mcast_solicit of 3 and
	// retrans_time: failure after 3 s. ARPRetries is at most 16.
	ARPRetries  int
	ARPInterval time.Duration
	// Queues is the number of NIC queues, one AF_XDP socket and one
	// poller each; default 1.
	Queues int
	// XDPMode chooses how the steering program hooks into the
	// interface (default XDPAuto: native, else generic); Replace takes
	// over an XDP program attached by netlink.
	XDPMode XDPMode
	Replace bool

	// SendBuffer and RecvBuffer are each TCP connection's initial buffer
	// sizes in bytes (default 128 KiB, Linux's tcp_wmem[1] and
	// tcp_rmem[1]). The buffers auto-tune up to SendBufferMax and
	// RecvBufferMax (defaults 4 MiB and 6 MiB, tcp_wmem[2] and
	// tcp_rmem[2]), which also bound Conn.SetWriteBuffer and
	// SetReadBuffer, as net.core.wmem_max and rmem_max bound SO_SNDBUF
	// and SO_RCVBUF.
	SendBuffer, RecvBuffer       int
	SendBufferMax, RecvBufferMax int
	// MemoryLimit bounds the TCP buffer memory of the whole stack, all
	// pollers together: past it buffers stop growing (default 256 MiB).
	MemoryLimit int64
	// CongestionControl is new TCP connections' congestion control:
	// Cubic (the default, as Linux's) or Reno.
	// Conn.SetCongestionControl changes one connection's.
	CongestionControl CongestionControl
	// NoTimestamps and NoSACK stop offering and accepting the TCP
	// timestamps (RFC 7323) and selective acknowledgment (RFC 2018)
	// options: Linux's tcp_timestamps=0 and tcp_sack=0. Both are on by
	// default.
	NoTimestamps, NoSACK bool
	// Pacing paces new TCP connections' sending rate (off by default:
	// measured in the README's TCP section; Conn.SetPacing per
	// connection).
	Pacing bool
	// MSL is the maximum segment lifetime; TIME-WAIT lasts 2×MSL.
	// Default 30 s, so TIME-WAIT lasts Linux's 60 s.
	MSL time.Duration
	// KeepAlive is the stack's default keepalive for new TCP
	// connections, dialled or accepted, whose Dialer or ListenConfig
	// leaves KeepAlive zero and KeepAliveConfig off (Stack.Dial,
	// DialContext and Listen among them): zero is Go's net default, on
	// with 15 s of idle time, probes 15 s apart and 9 of them; positive,
	// on with this idle time and probe interval (Conn.SetKeepAlivePeriod);
	// negative, off, as Linux's own sockets start. A Dialer's or
	// ListenConfig's KeepAlive or KeepAliveConfig wins over it.
	KeepAlive time.Duration
	// UDPReadBuffer and UDPWriteBuffer bound each UDP socket's receive
	// and send queues in payload bytes (default 212992, Linux's
	// net.core.rmem_default and wmem_default).
	UDPReadBuffer, UDPWriteBuffer int

	// ListenBacklog bounds the accept queue of every Listen: Linux's
	// net.core.somaxconn, which Go's net.Listen passes to listen(2).
	// Default 4096.
	ListenBacklog int
	// Spin is how long a poller keeps polling after its last work before
	// it parks (default 200 µs); SpinOnly never parks, for dedicated
	// cores.
	Spin     time.Duration
	SpinOnly bool
	// Nameserver, if set, is where the stack's resolver sends DNS queries
	// (over the stack's UDP); otherwise the servers of /etc/resolv.conf.
	Nameserver netip.AddrPort
	// OnPoller, if set, runs for each poller before it starts, on the
	// goroutine of Open or New: to bind inline handlers, services that
	// run on the poller itself, as `xdpnet serve` does (package inline).
	OnPoller func(p inline.Poller) error
	// Trace, if set, hears of TCP's events (TraceEvent): connections'
	// state changes, retransmissions by cause, RTO and loss probe
	// firings, segments dropped by reason. It is called synchronously on
	// the poller's goroutine, in the middle of its round, from each
	// queue's poller: it must be safe for concurrent use and must not
	// block or call into the stack (a slow Trace stalls the queue). To
	// keep events for later, copy them into a buffer of your own and
	// count what does not fit. Unset, it costs the cores a nil check.
	Trace func(TraceEvent)

	// AdminSocket, if set, is the path of the stack's admin socket, a
	// Unix-domain socket that serves its sockets, counters and
	// neighbours to other processes (`xdpnet sockets`, package
	// sockapi/admin; the protocol is in admin.go): AdminSocketPath(iface)
	// is the default place, where sockapi/admin's Find looks. The
	// socket is made 0600 (the stack's user, and root, may connect) in a
	// directory made 0700 if missing, a stale one left by a process that
	// died is replaced, and Close removes it. Empty: no admin socket.
	AdminSocket string

	// adminIdle, if set, replaces the admin endpoint's idle timeout, for
	// its tests (export_test.go).
	adminIdle time.Duration

	// tcpHook, if set, edits the translated tcp.Config: tests reach the
	// knobs no caller needs (export_test.go).
	tcpHook func(*tcp.Config)
}

// The poller is all an inline handler needs.
var _ inline.Poller = (*fastpath.Poller)(nil)

// XDPMode is how the stack's steering program hooks into its interface.
type XDPMode int

// The XDP attach modes.
const (
	XDPAuto    XDPMode = iota // native if the driver accepts it, else generic
	XDPNative                 // the driver's own hook, before any skb exists
	XDPGeneric                // the kernel's generic hook (SKB mode), any driver
)

// String is the mode's name, as ParseXDPMode takes it.
func (m XDPMode) String() string { return m.steer().String() }

// MarshalText gives the mode's name, as String.
func (m XDPMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads a name ParseXDPMode takes.
func (m *XDPMode) UnmarshalText(b []byte) error {
	v, err := ParseXDPMode(string(b))
	*m = v
	return err
}

// ParseXDPMode parses "auto", "native" (or "drv") and "generic" (or
// "skb"), as ip-link(8) names the modes.
func ParseXDPMode(s string) (XDPMode, error) {
	m, err := steer.ParseMode(s)
	return xdpMode(m), err
}

// steer is m in the steering program's terms.
func (m XDPMode) steer() steer.Mode {
	switch m {
	case XDPNative:
		return steer.Native
	case XDPGeneric:
		return steer.Generic
	}
	return steer.Auto
}

// xdpMode is the inverse of XDPMode.steer.
func xdpMode(m steer.Mode) XDPMode {
	switch m {
	case steer.Native:
		return XDPNative
	case steer.Generic:
		return XDPGeneric
	}
	return XDPAuto
}

// CongestionControl names a TCP congestion control algorithm, as Linux's
// TCP_CONGESTION socket option does; Conn.SetCongestionControl takes
// these names.
type CongestionControl string

// The congestion controls xdpnet has. The zero value means Cubic.
// The names are tcp's (TestConfigProtocols checks), passed through.
const (
	Cubic CongestionControl = "cubic" // RFC 9438, the default
	Reno  CongestionControl = "reno"  // RFC 5681 with NewReno recovery (RFC 6582)
)

// protocols translates cfg into the protocol cores' configurations, one
// for all the stack's pollers: they share one TCP buffer memory account,
// so that buffers grow within one limit whichever queue a flow lands on.
func (cfg *Config) protocols() (tcp.Config, udp.Config) {
	t := tcp.Config{
		SendBuffer: cfg.SendBuffer, RecvBuffer: cfg.RecvBuffer,
		SendBufferMax: cfg.SendBufferMax, RecvBufferMax: cfg.RecvBufferMax,
		MemoryLimit:       cfg.MemoryLimit,
		CongestionControl: string(cfg.CongestionControl),
		NoTimestamps:      cfg.NoTimestamps, NoSACK: cfg.NoSACK,
		Pacing: cfg.Pacing, MSL: cfg.MSL,
	}
	if trace := cfg.Trace; trace != nil {
		t.Trace = func(e tcp.Event) { trace(traceEvent(e)) }
	}
	if cfg.tcpHook != nil {
		cfg.tcpHook(&t)
	}
	if t.Memory == nil {
		limit := t.MemoryLimit
		if limit == 0 {
			limit = tcp.DefaultMemoryLimit
		}
		t.Memory = tcp.NewMemory(limit)
	}
	u := udp.Config{RecvQueueBytes: cfg.UDPReadBuffer, SendQueueBytes: cfg.UDPWriteBuffer}
	return t, u
}
