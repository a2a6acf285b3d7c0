package tcp

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// seqBytes returns n bytes counting up from b.
func seqBytes(b byte, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = b + byte(i)
	}
	return p
}

func TestRingWrapAround(t *testing.T) {
	r := newRing(10)
	require.Equal(t, 16, r.Cap(), "rounded up to a power of two")
	assert.Equal(t, 10, r.Write(seqBytes(0, 10)))
	out := make([]byte, 6)
	assert.Equal(t, 6, r.Read(out))
	assert.Equal(t, seqBytes(0, 6), out)
	// 4 held, 12 free: the next write wraps past the end of the array.
	assert.Equal(t, 12, r.Free())
	assert.Equal(t, 12, r.Write(seqBytes(10, 20)), "cut to the room left")
	assert.Zero(t, r.Free())
	assert.Zero(t, r.Write([]byte{1}))

	// Peek reads across the wrap without consuming.
	p := make([]byte, 8)
	assert.Equal(t, 8, r.Peek(3, p))
	assert.Equal(t, seqBytes(9, 8), p)
	assert.Equal(t, 2, r.Peek(14, p), "up to tail")
	assert.Equal(t, 16, r.Len())

	r.Discard(2)
	all := make([]byte, 32)
	n := r.Read(all)
	assert.Equal(t, 14, n)
	assert.Equal(t, seqBytes(8, 14), all[:n])
	assert.Zero(t, r.Len())
}

func TestRecvBufferOutOfOrderMerge(t *testing.T) {
	b := recvBuffer{ring: newRing(64)}
	n, ok := b.Insert(10, seqBytes(10, 5)) // [10,15)
	require.True(t, ok)
	assert.Zero(t, n, "out of order: nothing in order yet")
	n, ok = b.Insert(20, seqBytes(20, 5)) // [20,25)
	require.True(t, ok)
	assert.Zero(t, n)
	assert.Equal(t, 2, b.ooo.n)
	assert.Equal(t, 10, b.OutOfOrder())
	// A range that touches one and overlaps the other joins them.
	_, ok = b.Insert(15, seqBytes(15, 6)) // [15,21)
	require.True(t, ok)
	assert.Equal(t, 1, b.ooo.n)
	assert.Equal(t, span{10, 25}, b.ooo.s[0])
	assert.Equal(t, 15, b.OutOfOrder())
	// A duplicate inside changes nothing.
	_, ok = b.Insert(12, seqBytes(12, 3))
	require.True(t, ok)
	assert.Equal(t, 1, b.ooo.n)
	assert.Zero(t, b.Len())

	// The in-order bytes reach the range: all of it becomes readable.
	n, ok = b.Insert(0, seqBytes(0, 10))
	require.True(t, ok)
	assert.Equal(t, 25, n)
	assert.Zero(t, b.ooo.n)
	assert.Zero(t, b.OutOfOrder())
	out := make([]byte, 64)
	assert.Equal(t, 25, b.Read(out))
	assert.Equal(t, seqBytes(0, 25), out[:25])
}

func TestRecvBufferInOrderPastRanges(t *testing.T) {
	b := recvBuffer{ring: newRing(64)}
	_, _ = b.Insert(5, seqBytes(5, 5))   // [5,10)
	_, _ = b.Insert(20, seqBytes(20, 5)) // [20,25)
	// In-order bytes that cover the first range and stop short of the
	// second join only the first.
	n, ok := b.Insert(0, seqBytes(0, 12))
	require.True(t, ok)
	assert.Equal(t, 12, n)
	assert.Equal(t, 1, b.ooo.n)
	// The range's offsets are stream offsets: the next in-order insert is
	// relative to the new end.
	n, ok = b.Insert(0, seqBytes(12, 8))
	require.True(t, ok)
	assert.Equal(t, 13, n)
	out := make([]byte, 64)
	assert.Equal(t, 25, b.Read(out))
	assert.True(t, bytes.Equal(seqBytes(0, 25), out[:25]))
}

