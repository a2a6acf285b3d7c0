package tcp

import (
	"math/bits"
	"sync/atomic"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// ring is a byte FIFO. head and tail are stream offsets that only grow
// (they would wrap at 2^56, never in practice), so the bytes held are
// tail-head and a byte's place is its offset modulo the buffer's size. The
// send buffer keeps what was written until it is acknowledged; the receive
// buffer also stores out-of-order data past tail, in place.
//
// It is a single-producer single-consumer ring: one goroutine moves tail
// (Write, Insert), one moves head (Read, Discard), and the atomic indexes
// order the bytes copied before them. So the app's goroutine may write
// the send ring and read the receive ring while the poller's goroutine
// does the other side.
//
// # Resizing under the other goroutine's feet
//
// The ring's size changes (auto-tuning, SO_RCVBUF and SO_SNDBUF, idle
// shrinking: autotune.go), always on the poller's goroutine, which is the
// receive ring's producer and the send ring's consumer, while the app's
// goroutine may be copying. resize never touches a buffer in use: it
// copies the bytes held into a new buffer and publishes that. The ring
// has two buffer slots, and tail's top byte is a generation whose parity
// names the slot that holds the bytes; resize fills the other slot, then
// moves tail to the next generation with a compare-and-swap. So:
//
//   - An app goroutine reads tail first and then the buffer of tail's
//     generation. If it saw the new generation, the slot's store came
//     before (atomics are sequentially consistent in Go) and it reads the
//     new buffer. If it saw the old one, it reads the old buffer (or, if
//     a second resize has since refilled that slot, the newest): every
//     buffer ever published holds the bytes [head, tail) for any head the
//     reader may still have, since resize copies from the head it saw and
//     the reader's head only grows. The old buffer is never written again
//     and stays alive while a reader holds it.
//   - The app as the send ring's producer (Write) publishes its bytes by
//     a compare-and-swap of tail from the value it read: if resize moved
//     tail to the next generation meanwhile, the swap fails and Write
//     copies the bytes again into the new buffer. Its copy into the old
//     one went past tail, where no reader looks. If Write published
//     first, resize's swap fails and resize gives up (the poller tries
//     again later); a resize never spins and neither side ever waits.
//   - On the receive ring the poller is the producer: resize's swap
//     cannot fail, and it also copies the out-of-order bytes past tail,
//     which only the poller touches.
//
// A stale reader could be fooled only if 256 resizes (the generation's
// range) happened while it held one tail value; resizes come at most a
// few per round trip, and only when a buffer grows, shrinks or is pinned.
type ring struct {
	head atomic.Uint64
	// tail is the generation << genShift | the stream offset.
	tail  atomic.Uint64
	bufs  [2]atomic.Pointer[[]byte]
	limit atomic.Int64 // the room offered, SO_RCVBUF or SO_SNDBUF within the buffer's size; 0: the whole buffer
	// The producer's own, between writeSpace and commit: the tail value
	// and the buffer the space was taken from.
	spaceTail uint64
	spaceBuf  []byte
}

const (
	genShift = 56
	offMask  = 1<<genShift - 1
)

// offset is the stream offset of a tail value; bufFor its buffer.
func offset(tv uint64) uint64 { return tv & offMask }

func (r *ring) bufFor(tv uint64) []byte { return *r.bufs[(tv>>genShift)&1].Load() }

// newRing returns a ring of at least capacity bytes (a power of two).
func newRing(capacity int) *ring { return newRingSize(roundPow2(capacity)) }

// newRingSize returns a ring of exactly size bytes.
func newRingSize(size int) *ring {
	r := &ring{}
	b := make([]byte, size)
	r.bufs[0].Store(&b)
	r.bufs[1].Store(&b)
	return r
}

// roundPow2 is the smallest power of two at least n (and at least 1).
func roundPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// end is tail's stream offset: one past the last in-order byte.
func (r *ring) end() uint64 { return offset(r.tail.Load()) }

// Len is the number of bytes held.
func (r *ring) Len() int { return int(r.end() - r.head.Load()) }

// size is the allocated size.
func (r *ring) size() int { return len(r.bufFor(r.tail.Load())) }

// Cap is the capacity: the allocated size, or the limit set below it.
func (r *ring) Cap() int { return r.capOf(r.bufFor(r.tail.Load())) }

func (r *ring) capOf(b []byte) int {
	if l := int(r.limit.Load()); l > 0 {
		return min(l, len(b))
	}
	return len(b)
}

// Free is the room left.
func (r *ring) Free() int { return max(0, r.Cap()-r.Len()) }

// Write appends as much of p as fits and returns how much. See the type's
// doc for why it may copy twice.
func (r *ring) Write(p []byte) int {
	for {
		tv := r.tail.Load()
		b := r.bufFor(tv)
		n := min(len(p), r.capOf(b)-int(offset(tv)-r.head.Load()))
		if n <= 0 {
			return 0
		}
		copyIn(b, offset(tv), p[:n])
		if r.tail.CompareAndSwap(tv, tv+uint64(n)) {
			return n
		}
	}
}

// writeSpace returns the room past tail as up to two slices of the
// buffer (the second is what wraps to its start), for the producer to
// fill a prefix of (a first) and publish with commit. Nobody else
// touches them, and they stay the producer's until commit, even if a
// resize swaps the buffer meanwhile.
func (r *ring) writeSpace() (a, b []byte) {
	tv := r.tail.Load()
	buf := r.bufFor(tv)
	n := r.capOf(buf) - int(offset(tv)-r.head.Load())
	if n <= 0 {
		return nil, nil
	}
	r.spaceTail, r.spaceBuf = tv, buf
	i := int(offset(tv) % uint64(len(buf)))
	c := min(n, len(buf)-i)
	return buf[i : i+c : i+c], buf[: n-c : n-c]
}

// commit publishes the first n bytes the producer wrote into the last
// writeSpace's slices, as Write does: if a resize moved tail to a new
// buffer meanwhile, the compare-and-swap fails and commit copies the
// bytes into the new buffer, and then publishes as many as its room
// takes (a shrink may leave less). It returns how many it published;
// the rest are still in the slices, the caller's to write again.
func (r *ring) commit(n int) int {
	tv, old := r.spaceTail, r.spaceBuf
	r.spaceBuf = nil // the old buffer may go
	for n > 0 && !r.tail.CompareAndSwap(tv, tv+uint64(n)) {
		tv = r.tail.Load()
		b := r.bufFor(tv)
		n = min(n, r.capOf(b)-int(offset(tv)-r.head.Load()))
		copyRing(b, old, offset(tv), max(n, 0))
		old = b
	}
	return max(n, 0)
}

// readSpace returns the bytes held as up to two slices of the buffer
// (the second is what wraps to its start), for the consumer to use and
// then drop with Discard. They stay valid until then: the producer
// writes only past tail, and a resize copies them to a new buffer and
// leaves the old one as it was.
func (r *ring) readSpace() (a, b []byte) {
	tv := r.tail.Load()
	head := r.head.Load()
	n := int(offset(tv) - head)
	if n <= 0 {
		return nil, nil
	}
	buf := r.bufFor(tv)
	i := int(head % uint64(len(buf)))
	c := min(n, len(buf)-i)
	return buf[i : i+c : i+c], buf[: n-c : n-c]
}

// copyRing copies n bytes from stream offset at on, from src to dst,
// two rings' buffers of any sizes that both hold them.
func copyRing(dst, src []byte, at uint64, n int) {
	i := int(at % uint64(len(src)))
	c := min(n, len(src)-i)
	copyIn(dst, at, src[i:i+c])
	copyIn(dst, at+uint64(c), src[:n-c])
}

// copyIn copies p to b at stream offset at, which must lie within the
// ring's window [head, head+len(b)).
func copyIn(b []byte, at uint64, p []byte) {
	if len(p) == 0 {
		return
	}
	i := at % uint64(len(b))
	n := copy(b[i:], p)
	copy(b, p[n:])
}

// copyOut copies b's bytes from stream offset at into p, which must not
// be longer than b.
func copyOut(p, b []byte, at uint64) {
	if len(p) == 0 {
		return
	}
	i := at % uint64(len(b))
	c := copy(p, b[i:])
	copy(p[c:], b)
}

// Peek copies into p the bytes from off bytes past head on, up to tail,
// and returns how many.
func (r *ring) Peek(off int, p []byte) int {
	tv := r.tail.Load()
	head := r.head.Load()
	n := max(0, min(len(p), int(offset(tv)-head)-off))
	copyOut(p[:n], r.bufFor(tv), head+uint64(off))
	return n
}

// PeekSum is Peek that also returns the Internet checksum's partial sum
// of the bytes, computed while copying them (wire.CopySum).
func (r *ring) PeekSum(off int, p []byte) (int, uint32) {
	tv := r.tail.Load()
	head := r.head.Load()
	n := max(0, min(len(p), int(offset(tv)-head)-off))
	if n == 0 {
		return 0, 0
	}
	b := r.bufFor(tv)
	i := int((head + uint64(off)) % uint64(len(b)))
	c := min(n, len(b)-i)
	sum := wire.CopySum(p[:c], b[i:i+c], 0)
	if c < n {
		s2 := wire.Fold(wire.CopySum(p[c:n], b[:n-c], 0))
		if c%2 == 1 {
			// The second part starts at an odd offset: its bytes sit in
			// the other halves of the 16-bit words (RFC 1071 2(B)).
			s2 = uint32(bits.ReverseBytes16(uint16(s2)))
		}
		sum += s2
	}
	return n, sum
}

// Read moves up to len(p) bytes out of the ring.
func (r *ring) Read(p []byte) int {
	n := r.Peek(0, p)
	r.head.Add(uint64(n))
	return n
}

// Discard drops the oldest n bytes (n <= Len).
func (r *ring) Discard(n int) { r.head.Add(uint64(n)) }

// resize moves the bytes held, and past more bytes beyond tail, into a
// new buffer of size bytes, on the poller's goroutine; it reports false
// if they do not fit or a concurrent Write published first (see the
// type's doc). The limit is the caller's to set.
func (r *ring) resize(size, past int) bool {
	tv := r.tail.Load()
	head := r.head.Load()
	old := r.bufFor(tv)
	n := int(offset(tv)-head) + past
	if n > size {
		return false // a Write came since the caller looked
	}
	b := make([]byte, size)
	copyRing(b, old, head, n)
	slot := &r.bufs[(tv>>genShift+1)&1]
	prev := slot.Load()
	slot.Store(&b)
	if r.tail.CompareAndSwap(tv, tv+1<<genShift) {
		return true
	}
	slot.Store(prev)
	return false
}

// bufferPool keeps the rings of ended connections for new ones, up to
// maxPooled of each.
type bufferPool struct {
	snd []*ring
	rcv []*recvBuffer
}

const maxPooled = 64

func (p *bufferPool) get(cfg *Config) (*ring, *recvBuffer) {
	if n := len(p.snd); n > 0 {
		s, r := p.snd[n-1], p.rcv[n-1]
		p.snd[n-1], p.rcv[n-1] = nil, nil
		p.snd, p.rcv = p.snd[:n-1], p.rcv[:n-1]
		return s, r
	}
	return newRing(cfg.SendBuffer), &recvBuffer{ring: newRing(cfg.RecvBuffer)}
}

// put empties s and r and keeps them, unless the pool is full or they
// are not of cfg's initial sizes (grown or pinned: they go, and their
// memory with them).
func (p *bufferPool) put(cfg *Config, s *ring, r *recvBuffer) {
	if len(p.snd) == maxPooled || s == noBuffer || r == noRecvBuffer ||
		s.size() != roundPow2(cfg.SendBuffer) || r.size() != roundPow2(cfg.RecvBuffer) {
		return
	}
	s.reset()
	r.reset()
	r.ooo.n = 0
	p.snd, p.rcv = append(p.snd, s), append(p.rcv, r)
}

// reset empties the ring and lifts its limit; its old bytes stay but lie
// outside [head, tail), so no reader sees them.
func (r *ring) reset() {
	r.head.Store(r.end())
	r.limit.Store(0)
}

// maxOutOfOrder bounds the disjoint ranges a spanSet holds: those the
// receive buffer tracks past its in-order end, and those of the SACK
// scoreboard (sack.go). The received bytes live in the ring itself, so
// memory is bounded by the ring; the count bounds the work and the
// memory per segment (ranges are found by binary search, an insertion
// moves those above it: 16 bytes each).
//
// It was 16: a flight of a few thousand segments through a drop-tail
// queue overrun in slow start leaves hundreds of holes, and every
// segment past the 16th range was dropped, to be resent. In the 100
// Mbit/s, 50 ms simulation with a 4 MiB send buffer that was 808 of
// 1,161 retransmissions (353 frames lost). Linux's out-of-order queue
// is bounded by memory alone.
const maxOutOfOrder = 1024

// minSpans is the first size of a set's array, which grows by doubling
// up to maxOutOfOrder: a connection without holes holds none.
const minSpans = 16

// span is a range of stream offsets [start, end).
type span struct{ start, end uint64 }

// spanSet is a bounded set of ranges, sorted, disjoint and not touching:
// s[:n].
type spanSet struct {
	s []span
	n int
}

// spans are the ranges, lowest first.
func (ss *spanSet) spans() []span { return ss.s[:ss.n] }

// above is the index of the first range that ends at or past off.
func (ss *spanSet) above(off uint64) int {
	lo, hi := 0, ss.n
	for lo < hi {
		m := (lo + hi) / 2
		if ss.s[m].end < off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// add merges s into the set, or reports false when that needs a range
// more than the set holds.
func (ss *spanSet) add(s span) bool {
	// Ranges that s overlaps or touches: s[i:j].
	i := ss.above(s.start)
	j := i
	for j < ss.n && ss.s[j].start <= s.end {
		s.start, s.end = min(s.start, ss.s[j].start), max(s.end, ss.s[j].end)
		j++
	}
	if i == j && ss.n == len(ss.s) {
		if len(ss.s) == maxOutOfOrder {
			return false
		}
		grown := make([]span, max(minSpans, 2*len(ss.s)))
		copy(grown, ss.s[:ss.n])
		ss.s = grown
	}
	// Replace s[i:j] by s.
	n := copy(ss.s[i+1:], ss.s[j:ss.n])
	ss.s[i] = s
	ss.n = i + 1 + n
	return true
}

// drop removes the first n ranges.
func (ss *spanSet) drop(n int) {
	copy(ss.s, ss.s[n:ss.n])
	ss.n -= n
}

// bytesBelow is how many bytes the set holds below offset off.
func (ss *spanSet) bytesBelow(off uint64) uint64 {
	var n uint64
	for _, s := range ss.spans() {
		if s.start >= off {
			break
		}
		n += min(s.end, off) - s.start
	}
	return n
}

// covers reports whether one range holds all of s.
func (ss *spanSet) covers(s span) bool {
	i := ss.find(s.start)
	return i >= 0 && s.end <= ss.s[i].end
}

// find returns the index of the range that holds off, or -1.
func (ss *spanSet) find(off uint64) int {
	if i := ss.above(off + 1); i < ss.n && ss.s[i].start <= off {
		return i
	}
	return -1
}

// recvBuffer is the receive buffer: in-order bytes for the app in the
// ring, and out-of-order ones stored at their place past tail, recorded in
// ooo.
type recvBuffer struct {
	*ring
	ooo spanSet
}

// Insert stores p at off bytes past the in-order end. Bytes beyond the
// ring's capacity are cut. It returns how many bytes became in order (p's
// own if off is 0, and any out-of-order ones they joined), and false if p
// was dropped because it would need one more out-of-order range than the
// buffer tracks.
func (b *recvBuffer) Insert(off int, p []byte) (int, bool) {
	tv := b.tail.Load()
	buf := b.bufFor(tv)
	tail := offset(tv)
	start := tail + uint64(off)
	end := min(start+uint64(len(p)), b.head.Load()+uint64(b.capOf(buf)))
	if end <= start {
		return 0, true
	}
	if off > 0 && !b.ooo.add(span{start, end}) {
		return 0, false
	}
	copyIn(buf, start, p[:end-start])
	if off > 0 {
		return 0, true
	}
	tail = end
	// Out-of-order ranges the new bytes reached join the in-order data.
	i := 0
	for ; i < b.ooo.n && b.ooo.s[i].start <= tail; i++ {
		tail = max(tail, b.ooo.s[i].end)
	}
	b.ooo.drop(i)
	b.tail.Store(tv&^offMask | tail) // publishes the bytes to the reader
	return int(tail - start), true
}

// OutOfOrder returns the bytes held past the in-order end.
func (b *recvBuffer) OutOfOrder() int {
	n := 0
	for _, s := range b.ooo.spans() {
		n += int(s.end - s.start)
	}
	return n
}

// past is the extent of the out-of-order data: from tail to the end of
// its last range.
func (b *recvBuffer) past() int {
	if b.ooo.n == 0 {
		return 0
	}
	return int(b.ooo.s[b.ooo.n-1].end - b.end())
}
