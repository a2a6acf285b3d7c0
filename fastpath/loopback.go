package fastpath

import (
	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/ip"
)

// The loopback path: an IPv4 packet to the stack's own address or to
// 127/8 (ip's Local) never goes to the link. sendIP and sendFragments
// copy it, whole, into the poller's loopback queue, and the next round
// delivers it to the poller's own cores as if received, skipping
// Ethernet, ARP and ip.Input's checks of the wire (our own address as
// source is a forgery there, not here), checksums and all, so nothing
// above tells the two apart. The copy is the poller's, so the transmit
// frame is free at once; the queue is bounded in packets and bytes, and
// what does not fit is dropped (LoopbackDrops) as a full device queue
// drops: UDP's datagram is lost, TCP retransmits its segment.
//
// With several pollers, a TCP segment delivered so is handed over to
// the poller owning its flow like one from the link: the two ends of a
// loopback connection may live on two pollers. A UDP socket has an
// endpoint on every poller, so a datagram stays on the poller that sent
// it.
//
// Segments keep the link MTU's size (the handover slots are sized for
// it); a UDP datagram longer than it goes whole, not in fragments.

const (
	// loopbackPackets and loopbackBytes bound one round's loopback
	// packets: 1 MiB holds a few default TCP windows each way.
	loopbackPackets = 1024
	loopbackBytes   = 1 << 20
)

// loopQueue holds loopback packets back to back in buf, each ending at
// its entry of ends. Its memory is allocated with its first packet: a
// stack that never talks to itself does not pay for it.
type loopQueue struct {
	buf  []byte
	ends []int
}

// put copies pkt into the queue; false if it is full.
func (q *loopQueue) put(pkt []byte) bool {
	if q.buf == nil {
		q.buf, q.ends = make([]byte, 0, loopbackBytes), make([]int, 0, loopbackPackets)
	}
	if len(q.ends) == cap(q.ends) || len(pkt) > cap(q.buf)-len(q.buf) {
		return false
	}
	q.buf = append(q.buf, pkt...)
	q.ends = append(q.ends, len(q.buf))
	return true
}

// loopback queues pkt, an IPv4 packet of ours to ourselves, for the next
// round.
func (p *Poller) loopback(pkt []byte) {
	if !p.loopOut.put(pkt) {
		p.stats.LoopbackDrops++
	}
}

// takeLoopback delivers the loopback packets of the last round. What
// they make the cores send to ourselves at once (an ICMP answer) goes
// to the other queue, for the next round.
func (p *Poller) takeLoopback() {
	p.loopIn, p.loopOut = p.loopOut, p.loopIn
	q := &p.loopIn
	start := 0
	for _, end := range q.ends {
		h := wire.IPv4(q.buf[start:end])
		start = end
		p.deliver(ip.Datagram{Header: h, Src: h.Src(), Dst: h.Dst(), Proto: h.Protocol(), Payload: h.Payload()})
	}
	p.stats.LoopbackPackets += uint64(len(q.ends))
	q.buf, q.ends = q.buf[:0], q.ends[:0]
}
