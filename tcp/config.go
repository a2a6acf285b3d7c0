package tcp

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"

	"github.com/xdpnet/xdpnet/internal/neterr"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// Config configures a Table. The zero value of each field selects its
// default.
type Config struct {
	// Addrs are the local IPv4 addresses connections may use.
	Addrs []netip.Addr
	// MTU is the link MTU; the MSS we announce is MTU − 40. Default 1500.
	MTU int
	// SendBuffer and RecvBuffer are each connection's initial buffer
	// sizes in bytes, rounded up to a power of two. The receive buffer
	// bounds the advertised window and the out-of-order data together.
	// Default 128 KiB each (Linux's tcp_rmem[1]).
	SendBuffer, RecvBuffer int
	// RecvBufferMax and SendBufferMax bound what auto-tuning grows the
	// buffers to (autotune.go): the receive buffer to twice what the app
	// read in the last round trip, as Linux's tcp_rcv_space_adjust, the
	// send buffer to twice the congestion window, as tcp_sndbuf_expand.
	// Equal to the initial size (rounded up) turns auto-tuning off for
	// that buffer. Conn.SetRecvBuffer and SetSendBuffer pin a size up to
	// these. The window scale of our SYNs covers RecvBufferMax.
	//
	// They default to Linux's tcp_rmem[2] and tcp_wmem[2], 6 MiB and
	// 4 MiB. The send buffer is all that bounds the flight of a sender
	// limited only by its congestion window, so a 4 MiB default needs a
	// slow start that ends before it overruns a short path's queue:
	// HyStart's ACK-train exit (cc.go) does, where RFC 9406's delay rule
	// alone saw the rise a round late (the fastpath TestSim golden
	// figures: on 100 Mbit/s × 10 ms with a one-BDP queue, 1 tail drop
	// in 2 s of a clean run against 336 without the train). At 1 Gbit/s
	// × 50 ms it lifts goodput from 20 to 611 Mbit/s against 128 KiB.
	RecvBufferMax, SendBufferMax int
	// MemoryLimit bounds the buffer memory of a table (of a stack, in
	// sockapi): past it buffers stop growing (Stats.MemoryPressures),
	// though a new connection still gets its initial buffers and nothing
	// held is taken back. Default DefaultMemoryLimit, 256 MiB.
	MemoryLimit int64
	// Memory, if set, is the account the table's buffers draw from
	// instead of one of its own: tables given the same one share its
	// limit (sockapi gives one to all the pollers of a stack).
	Memory *Memory
	// MSL is the maximum segment lifetime; TIME-WAIT lasts 2×MSL.
	// Default 30 s, so TIME-WAIT lasts Linux's 60 s.
	MSL time.Duration
	// MinRTO, InitialRTO and MaxRTO bound the retransmission timeout
	// (RFC 6298). Defaults: 200 ms as Linux, 1 s, 120 s.
	MinRTO, InitialRTO, MaxRTO time.Duration
	// SynRetries is how often a SYN is retransmitted before a connect
	// fails with ETIMEDOUT (Linux's tcp_syn_retries, default 6: 127 s
	// with a 1 s initial RTO). Retries is the same for data and FIN
	// (tcp_retries2, default 15). A negative value means none.
	SynRetries, Retries int
	// ConnectTimeout, if positive, fails a connect that has not completed
	// after this long, whatever the retries left.
	ConnectTimeout time.Duration
	// SynBacklog bounds each listener's SYN queue (half-open
	// connections); default 256. The accept queue is bounded by Listen's
	// backlog argument. A SYN that finds the SYN queue full is answered
	// with a SYN cookie, or with NoSyncookies takes the place of the
	// oldest half-open connection.
	SynBacklog int
	// NoSyncookies, if true, turns SYN cookies (RFC 4987 3.6) off. By
	// default they are on, as Linux's tcp_syncookies=1: used only while a
	// listener's SYN queue is full.
	NoSyncookies bool
	// SynAckRetries is how often a passive open's SYN,ACK is
	// retransmitted before the half-open connection is dropped (Linux's
	// tcp_synack_retries, default 5: 63 s with a 1 s initial RTO). A
	// negative value means none.
	SynAckRetries int
	// EphemeralLo and EphemeralHi bound, inclusively, the local ports Dial
	// picks. Default Linux's ip_local_port_range, 32768–60999.
	EphemeralLo, EphemeralHi uint16
	// Secret keys initial sequence numbers and ephemeral port choice; zero
	// draws one at random (simulations pass one to be reproducible).
	Secret [16]byte
	// PathMTU, if set, returns the path MTU to a destination (the ip
	// layer's, learnt from ICMP); a new connection's MSS fits it.
	PathMTU func(netip.Addr) int
	// PortFilter, if set, tells whether Dial may use a local port: a
	// poller of a multi-queue device accepts only the ports whose return
	// traffic the NIC steers to its own queue.
	PortFilter func(local, remote netip.AddrPort) bool
	// Nagle, if true, turns Nagle's algorithm on for new connections
	// (RFC 9293 3.7.4). Off by default, as Go's net sets TCP_NODELAY.
	Nagle bool
	// NoTimestamps, if true, stops offering the timestamps option (RFC
	// 7323) in our SYNs and accepting it in the peer's. By default it is
	// offered, as Linux's tcp_timestamps=1: it gives an RTT sample per
	// ACK, PAWS, and lets a Linux client reuse its TIME-WAIT ports towards
	// us (tcp_tw_reuse works only on connections that had timestamps).
	NoTimestamps bool
	// NoSACK, if true, stops offering selective acknowledgments (RFC
	// 2018) in our SYNs and accepting them in the peer's. By default they
	// are offered, as Linux's tcp_sack=1, and a connection whose peer
	// offers them too recovers from loss by SACK (RFC 6675 with RACK and
	// PRR, rack.go); without, by NewReno (RFC 6582). Through 1 % random
	// loss against the kernel on CUBIC, one stream moved 1.26x the
	// kernel's rate with SACK and 0.87x without (BenchmarkLossyBulk).
	NoSACK bool
	// NoTLP, if true, turns the tail loss probe (RFC 8985 7) off: a lost
	// last segment then waits for the RTO. It is on by default, with or
	// without SACK (tlp.go says why), as Linux's tcp_early_retrans=3
	// (Linux's needs SACK).
	NoTLP bool
	// InvalidRateLimit is the least time between two ACKs a connection
	// sends in answer to unacceptable segments, challenge ACKs included
	// (RFC 5961 7): Linux's tcp_invalid_ratelimit, default 500 ms. A
	// negative value sends them all.
	InvalidRateLimit time.Duration
	// ChallengeACKLimit is the mean number of challenge ACKs (RFC 5961)
	// the table sends per second, over all its connections, drawn afresh
	// each second between half of it and one and a half times it, as
	// Linux's tcp_challenge_ack_limit. Default 1000, Linux's from 4.7 to
	// 5.19 (since 6.0 Linux sets no bound and relies on the limit per
	// connection); negative: no bound.
	ChallengeACKLimit int
	// CongestionControl names the congestion control of new
	// connections: CongestionCubic (RFC 9438, the default, as Linux's)
	// or CongestionReno (RFC 5681 with NewReno recovery, RFC 6582).
	// Conn.SetCongestionControl changes one connection's.
	CongestionControl string
	// Pacing, if true, paces new connections' sending (pacing.go): data
	// leaves at 200 % of cwnd/SRTT in slow start and 120 % after, in
	// bursts of about a millisecond of data, as Linux's internal pacing.
	// Conn.SetPacing changes one connection's. Off by default: in the
	// fastpath simulations it cuts by two thirds the drops of two flows
	// sharing a queue, but makes a 4 MiB slow start overshoot more
	// (SendBufferMax).
	Pacing bool
	// Trace, if set, hears of every connection's state changes, of
	// retransmissions by cause, of RTO and TLP firings and of segments
	// dropped by reason (Event). It is called synchronously, on the
	// table's goroutine, in the middle of Input, Output or a timer: it
	// must return quickly, must not block, and must not call into the
	// table. Unset, it costs a nil check at each of those places.
	Trace func(Event)
}