func TestRecvBufferRangeLimit(t *testing.T) {
	b := recvBuffer{ring: newRing(4 * maxOutOfOrder)}
	for i := range maxOutOfOrder {
		_, ok := b.Insert(2+2*i, []byte{byte(2 + 2*i)})
		require.True(t, ok, "range %d", i)
	}
	assert.Equal(t, maxOutOfOrder, b.ooo.n)
	past := 2 + 2*maxOutOfOrder + 1
	// One more disjoint range is refused...
	_, ok := b.Insert(past, []byte{1})
	assert.False(t, ok)
	assert.Equal(t, maxOutOfOrder, b.ooo.n)
	// ...one that extends a range is not, nor one that joins two.
	_, ok = b.Insert(3, []byte{3})
	assert.True(t, ok)
	assert.Equal(t, maxOutOfOrder-1, b.ooo.n, "[2,3) [3,4) [4,5) merged")
	_, ok = b.Insert(past, []byte{1})
	assert.True(t, ok, "room for a range again")
	assert.Equal(t, maxOutOfOrder, b.ooo.n)
	for i, s := range b.ooo.spans() {
		require.Equal(t, i, b.ooo.find(s.start), "range %d found by its start", i)
		require.Equal(t, i, b.ooo.find(s.end-1), "range %d found by its last byte", i)
		require.Equal(t, -1, b.ooo.find(s.end), "range %d: the gap after it", i)
	}
	// Filling from the front takes every range it reaches.
	n, ok := b.Insert(0, []byte{0, 1})
	require.True(t, ok)
	assert.Equal(t, 5, n, "[0,5): the front and the merged range")
}

func TestRecvBufferCapacityAndWrap(t *testing.T) {
	b := recvBuffer{ring: newRing(16)}
	// Move the ring's start near the end of its array.
	n, _ := b.Insert(0, seqBytes(0, 12))
	require.Equal(t, 12, n)
	out := make([]byte, 16)
	require.Equal(t, 12, b.Read(out))

	// Out of order across the wrap, cut at the capacity.
	n, ok := b.Insert(6, seqBytes(6, 20))
	require.True(t, ok)
	assert.Zero(t, n)
	assert.Equal(t, 10, b.OutOfOrder(), "bytes past head+cap are cut")
	n, ok = b.Insert(0, seqBytes(0, 6))
	require.True(t, ok)
	assert.Equal(t, 16, n)
	assert.Equal(t, 16, b.Read(out))
	assert.Equal(t, seqBytes(0, 16), out)

	// Nothing fits in a full buffer.
	b.Insert(0, seqBytes(0, 16))
	n, ok = b.Insert(0, []byte{1})
	assert.True(t, ok)
	assert.Zero(t, n)
	n, ok = b.Insert(3, []byte{1})
	assert.True(t, ok)
	assert.Zero(t, n)
	assert.Zero(t, b.ooo.n)
}

// TestPeekSum: the sum computed while copying equals the sum of the
// copy, wherever the bytes wrap around the ring (odd splits included).
func TestPeekSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	r := newRing(64)
	p := make([]byte, 64)
	for range 2000 {
		r.Discard(r.Len())
		// Move head and tail to a random place, then fill some bytes.
		skip := rng.IntN(64)
		r.Write(make([]byte, skip))
		r.Discard(skip)
		data := make([]byte, rng.IntN(65))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		r.Write(data)
		off := rng.IntN(len(data) + 1)
		n, sum := r.PeekSum(off, p)
		require.Equal(t, len(data)-off, n)
		require.Equal(t, data[off:], p[:n])
		require.Equal(t, wire.Fold(wire.Sum(p[:n], 0)), wire.Fold(sum), "head %d, off %d, n %d", skip, off, n)
	}
}

