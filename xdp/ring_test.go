package xdp

import (
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sharedRing is ring memory as the kernel maps it, in Go memory: both ends
// of a test ring point at the same indexes and entries, like our side and
// the kernel's side of a real one.
type sharedRing[T uint64 | Desc] struct {
	producer, consumer, flags uint32
	entries                   []T
}

func newSharedRing[T uint64 | Desc](size, start uint32) *sharedRing[T] {
	return &sharedRing[T]{producer: start, consumer: start, entries: make([]T, size)}
}

func (r *sharedRing[T]) indexes() indexes {
	return newIndexes(unsafe.Pointer(&r.producer), unsafe.Pointer(&r.consumer), unsafe.Pointer(&r.flags), uint32(len(r.entries)))
}

// pair returns our producer and a consumer standing in for the kernel.
func (r *sharedRing[T]) pair() (*Producer[T], *Consumer[T]) {
	return newProducer(r.indexes(), r.entries), newConsumer(r.indexes(), r.entries)
}

func TestProducerConsumerWrapAt2To32(t *testing.T) {
	// Start 5 short of the uint32 wrap so that indexes, free counts and
	// slot numbers all cross it.
	r := newSharedRing[uint64](8, 1<<32-5)
	p, c := r.pair()
	next, want := uint64(0), uint64(0)
	for round := 0; round < 10; round++ {
		idx, n := p.Reserve(6)
		require.EqualValues(t, 6, n, "round %d: a drained ring of 8 has 6 free", round)
		for i := range n {
			p.Set(idx+i, next)
			next++
		}
		p.Submit(n)
		for {
			idx, n := c.Peek(4)
			if n == 0 {
				break
			}
			for i := range n {
				require.Equal(t, want, c.At(idx+i))
				want++
			}
			c.Release(n)
		}
	}
	assert.Equal(t, next, want)
	assert.Less(t, r.producer, uint32(1<<31), "the producer index wrapped past 2^32")
	assert.Equal(t, r.producer, r.consumer)
}

func TestReserveIsBoundedByFreeSlots(t *testing.T) {
	r := newSharedRing[Desc](4, 0)
	p, c := r.pair()
	_, n := p.Reserve(3)
	assert.EqualValues(t, 3, n)
	_, n = p.Reserve(3)
	assert.EqualValues(t, 1, n, "only one slot left")
	_, n = p.Reserve(1)
	assert.EqualValues(t, 0, n, "full")
	p.Submit(4)

	_, n = c.Peek(2)
	assert.EqualValues(t, 2, n)
	_, n = p.Reserve(4)
	assert.EqualValues(t, 0, n, "peeked but not released entries still hold their slots")
	c.Release(2)
	_, n = p.Reserve(4)
	assert.EqualValues(t, 2, n, "released slots are free again")
}

func TestSubmitPublishesOnlySubmitted(t *testing.T) {
	r := newSharedRing[uint64](8, 0)
	p, c := r.pair()
	idx, n := p.Reserve(3)
	for i := range n {
		p.Set(idx+i, uint64(10+i))
	}
	_, got := c.Peek(8)
	assert.EqualValues(t, 0, got, "nothing is visible before Submit")
	p.Submit(2)
	p.Cancel(1)
	idx, got = c.Peek(8)
	require.EqualValues(t, 2, got)
	assert.Equal(t, []uint64{10, 11}, []uint64{c.At(idx), c.At(idx + 1)})
	c.Cancel(1)
	c.Release(1)
	idx, got = c.Peek(8)
	require.EqualValues(t, 1, got, "a cancelled peek is seen again")
	assert.EqualValues(t, 11, c.At(idx))

	idx, n = p.Reserve(1)
	require.EqualValues(t, 1, n)
	p.Set(idx, 12)
	p.Submit(1)
	idx, got = c.Peek(8)
	require.EqualValues(t, 1, got, "the cancelled reservation's slot is reused")
	assert.EqualValues(t, 12, c.At(idx))
}

func TestCachedIndexesAvoidSharedReads(t *testing.T) {
	r := newSharedRing[uint64](8, 0)
	p, _ := r.pair()
	_, n := p.Reserve(2)
	p.Submit(n)
	// A consumer index that moved backwards would be a kernel bug; here it
	// shows that Free trusts its cache while the cache says there is room.
	r.consumer = 100
	assert.EqualValues(t, 6, p.Free(6), "enough room in cache: the consumer index is not read")
	assert.NotEqualValues(t, 6, p.Free(7), "not enough room in cache: the consumer index is read")
}

func TestNeedWakeupFlag(t *testing.T) {
	r := newSharedRing[uint64](8, 0)
	p, c := r.pair()
	assert.False(t, p.NeedWakeup())
	r.flags = ringNeedWakeup
	assert.True(t, p.NeedWakeup())
	assert.True(t, c.NeedWakeup())
	r.flags = 2 // other bits do not ask for a wakeup
	assert.False(t, c.NeedWakeup())
}

func TestRingOperationsDoNotAllocate(t *testing.T) {
	r := newSharedRing[Desc](64, 0)
	p, c := r.pair()
	allocs := testing.AllocsPerRun(1000, func() {
		idx, n := p.Reserve(16)
		for i := range n {
			p.Set(idx+i, Desc{Addr: uint64(i), Len: 64})
		}
		p.Submit(n)
		idx, n = c.Peek(16)
		for i := range n {
			_ = c.At(idx + i)
		}
		c.Release(n)
	})
	assert.Zero(t, allocs)
}

// TestConcurrentProducerConsumer passes a sequence through a small ring
// between two goroutines, as our poller and the kernel do; with -race it
// also checks that the atomics order the entry writes.
func TestConcurrentProducerConsumer(t *testing.T) {
	const total = 200_000
	r := newSharedRing[uint64](16, 1<<32-1000)
	p, c := r.pair()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for next := uint64(0); next < total; {
			idx, n := p.Reserve(min(7, uint32(total-next)))
			for i := range n {
				p.Set(idx+i, next)
				next++
			}
			p.Submit(n)
		}
	}()
	var want uint64
	for want < total {
		idx, n := c.Peek(5)
		for i := range n {
			if got := c.At(idx + i); got != want {
				t.Fatalf("entry %d: got %d", want, got)
			}
			want++
		}
		c.Release(n)
	}
	wg.Wait()
}

func BenchmarkProducerReserveSubmit(b *testing.B) {
	r := newSharedRing[Desc](2048, 0)
	p, c := r.pair()
	const batch = 64
	b.ReportAllocs()
	for i := 0; i < b.N; i += batch {
		idx, n := p.Reserve(batch)
		for j := range n {
			p.Set(idx+j, Desc{Addr: uint64(j) << 12, Len: 64})
		}
		p.Submit(n)
		// Drain as the kernel would, cheaply, so the ring never fills.
		_, n = c.Peek(batch)
		c.Release(n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/frame")
}

func BenchmarkConsumerPeekRelease(b *testing.B) {
	r := newSharedRing[Desc](2048, 0)
	p, c := r.pair()
	const batch = 64
	var sum uint64
	b.ReportAllocs()
	for i := 0; i < b.N; i += batch {
		// The kernel's part: publish a batch by moving the index only.
		_, n := p.Reserve(batch)
		p.Submit(n)
		idx, n := c.Peek(batch)
		for j := range n {
			sum += c.At(idx + j).Addr
		}
		c.Release(n)
	}
	_ = sum
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/frame")
}