// Header lengths that bound a segment.
const (
	// headersLen is what the MSS leaves out of the MTU: the IPv4 and TCP
	// headers without options (RFC 9293 3.7.1).
	headersLen = wire.IPv4MinLen + wire.TCPMinLen
	minMTU     = 68 // RFC 791
	maxMTU     = 65535
	// defaultMSS is what we assume of a peer that sends no MSS option
	// (RFC 9293 3.7.1).
	defaultMSS = 536
	// minMSS floors the MSS a path MTU may set: RFC 1191's smallest
	// plateau, 68, less the headers.
	minMSS = minMTU - headersLen
)

func (c Config) withDefaults() (Config, error) {
	c.MTU = orDefault(c.MTU, 1500)
	c.SendBuffer = orDefault(c.SendBuffer, 128<<10)
	c.RecvBuffer = orDefault(c.RecvBuffer, 128<<10)
	c.SendBufferMax = orDefault(c.SendBufferMax, max(4<<20, roundPow2(c.SendBuffer)))
	c.RecvBufferMax = orDefault(c.RecvBufferMax, max(6<<20, roundPow2(c.RecvBuffer)))
	if c.MemoryLimit == 0 {
		c.MemoryLimit = DefaultMemoryLimit
	}
	c.MSL = orDefault(c.MSL, 30*time.Second)
	c.SynRetries = orDefault(c.SynRetries, 6)
	c.Retries = orDefault(c.Retries, 15)
	c.SynBacklog = orDefault(c.SynBacklog, 256)
	c.InvalidRateLimit = orDefault(c.InvalidRateLimit, 500*time.Millisecond)
	c.ChallengeACKLimit = orDefault(c.ChallengeACKLimit, 1000)
	c.SynAckRetries = orDefault(c.SynAckRetries, 5)
	if c.CongestionControl == "" {
		c.CongestionControl = CongestionCubic
	}
	if c.EphemeralLo == 0 && c.EphemeralHi == 0 {
		c.EphemeralLo, c.EphemeralHi = 32768, 60999
	}
	for _, a := range c.Addrs {
		if !a.Is4() || a.IsUnspecified() {
			return c, fmt.Errorf("tcp: config: %v is not a unicast IPv4 address", a)
		}
	}
	switch {
	case c.MTU < minMTU || c.MTU > maxMTU:
		return c, fmt.Errorf("tcp: config: MTU %d outside %d–%d", c.MTU, minMTU, maxMTU)
	case c.SendBuffer < 1 || c.RecvBuffer < 1 || c.SendBuffer > 1<<30 || c.RecvBuffer > 1<<30:
		return c, fmt.Errorf("tcp: config: buffers %d/%d: must be 1 B–1 GiB", c.SendBuffer, c.RecvBuffer)
	case c.SendBufferMax < roundPow2(c.SendBuffer) || c.RecvBufferMax < roundPow2(c.RecvBuffer) ||
		c.SendBufferMax > 1<<30 || c.RecvBufferMax > 1<<30:
		return c, fmt.Errorf("tcp: config: buffer maxima %d/%d: must be the initial sizes (rounded up) to 1 GiB",
			c.SendBufferMax, c.RecvBufferMax)
	case c.EphemeralLo == 0 || c.EphemeralLo > c.EphemeralHi:
		return c, fmt.Errorf("tcp: config: ephemeral range %d–%d", c.EphemeralLo, c.EphemeralHi)
	case c.MSL < 0 || c.MinRTO < 0 || c.InitialRTO < 0 || c.MaxRTO < 0 || c.ConnectTimeout < 0:
		return c, errors.New("tcp: config: negative duration")
	case c.SynBacklog < 0:
		return c, errors.New("tcp: config: negative SYN backlog")
	}
	if err := CheckCongestionControl(c.CongestionControl); err != nil {
		return c, fmt.Errorf("tcp: config: %w", err)
	}
	c.SynRetries = max(c.SynRetries, 0)
	c.SynAckRetries = max(c.SynAckRetries, 0)
	c.Retries = max(c.Retries, 0)
	return c, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Errors callers branch on. Each wraps the errno the Linux socket call
// would return, so errors.Is(err, syscall.ECONNRESET) and the like work.
// They are allocated once: the data path returns them without
// allocating. Those udp has too are internal/neterr's, one value each.
var (
	// ErrWouldBlock: nothing to read, no room to write, or no connection
	// to accept yet.
	ErrWouldBlock = neterr.ErrWouldBlock
	// ErrRefused: the peer answered the SYN with a RST.
	ErrRefused = neterr.ErrRefused
	// ErrReset: the peer reset an established connection.
	ErrReset = fmt.Errorf("tcp: connection reset by peer: %w", syscall.ECONNRESET)
	// ErrTimeout: retransmissions (or the connect timeout) ran out.
	ErrTimeout = fmt.Errorf("tcp: connection timed out: %w", syscall.ETIMEDOUT)
	// ErrHostUnreachable: an ICMP host unreachable (or time exceeded)
	// came for the connection's segment, or its next hop did not answer
	// ARP.
	ErrHostUnreachable = neterr.ErrHostUnreachable
	// ErrNetUnreachable: an ICMP net unreachable came for the
	// connection's segment.
	ErrNetUnreachable = neterr.ErrNetUnreachable
	// ErrProtoUnreachable: an ICMP protocol unreachable (ENOPROTOOPT, as
	// Linux maps it).
	ErrProtoUnreachable = fmt.Errorf("tcp: protocol unreachable: %w", syscall.ENOPROTOOPT)
	// ErrHostDown: an ICMP destination host unknown.
	ErrHostDown = fmt.Errorf("tcp: host is down: %w", syscall.EHOSTDOWN)
	// ErrHostIsolated: an ICMP source host isolated.
	ErrHostIsolated = fmt.Errorf("tcp: machine is not on the network: %w", syscall.ENONET)
	// ErrSourceRoute: an ICMP source route failed.
	ErrSourceRoute = fmt.Errorf("tcp: source route failed: %w", syscall.EOPNOTSUPP)
	// ErrAborted: the local side aborted the connection (Abort, or Close
	// with unread data).
	ErrAborted = fmt.Errorf("tcp: connection aborted: %w", syscall.ECONNABORTED)
	// ErrClosedWrite: a write after CloseWrite or Close.
	ErrClosedWrite = fmt.Errorf("tcp: write after shutdown: %w", syscall.EPIPE)
	// ErrNotConnected: the connection is not established yet.
	ErrNotConnected = fmt.Errorf("tcp: not connected: %w", syscall.ENOTCONN)
	// ErrPortInUse: the local address and port are taken.
	ErrPortInUse = neterr.ErrPortInUse
	// ErrNoPorts: every ephemeral port is in use towards that peer. It
	// wraps EADDRNOTAVAIL, as Linux's connect does.
	ErrNoPorts = fmt.Errorf("tcp: no free ephemeral port: %w", syscall.EADDRNOTAVAIL)
	// ErrAddrNotAvailable: a local address that is not one of Config.Addrs.
	ErrAddrNotAvailable = neterr.ErrAddrNotAvailable
	// ErrInvalidAddr: a remote address that is not unicast IPv4 with a
	// port.
	ErrInvalidAddr = neterr.ErrInvalidAddr
	// ErrListenerClosed: Accept on a closed listener.
	ErrListenerClosed = fmt.Errorf("tcp: listener closed: %w", syscall.EINVAL)
)