// TestBufferPool: rings come back empty, unlimited and with no
// out-of-order ranges, so nothing of a connection reaches the next one;
// the pool keeps at most maxPooled of each, and only rings of the
// initial sizes.
func TestBufferPool(t *testing.T) {
	var p bufferPool
	cfg := Config{SendBuffer: 64, RecvBuffer: 64}
	s, r := p.get(&cfg)
	s.Write([]byte("old data"))
	s.limit.Store(16)
	r.Insert(0, []byte("old"))
	r.Insert(10, []byte("out of order"))
	p.put(&cfg, s, r)
	s2, r2 := p.get(&cfg)
	require.Same(t, s, s2)
	require.Same(t, r, r2)
	assert.Zero(t, s2.Len())
	assert.Equal(t, 64, s2.Cap(), "the limit is lifted")
	assert.Zero(t, r2.Len())
	assert.Zero(t, r2.OutOfOrder())
	n, ok := r2.Insert(0, []byte("new"))
	assert.True(t, ok)
	assert.Equal(t, 3, n)
	got := make([]byte, 8)
	assert.Equal(t, "new", string(got[:r2.Read(got)]))

	p.put(&cfg, newRing(128), &recvBuffer{ring: newRing(64)})
	p.put(&cfg, newRing(64), &recvBuffer{ring: newRing(32)})
	assert.Empty(t, p.snd, "grown or shrunk rings are not pooled")
	for range maxPooled + 10 {
		p.put(&cfg, newRing(64), &recvBuffer{ring: newRing(64)})
	}
	assert.Len(t, p.snd, maxPooled)
	p.put(&cfg, noBuffer, noRecvBuffer)
	assert.Len(t, p.snd, maxPooled, "the shared empty buffers are never pooled")
}

// pattern is the byte at stream offset off of the resize tests' streams.
func pattern(off uint64) byte { return byte(off*7 + off>>9) }

// TestRingResizeUnderWrite: the send ring's case. An app goroutine
// writes a known stream while the poller's (this one) reads it with
// PeekSum and Discard and resizes the ring to random sizes between its
// reads, as auto-tuning, pinning and the idle shrink do. Every byte
// arrives, in order, and resizes that lose to a Write leave the ring
// intact. Run it with -race: the two goroutines share only the ring.
func TestRingResizeUnderWrite(t *testing.T) {
	const total = 1 << 20
	r := newRing(64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p := make([]byte, 300)
		for off := uint64(0); off < total; {
			n := min(len(p), int(total-off))
			for i := range n {
				p[i] = pattern(off + uint64(i))
			}
			m := r.Write(p[:n])
			off += uint64(m)
			if m == 0 {
				runtime.Gosched()
			}
		}
	}()
	rng := rand.New(rand.NewPCG(5, 6))
	sizes := []int{16, 64, 100, 1000, 4096}
	got := make([]byte, 512)
	resized, lost := 0, 0
	for off := uint64(0); off < total; {
		if rng.IntN(4) == 0 {
			if size := sizes[rng.IntN(len(sizes))]; size >= r.Len() {
				if r.resize(size, 0) {
					resized++
				} else {
					lost++
				}
			}
		}
		n, sum := r.PeekSum(0, got[:rng.IntN(len(got))+1])
		for i := range n {
			require.Equal(t, pattern(off+uint64(i)), got[i], "byte %d", off+uint64(i))
		}
		require.Equal(t, wire.Fold(wire.Sum(got[:n], 0)), wire.Fold(sum))
		r.Discard(n)
		off += uint64(n)
		if n == 0 {
			runtime.Gosched()
		}
	}
	<-done
	t.Logf("%d resizes, %d lost to a Write", resized, lost)
	require.Positive(t, resized)
}

