package fastpath

import (
	"sync/atomic"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Share connects the pollers of one device so that each queue's neighbour
// cache learns the ARP replies that arrive on the other queues: the NIC,
// not the stack, picks the queue a reply lands on, so a queue that asked
// may never see the answer. Each poller offers every ARP reply it
// receives to the others through a lock-free single-producer,
// single-consumer ring per ordered pair, and takes what the others offered
// at the start of each Poll. Requests are not passed on: the queue that
// received one answers it. Call Share before the pollers run.
//
// It also joins them for TCP: each poller learns its queue number and gets
// a handover ring to every other, for segments of flows another poller
// owns (see handover.go).
func Share(pollers ...*Poller) {
	for q, p := range pollers {
		p.qid, p.peers = q, pollers
		p.handoverOut = make([]*handoverRing, len(pollers))
		p.handoverIn = make([]*handoverRing, len(pollers))
	}
	for i, from := range pollers {
		for j, to := range pollers {
			if i != j {
				r := newHandoverRing(maxSegment(from.ip.MTU()))
				from.handoverOut[j], to.handoverIn[i] = r, r
			}
		}
	}
	for _, from := range pollers {
		for _, to := range pollers {
			if from != to {
				r := &arpRing{}
				from.arpOut = append(from.arpOut, r)
				to.arpIn = append(to.arpIn, r)
			}
		}
	}
}

// arpRingSize is the replies in flight from one poller to another; more
// are dropped (counted in ARPShareDrops), and the asking queue retries.
const arpRingSize = 64

// arpRing carries ARP packets from one poller to another. The producer
// writes a slot, then publishes it by moving tail (a release store); the
// consumer reads tail (an acquire load), copies the slots out, then frees
// them by moving head.
type arpRing struct {
	head  atomic.Uint32
	_     [60]byte // keep the consumer's and the producer's index apart
	tail  atomic.Uint32
	slots [arpRingSize][wire.ARPLen]byte
}

// put copies a into the ring; false if the ring is full.
func (r *arpRing) put(a wire.ARP) bool {
	t := r.tail.Load()
	if t-r.head.Load() == arpRingSize {
		return false
	}
	copy(r.slots[t%arpRingSize][:], a[:wire.ARPLen])
	r.tail.Store(t + 1)
	return true
}

// drain hands every waiting packet to fn.
func (r *arpRing) drain(fn func(wire.ARP)) {
	h, t := r.head.Load(), r.tail.Load()
	for ; h != t; h++ {
		fn(r.slots[h%arpRingSize][:])
	}
	r.head.Store(h)
}

// shareARP offers an ARP reply this poller received to the other pollers.
func (p *Poller) shareARP(a wire.ARP) {
	if a.Op() != wire.ARPReply {
		return
	}
	for _, r := range p.arpOut {
		if !r.put(a) {
			p.stats.ARPShareDrops++
		}
	}
}

// takeARP gives the neighbour cache the replies other pollers received.
func (p *Poller) takeARP() {
	for _, r := range p.arpIn {
		r.drain(p.arpInput)
	}
}
