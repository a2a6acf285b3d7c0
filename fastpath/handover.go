package fastpath

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Multi-queue: a TCP flow belongs to one poller, the one of the queue the
// NIC's RSS steers it to (RSS.queueOf), computed the same way by every
// poller, so they agree on owners with no shared table. A segment that
// lands on another queue (a NIC whose RSS key is unknown, or veth, whose
// queue follows the sender's CPU) is handed over to its owner through a
// lock-free SPSC ring per ordered pair of pollers. Dial picks source
// ports whose flows its own poller owns, so with the NIC's key known its
// return traffic needs no handover.

// handoverSlots is the segments in flight from one poller to another;
// more are dropped (HandoverDrops) and TCP retransmits them.
const handoverSlots = 256

// handoverRing carries TCP segments with their addresses.
type handoverRing struct {
	head atomic.Uint32
	_    [60]byte
	tail atomic.Uint32
	meta [handoverSlots]handoverMeta
	data []byte // handoverSlots slots of slot bytes
	slot int
	_    [64]byte
}

type handoverMeta struct {
	src, dst [4]byte
	n        uint16
}

func newHandoverRing(slot int) *handoverRing {
	return &handoverRing{data: make([]byte, handoverSlots*slot), slot: slot}
}

// put copies a segment into the ring; false if it is full or the
// segment does not fit a slot.
func (r *handoverRing) put(src, dst netip.Addr, seg []byte) bool {
	t := r.tail.Load()
	if t-r.head.Load() == handoverSlots || len(seg) > r.slot {
		return false
	}
	i := t % handoverSlots
	r.meta[i] = handoverMeta{src.As4(), dst.As4(), uint16(len(seg))}
	copy(r.data[int(i)*r.slot:], seg)
	r.tail.Store(t + 1)
	return true
}

// drain hands every waiting segment to the poller's TCP.
func (r *handoverRing) drain(p *Poller) {
	h, t := r.head.Load(), r.tail.Load()
	for ; h != t; h++ {
		i := h % handoverSlots
		m := r.meta[i]
		off := int(i) * r.slot
		p.tcp.Input(p.now, netip.AddrFrom4(m.src), netip.AddrFrom4(m.dst), r.data[off:off+int(m.n)])
		p.stats.HandoversIn++
	}
	r.head.Store(h)
}

// SetRSS tells the poller how the NIC steers flows to queues (its
// Toeplitz key and indirection table, when they can be read), so flow
// ownership matches the NIC's steering. Call it before the pollers run.
func (p *Poller) SetRSS(r RSS) { p.rss = r }

// handoversWaiting reports whether another poller handed this one
// segments it has not taken yet.
func (p *Poller) handoversWaiting() bool {
	for _, r := range p.handoverIn {
		if r != nil && r.head.Load() != r.tail.Load() {
			return true
		}
	}
	return false
}

// owner is the queue that owns the TCP flow of a segment from src to
// dst, as the NIC would steer it.
func (p *Poller) owner(src, dst netip.AddrPort) int {
	return p.rss.queueOf(src, dst, len(p.handoverOut))
}

// handOver passes a TCP segment to the poller that owns its flow, and
// reports whether it did (false: this poller owns it).
func (p *Poller) handOver(src, dst netip.Addr, seg []byte) bool {
	if len(p.handoverOut) < 2 || len(seg) < 4 {
		return false
	}
	q := p.owner(netip.AddrPortFrom(src, binary.BigEndian.Uint16(seg)), netip.AddrPortFrom(dst, binary.BigEndian.Uint16(seg[2:])))
	if q == p.qid {
		return false
	}
	if p.handoverOut[q].put(src, dst, seg) {
		p.stats.HandoversOut++
		p.peers[q].Wake()
	} else {
		p.stats.HandoverDrops++
	}
	return true
}

// takeHandovers runs the segments other pollers handed over.
func (p *Poller) takeHandovers() {
	for _, r := range p.handoverIn {
		if r != nil {
			r.drain(p)
		}
	}
}

// OwnsDial reports whether this poller owns a connection from local to
// remote: the filter of the source ports Dial picks, and, for a dial
// from a given port, the poller to dial it on.
func (p *Poller) OwnsDial(local, remote netip.AddrPort) bool {
	return len(p.handoverOut) < 2 || p.owner(remote, local) == p.qid
}

// maxSegment is the largest TCP segment a slot carries: a whole IPv4
// packet's payload at the link MTU (reassembled larger ones are dropped).
func maxSegment(mtu int) int { return mtu - wire.IPv4MinLen }
