package udp

import (
	"encoding/binary"
	"net/netip"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// A table in ping mode (Config.Ping) holds ICMP echo sockets, after
// Linux's ping sockets (net/ipv4/ping.c): the endpoint's port is the echo
// identifier, picked from the ephemeral range as a port is, the app
// writes whole echo requests, and reads whole echo replies that carry the
// endpoint's identifier. The queues, streams, bind rules and news are
// UDP's own.

// isEcho reports whether m is an ICMP echo request a ping endpoint may
// send: type 8, code 0, with its 8-byte header (Linux's
// ping_common_sendmsg refuses the rest with EINVAL).
func isEcho(m []byte) bool {
	return len(m) >= wire.ICMPHeaderLen && m[0] == wire.ICMPEcho && m[1] == 0
}

// echoFromPort makes m, an echo request, the endpoint's: its identifier
// is id, whatever the app wrote, and its checksum is computed afresh, as
// Linux's ping_v4_push_pending_frames does.
func echoFromPort(m []byte, id uint16) {
	binary.BigEndian.PutUint16(m[4:], id)
	binary.BigEndian.PutUint16(m[2:], 0)
	binary.BigEndian.PutUint16(m[2:], wire.Checksum(m, 0))
}

// EchoReply takes an ICMP echo reply, msg (the whole ICMP message, its
// checksum verified by the ip layer), from src to dst, and queues it whole
// on the endpoint whose identifier it carries, bound to dst or the
// wildcard: Delivered, NoPort when no endpoint has the identifier (the
// reply is not ours to answer: no ICMP error is sent about ICMP), or
// Dropped when msg is not an echo reply or the receive queue is full. It
// keeps no reference to msg. Only a table in ping mode takes replies.
func (t *Table) EchoReply(src, dst netip.Addr, msg []byte) Result {
	m := wire.ICMP(msg)
	if !t.cfg.Ping || m.Check() != nil || m.Type() != wire.ICMPEchoReply {
		t.stats.InErrors++
		return Dropped
	}
	e := t.lookup(dst, m.ID(), src, 0)
	if e == nil {
		t.stats.NoPorts++
		return NoPort
	}
	if !e.rcv.fits(len(msg)) {
		t.stats.RcvbufErrors++
		t.stats.InErrors++
		return Dropped
	}
	e.rcv.push(netip.AddrPortFrom(src, 0), msg)
	t.notify(e)
	t.stats.InDatagrams++
	return Delivered
}
