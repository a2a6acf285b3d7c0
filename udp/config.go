package udp

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/xdpnet/xdpnet/internal/neterr"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// Config configures a Table. The zero value of each field selects its
// default.
type Config struct {
	// Addrs are the local IPv4 addresses an endpoint may bind to; the
	// wildcard address 0.0.0.0 is always allowed.
	Addrs []netip.Addr

	// EphemeralLo and EphemeralHi bound, inclusively, the ports Bind picks
	// for port 0. Default: IANA's dynamic range, 49152–65535 (RFC 6335).
	EphemeralLo, EphemeralHi uint16

	// RecvQueueBytes and RecvQueueDatagrams bound each endpoint's receive
	// queue: payload bytes and datagrams. A datagram that would pass either
	// limit is dropped and counted in RcvbufErrors. Defaults: 212992 bytes
	// (Linux's net.core.rmem_default) and 256 datagrams.
	RecvQueueBytes, RecvQueueDatagrams int

	// SendQueueBytes and SendQueueDatagrams bound each endpoint's send
	// queue; a write that would pass either limit returns ErrWouldBlock.
	// SendQueueBytes must hold an unfragmented datagram, MTU − 28 bytes;
	// a datagram longer than SendQueueBytes is refused (ErrMessageTooLong),
	// since it could never be queued. Defaults: 212992 bytes and 256
	// datagrams.
	SendQueueBytes, SendQueueDatagrams int

	// MTU is the link MTU. Default: 1500.
	MTU int

	// DontFragment says the ip layer sets DF on UDP datagrams (its
	// Config.DontFragmentUDP, Linux's IP_PMTUDISC_DO): a datagram may then
	// carry at most MTU − 28 bytes (IPv4 and UDP headers). Without it a
	// datagram may carry up to 65,507 bytes, fragmented by the ip layer
	// when it exceeds the path MTU, as Linux's default (IP_PMTUDISC_WANT)
	// does.
	DontFragment bool

	// Ping makes the table one of ICMP echo sockets, as Linux's ping
	// sockets (SOCK_DGRAM, IPPROTO_ICMP): an endpoint's "port" is its echo
	// identifier, a datagram is a whole ICMP echo request the endpoint
	// sends with its identifier, and EchoReply, not Input, delivers the
	// echo replies to it (see EchoReply and Output).
	Ping bool

	// Seed seeds the ephemeral port choice, for reproducible simulations.
	// Zero means an unpredictable seed (RFC 6056 wants ports hard to guess).
	Seed uint64
}

// Header lengths that bound a datagram's payload.
const (
	maxIPv4Packet = 65535
	// maxUDPPayload fills the largest IPv4 datagram: 65,535 − 20 − 8.
	maxUDPPayload = maxIPv4Packet - wire.IPv4MinLen - wire.UDPHeaderLen
	minIPv4MTU    = 68 // RFC 791: every host must handle this MTU
)

const defaultQueueBytes, defaultQueueDatagrams = 212992, 256

