package xdp

import (
	"sync/atomic"
	"unsafe"
)

// Desc is one RX or TX ring descriptor: a frame at Addr in the UMEM holding
// Len bytes. Its layout is the kernel's struct xdp_desc.
type Desc struct {
	Addr    uint64
	Len     uint32
	Options uint32
}

// ringNeedWakeup is XDP_RING_NEED_WAKEUP in a ring's flags word.
const ringNeedWakeup = 1

// indexes is the part every ring shares with the kernel: the producer and
// consumer indexes and the flags word, plus our cached copies of them.
//
// The indexes are free-running uint32 counters; entry i lives in slot
// i&mask, and all arithmetic wraps at 2^32, which is why free and available
// counts are plain differences. The cached copies keep us from touching the
// cache line the kernel writes on every call: we read the other side's index
// only when the cached value says there is not enough room or data.
type indexes struct {
	producer *atomic.Uint32
	consumer *atomic.Uint32
	flags    *atomic.Uint32
	mask     uint32
	size     uint32

	cachedProd uint32
	cachedCons uint32
}

func newIndexes(producer, consumer, flags unsafe.Pointer, size uint32) indexes {
	return indexes{
		producer: (*atomic.Uint32)(producer),
		consumer: (*atomic.Uint32)(consumer),
		flags:    (*atomic.Uint32)(flags),
		mask:     size - 1,
		size:     size,
	}
}

// NeedWakeup reports whether the kernel asks for a syscall to make progress
// on this ring (XDP_USE_NEED_WAKEUP): sendto for TX, poll or recvfrom for
// the fill ring.
func (r *indexes) NeedWakeup() bool {
	return r.flags.Load()&ringNeedWakeup != 0
}

// Size is the number of entries in the ring.
func (r *indexes) Size() int { return int(r.size) }

// Producer is a ring we fill and the kernel drains: the fill ring (frame
// addresses) and the TX ring (descriptors). Reserve slots, write them with
// Set, then Submit them, in the style of libxdp's xsk_ring_prod__reserve and
// __submit.
type Producer[T uint64 | Desc] struct {
	indexes
	entries []T
}

func newProducer[T uint64 | Desc](ix indexes, entries []T) *Producer[T] {
	p := &Producer[T]{indexes: ix, entries: entries}
	p.cachedProd = p.producer.Load()
	// cachedCons is kept one ring ahead so that free = cachedCons - cachedProd.
	p.cachedCons = p.consumer.Load() + p.size
	return p
}

// Free returns the number of slots free for Reserve, reading the kernel's
// consumer index only when the cached count is below want.
func (p *Producer[T]) Free(want uint32) uint32 {
	free := p.cachedCons - p.cachedProd
	if free >= want {
		return free
	}
	// Acquire: the kernel has finished reading the slots it released.
	p.cachedCons = p.consumer.Load() + p.size
	return p.cachedCons - p.cachedProd
}

// Reserve claims up to n free slots and returns the index of the first and
// how many it claimed. Write each with Set(idx+i, v), then Submit them all.
func (p *Producer[T]) Reserve(n uint32) (idx, got uint32) {
	got = min(p.Free(n), n)
	idx = p.cachedProd
	p.cachedProd += got
	return idx, got
}

// Set writes the entry at ring index idx.
func (p *Producer[T]) Set(idx uint32, v T) { p.entries[idx&p.mask] = v }

// Submit publishes n reserved entries to the kernel.
func (p *Producer[T]) Submit(n uint32) {
	// Release: the entries written by Set become visible before the index.
	p.producer.Store(p.producer.Load() + n)
}

// Cancel gives back the last n reserved and unsubmitted slots.
func (p *Producer[T]) Cancel(n uint32) { p.cachedProd -= n }

// Pending is how many submitted entries the kernel has yet to take.
func (p *Producer[T]) Pending() uint32 { return p.producer.Load() - p.consumer.Load() }

// Consumer is a ring the kernel fills and we drain: the RX ring
// (descriptors) and the completion ring (frame addresses). Peek entries,
// read them with At, then Release them.
type Consumer[T uint64 | Desc] struct {
	indexes
	entries []T
}

func newConsumer[T uint64 | Desc](ix indexes, entries []T) *Consumer[T] {
	c := &Consumer[T]{indexes: ix, entries: entries}
	c.cachedProd = c.producer.Load()
	c.cachedCons = c.consumer.Load()
	return c
}

// Available returns up to max entries ready to Peek, reading the kernel's
// producer index only when the cached copy has none.
func (c *Consumer[T]) Available(max uint32) uint32 {
	n := c.cachedProd - c.cachedCons
	if n == 0 {
		// Acquire: entries the kernel published are visible before the index.
		c.cachedProd = c.producer.Load()
		n = c.cachedProd - c.cachedCons
	}
	return min(n, max)
}

// Peek claims up to n ready entries and returns the index of the first and
// how many. Read each with At(idx+i), then Release them.
func (c *Consumer[T]) Peek(n uint32) (idx, got uint32) {
	got = c.Available(n)
	idx = c.cachedCons
	c.cachedCons += got
	return idx, got
}

// At returns the entry at ring index idx.
func (c *Consumer[T]) At(idx uint32) T { return c.entries[idx&c.mask] }

// Release hands n peeked entries back to the kernel.
func (c *Consumer[T]) Release(n uint32) {
	// Release ordering: our reads of the entries happen before the kernel
	// may overwrite them.
	c.consumer.Store(c.consumer.Load() + n)
}

// Cancel un-peeks the last n peeked and unreleased entries.
func (c *Consumer[T]) Cancel(n uint32) { c.cachedCons -= n }