// TestRecvRingResizeUnderRead: the receive ring's case. The poller
// (this goroutine) inserts a known stream, out of order as well as in
// order, and resizes the ring (out-of-order bytes included) while an app
// goroutine reads it. Every byte arrives, in order.
func TestRecvRingResizeUnderRead(t *testing.T) {
	const total = 1 << 20
	b := &recvBuffer{ring: newRing(64)}
	done := make(chan error, 1)
	go func() {
		p := make([]byte, 700)
		for off := uint64(0); off < total; {
			n := b.Read(p)
			for i := range n {
				if p[i] != pattern(off+uint64(i)) {
					done <- fmt.Errorf("byte %d: %#x, want %#x", off+uint64(i), p[i], pattern(off+uint64(i)))
					return
				}
			}
			off += uint64(n)
			if n == 0 {
				runtime.Gosched()
			}
		}
		done <- nil
	}()
	rng := rand.New(rand.NewPCG(7, 8))
	seg := func(at uint64, n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = pattern(at + uint64(i))
		}
		return p
	}
	resizes := 0
	pending := int64(-1) // where out-of-order bytes wait, if they do
	for off := uint64(0); off < total; {
		select {
		case err := <-done:
			require.NoError(t, err) // the reader stopped early
		default:
		}
		if rng.IntN(4) == 0 {
			size := []int{32, 128, 200, 2048, 8192}[rng.IntN(5)]
			if past := b.past(); size >= b.Len()+past && b.resize(size, past) {
				resizes++
			}
		}
		n := min(rng.IntN(300)+1, int(total-off))
		gap := rng.IntN(200) + 1
		switch {
		case pending < 0 && rng.IntN(3) == 0 && off+uint64(gap+n) <= total:
			// Out of order: it waits past tail, through resizes, until
			// the gap before it comes.
			b.Insert(gap, seg(off+uint64(gap), n))
			if b.ooo.n > 0 {
				pending = int64(off) + int64(gap)
			}
			continue
		case pending >= 0:
			n = min(n, int(pending-int64(off)))
		}
		m, ok := b.Insert(0, seg(off, n))
		require.True(t, ok)
		off += uint64(m)
		if int64(off) > pending {
			pending = -1
		}
		if m == 0 {
			runtime.Gosched()
		}
	}
	require.NoError(t, <-done)
	require.Positive(t, resizes)
}

// TestRingSpans: WriteSpace and ReadSpace hand out the ring's room and
// bytes in place, as two slices where they wrap; Commit and Discard
// publish and drop them.
func TestRingSpans(t *testing.T) {
	r := newRing(16)
	a, b := r.writeSpace()
	require.Len(t, a, 16)
	require.Empty(t, b)
	copy(a, seqBytes(0, 10))
	require.Equal(t, 10, r.commit(10))
	r.Discard(6)
	// 4 held from offset 6; the room is offsets 10..22: 6 to the end of
	// the array, 6 wrapped to its start.
	a, b = r.writeSpace()
	require.Len(t, a, 6)
	require.Len(t, b, 6)
	copy(a, seqBytes(10, 6))
	copy(b, seqBytes(16, 6))
	require.Equal(t, 9, r.commit(9), "a prefix")
	require.Equal(t, 13, r.Len())

	a, b = r.readSpace()
	assert.Equal(t, seqBytes(6, 10), a, "up to the array's end")
	assert.Equal(t, seqBytes(16, 3), b, "the wrapped part")
	r.Discard(len(a) + len(b))
	a, b = r.readSpace()
	assert.Empty(t, a)
	assert.Empty(t, b)

	a, b = noBuffer.writeSpace()
	assert.Empty(t, append(a, b...), "a freed buffer has no room")
	assert.Zero(t, noBuffer.commit(0))
	a, b = noBuffer.readSpace()
	assert.Empty(t, append(a, b...))
}