// withDefaults returns c with its zero fields set to defaults, or an error
// if a field is out of range.
func (c Config) withDefaults() (Config, error) {
	if c.EphemeralLo == 0 && c.EphemeralHi == 0 {
		c.EphemeralLo, c.EphemeralHi = 49152, 65535
	}
	c.RecvQueueBytes = orDefault(c.RecvQueueBytes, defaultQueueBytes)
	c.RecvQueueDatagrams = orDefault(c.RecvQueueDatagrams, defaultQueueDatagrams)
	c.SendQueueBytes = orDefault(c.SendQueueBytes, defaultQueueBytes)
	c.SendQueueDatagrams = orDefault(c.SendQueueDatagrams, defaultQueueDatagrams)
	c.MTU = orDefault(c.MTU, 1500)
	addrs := make([]netip.Addr, len(c.Addrs))
	for i, a := range c.Addrs {
		a = a.Unmap()
		if !a.Is4() || a.IsUnspecified() {
			return c, fmt.Errorf("udp: config: %v is not a unicast IPv4 address", c.Addrs[i])
		}
		addrs[i] = a
	}
	c.Addrs = addrs
	switch {
	case c.EphemeralLo == 0 || c.EphemeralLo > c.EphemeralHi:
		return c, fmt.Errorf("udp: config: ephemeral range %d–%d", c.EphemeralLo, c.EphemeralHi)
	case c.MTU < minIPv4MTU || c.MTU > maxIPv4Packet:
		return c, fmt.Errorf("udp: config: MTU %d outside %d–%d", c.MTU, minIPv4MTU, maxIPv4Packet)
	case c.RecvQueueBytes < 0 || c.RecvQueueDatagrams < 0 || c.SendQueueDatagrams < 0:
		return c, errors.New("udp: config: negative queue limit")
	case c.SendQueueBytes < c.MTU-wire.IPv4MinLen-wire.UDPHeaderLen:
		return c, fmt.Errorf("udp: config: SendQueueBytes %d cannot hold a %d-byte datagram", c.SendQueueBytes, c.MTU-wire.IPv4MinLen-wire.UDPHeaderLen)
	}
	return c, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// maxPayload is the largest payload we send: with DF, what an unfragmented
// IPv4 packet without options carries in the MTU; without, what fills the
// largest IPv4 datagram, or the send queue if that is smaller.
func (c *Config) maxPayload() int {
	if c.Ping {
		// An ICMP message fills an IPv4 datagram; DF is UDP's alone.
		return min(maxIPv4Packet-wire.IPv4MinLen, c.SendQueueBytes)
	}
	if c.DontFragment {
		return c.MTU - wire.IPv4MinLen - wire.UDPHeaderLen
	}
	return min(maxUDPPayload, c.SendQueueBytes)
}

// Errors callers branch on. Each wraps the errno the Linux socket call
// would return, so errors.Is(err, syscall.EADDRINUSE) and the like work;
// endpoint operations after Close return net.ErrClosed itself. The ones
// returned per datagram are allocated once; those tcp has too are
// internal/neterr's, one value each.
var (
	// ErrWouldBlock: no datagram is queued to read, or the send queue is
	// full. The socket layer waits and retries.
	ErrWouldBlock = neterr.ErrWouldBlock
	// ErrPortInUse: the local address and port are bound already.
	ErrPortInUse = neterr.ErrPortInUse
	// ErrNoEphemeralPort: every port of the ephemeral range is bound. It
	// wraps EADDRINUSE, as Linux's bind to port 0 does.
	ErrNoEphemeralPort = fmt.Errorf("udp: no free ephemeral port: %w", syscall.EADDRINUSE)
	// ErrAddrNotAvailable: the address to bind is not one of Config.Addrs.
	ErrAddrNotAvailable = neterr.ErrAddrNotAvailable
	// ErrInvalidAddr: a destination that is not IPv4 or has port 0.
	ErrInvalidAddr = neterr.ErrInvalidAddr
	// ErrMessageTooLong: a payload over 65,507 bytes, over the send
	// queue, or with Config.DontFragment over MTU − 28 bytes.
	ErrMessageTooLong = fmt.Errorf("udp: message too long: %w", syscall.EMSGSIZE)
	// ErrNoDestination: Write on an endpoint that is not connected.
	ErrNoDestination = fmt.Errorf("udp: destination address required: %w", syscall.EDESTADDRREQ)
	// ErrNotEcho: a ping endpoint's datagram that is not an ICMP echo
	// request (type 8, code 0, at least 8 bytes), EINVAL as Linux's
	// ping_common_sendmsg.
	ErrNotEcho = fmt.Errorf("udp: not an ICMP echo request: %w", syscall.EINVAL)
	// ErrConnRefused: an ICMP port unreachable came back for a datagram of
	// this connected endpoint; returned once, by the next read or write.
	ErrConnRefused = neterr.ErrRefused
)
