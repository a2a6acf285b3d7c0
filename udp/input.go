package udp

import (
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Result is what Input did with a datagram, and so what the poller does
// next.
type Result uint8

const (
	// Delivered: the payload is queued on an endpoint.
	Delivered Result = iota
	// NoPort: no endpoint takes the datagram. RFC 1122 section 4.1.3.1:
	// UDP SHOULD answer with an ICMP port unreachable, which the poller
	// asks the ip layer to send unless the datagram was broadcast or
	// multicast (RFC 1122 section 3.2.2).
	NoPort
	// Dropped: malformed, bad checksum or receive queue full; counted,
	// nothing to send.
	Dropped
)

// String names the result.
func (r Result) String() string {
	switch r {
	case Delivered:
		return "delivered"
	case NoPort:
		return "no port"
	case Dropped:
		return "dropped"
	}
	return "Result(?)"
}

// Input takes one UDP datagram, seg (header and payload, the IPv4 payload
// the ip layer delivered) from src to dst, both IPv4. It verifies the
// checksum, finds the endpoint, and copies the payload into the endpoint's
// receive queue. It keeps no reference to seg. UDP has no timers: now is
// the contract's (every core's input takes it), unused.
func (t *Table) Input(now time.Duration, src, dst netip.Addr, seg []byte) Result {
	u := wire.UDP(seg)
	// RFC 768: the length field covers header and data; bytes after it
	// (IPv4 payload beyond it) are not part of the datagram.
	if u.Check() != nil {
		t.stats.InErrors++
		return Dropped
	}
	// RFC 768: a zero checksum means the sender computed none, so there
	// is nothing to verify. RFC 1122 section 4.1.3.4: a non-zero, invalid
	// checksum MUST be silently discarded.
	if u.Checksum() != 0 && !u.ChecksumValid(src, dst) {
		t.stats.InCsumErrors++
		t.stats.InErrors++
		return Dropped
	}
	e := t.lookup(dst, u.DstPort(), src, u.SrcPort())
	if e == nil {
		t.stats.NoPorts++
		return NoPort
	}
	p := u.Payload()
	if !e.rcv.fits(len(p)) {
		t.stats.RcvbufErrors++
		t.stats.InErrors++
		return Dropped
	}
	e.rcv.push(netip.AddrPortFrom(src, u.SrcPort()), p)
	t.notify(e)
	t.stats.InDatagrams++
	return Delivered
}