// TestRingCommitAfterResize: a resize between WriteSpace and Commit moves
// what is held to a new buffer; Commit copies the bytes written in the
// old one there, and when a shrink leaves less room, publishes what fits
// and leaves the rest in the slices.
func TestRingCommitAfterResize(t *testing.T) {
	r := newRing(16)
	require.Equal(t, 5, r.Write(seqBytes(0, 5)))
	r.Discard(3)
	a, _ := r.writeSpace()
	copy(a, seqBytes(5, 8))
	require.True(t, r.resize(64, 0))
	require.Equal(t, 8, r.commit(8))
	got := make([]byte, 64)
	require.Equal(t, 10, r.Read(got))
	assert.Equal(t, seqBytes(3, 10), got[:10])

	// Held 2 (from 13); 8 written into the room; the ring shrinks to 4.
	require.Equal(t, 2, r.Write(seqBytes(13, 2)))
	a, _ = r.writeSpace()
	copy(a, seqBytes(15, 8))
	require.True(t, r.resize(4, 0))
	require.Equal(t, 2, r.commit(8), "as many as the smaller buffer takes")
	assert.Equal(t, seqBytes(17, 6), a[2:8], "the rest stays in the slice")
	require.Equal(t, 4, r.Read(got))
	assert.Equal(t, seqBytes(13, 4), got[:4])
}

// TestRingSpansUnderResize: TestRingResizeUnderWrite and
// TestRecvRingResizeUnderRead with the app's side through the spans: the
// producer fills WriteSpace in place and commits (writing back what a
// shrink left over), the consumer checks ReadSpace in place and
// discards, while this goroutine, the poller's, resizes the ring to
// random sizes and does the other side. Every byte arrives in order.
// Run it with -race.
func TestRingSpansUnderResize(t *testing.T) {
	const total = 1 << 20
	sizes := []int{16, 64, 100, 1000, 4096}
	t.Run("send", func(t *testing.T) {
		r := newRing(64)
		go func() {
			for off := uint64(0); off < total; {
				a, b := r.writeSpace()
				n := min(len(a)+len(b), int(total-off))
				for i := range n {
					if i < len(a) {
						a[i] = pattern(off + uint64(i))
					} else {
						b[i-len(a)] = pattern(off + uint64(i))
					}
				}
				// What a shrink left over is still in the slices.
				rest := append(append([]byte(nil), a...), b...)[:n]
				for m := r.commit(n); m < n; runtime.Gosched() {
					m += r.Write(rest[m:])
				}
				off += uint64(n)
				if n == 0 {
					runtime.Gosched()
				}
			}
		}()
		rng := rand.New(rand.NewPCG(9, 10))
		got := make([]byte, 512)
		resized := 0
		for off := uint64(0); off < total; {
			if rng.IntN(4) == 0 {
				if size := sizes[rng.IntN(len(sizes))]; size >= r.Len() && r.resize(size, 0) {
					resized++
				}
			}
			n := r.Read(got[:rng.IntN(len(got))+1])
			for i := range n {
				require.Equal(t, pattern(off+uint64(i)), got[i], "byte %d", off+uint64(i))
			}
			off += uint64(n)
			if n == 0 {
				runtime.Gosched()
			}
		}
		require.Positive(t, resized)
	})
	t.Run("recv", func(t *testing.T) {
		b := &recvBuffer{ring: newRing(64)}
		done := make(chan error, 1)
		go func() {
			for off := uint64(0); off < total; {
				s1, s2 := b.readSpace()
				for i, c := range append(s1, s2...) {
					if c != pattern(off+uint64(i)) {
						done <- fmt.Errorf("byte %d: %#x, want %#x", off+uint64(i), c, pattern(off+uint64(i)))
						return
					}
				}
				n := len(s1) + len(s2)
				b.Discard(n)
				off += uint64(n)
				if n == 0 {
					runtime.Gosched()
				}
			}
			done <- nil
		}()
		rng := rand.New(rand.NewPCG(11, 12))
		resized := 0
		p := make([]byte, 300)
		for off := uint64(0); off < total; {
			if rng.IntN(4) == 0 {
				if size := sizes[rng.IntN(len(sizes))]; size >= b.Len() && b.resize(size, 0) {
					resized++
				}
			}
			n := min(rng.IntN(len(p))+1, int(total-off))
			for i := range n {
				p[i] = pattern(off + uint64(i))
			}
			m, _ := b.Insert(0, p[:n])
			off += uint64(m)
			if m == 0 {
				runtime.Gosched()
			}
		}
		require.NoError(t, <-done)
		require.Positive(t, resized)
	})
}
