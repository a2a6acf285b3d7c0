package tcp

import (
	"math/bits"
	"sync/atomic"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// ring is a byte FIFO over a power-of-two array. head and tail are stream
// offsets that only grow (they wrap at 2^64, never in practice), so the
// bytes held are tail-head and a byte's place is its offset masked. The
// send buffer keeps what was written until it is acknowledged; the receive
// buffer also stores out-of-order data past tail, in place.
//
// It is a single-producer single-consumer ring: one goroutine moves tail
// (Write, Insert), one moves head (Read, Discard), and the atomic indexes
// order the bytes copied before them. So the app's goroutine may write
// the send ring and read the receive ring while the poller's goroutine
// does the other side.
type ring struct {
	buf        []byte
	head, tail atomic.Uint64
	// limit is the room the ring offers, at most len(buf): SO_RCVBUF
	// and SO_SNDBUF within the allocated size. Zero means len(buf).
	limit atomic.Int64
}

// newRing returns a ring of at least capacity bytes (a power of two).
func newRing(capacity int) *ring { return &ring{buf: make([]byte, roundPow2(capacity))} }

// roundPow2 is the smallest power of two at least n (and at least 1).
func roundPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// Len is the number of bytes held.
func (r *ring) Len() int { return int(r.tail.Load() - r.head.Load()) }

// Cap is the capacity: the allocated size, or the limit set below it.
func (r *ring) Cap() int {
	if l := int(r.limit.Load()); l > 0 {
		return l
	}
	return len(r.buf)
}

// Free is the room left.
func (r *ring) Free() int { return max(0, r.Cap()-r.Len()) }

// setLimit sets the room the ring offers, clamped to its size.
func (r *ring) setLimit(n int) { r.limit.Store(int64(max(1, min(n, len(r.buf))))) }

// Write appends as much of p as fits and returns how much.
func (r *ring) Write(p []byte) int {
	n := min(len(p), r.Free())
	tail := r.tail.Load()
	r.copyIn(tail, p[:n])
	r.tail.Store(tail + uint64(n))
	return n
}

// copyIn copies p to stream offset at, which must lie within the ring's
// window [head, head+cap).
func (r *ring) copyIn(at uint64, p []byte) {
	mask := uint64(len(r.buf) - 1)
	i := at & mask
	n := copy(r.buf[i:], p)
	copy(r.buf, p[n:])
}

// Peek copies into p the bytes from off bytes past head on, up to tail,
// and returns how many.
func (r *ring) Peek(off int, p []byte) int {
	n := max(0, min(len(p), r.Len()-off))
	mask := uint64(len(r.buf) - 1)
	i := (r.head.Load() + uint64(off)) & mask
	c := copy(p[:n], r.buf[i:])
	copy(p[c:n], r.buf)
	return n
}

// PeekSum is Peek that also returns the Internet checksum's partial sum
// of the bytes, computed while copying them (wire.CopySum).
func (r *ring) PeekSum(off int, p []byte) (int, uint32) {
	n := max(0, min(len(p), r.Len()-off))
	mask := uint64(len(r.buf) - 1)
	i := (r.head.Load() + uint64(off)) & mask
	c := min(n, len(r.buf)-int(i))
	sum := wire.CopySum(p[:c], r.buf[i:int(i)+c], 0)
	if c < n {
		s2 := wire.Fold(wire.CopySum(p[c:n], r.buf[:n-c], 0))
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

// put empties s and r and keeps them, unless the pool is full.
func (p *bufferPool) put(s *ring, r *recvBuffer) {
	if len(p.snd) == maxPooled || s == noBuffer || r == noRecvBuffer {
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
	r.head.Store(r.tail.Load())
	r.limit.Store(0)
}

// maxOutOfOrder bounds the disjoint ranges a spanSet holds: those the
// receive buffer tracks past its in-order end, and those of the SACK
// scoreboard (sack.go). The received bytes live in the ring itself, so
// memory is bounded by the ring; the count bounds the work per segment.
const maxOutOfOrder = 16

// span is a range of stream offsets [start, end).
type span struct{ start, end uint64 }

// spanSet is a bounded set of ranges, sorted, disjoint and not touching.
type spanSet struct {
	s [maxOutOfOrder]span
	n int
}

// spans are the ranges, lowest first.
func (ss *spanSet) spans() []span { return ss.s[:ss.n] }

// add merges s into the set, or reports false when that needs a range
// more than the set holds.
func (ss *spanSet) add(s span) bool {
	// Ranges that s overlaps or touches: s[i:j].
	i := 0
	for i < ss.n && ss.s[i].end < s.start {
		i++
	}
	j := i
	for j < ss.n && ss.s[j].start <= s.end {
		s.start, s.end = min(s.start, ss.s[j].start), max(s.end, ss.s[j].end)
		j++
	}
	if i == j && ss.n == len(ss.s) {
		return false
	}
	// Replace s[i:j] by s.
	n := copy(ss.s[i+1:], ss.s[j:ss.n])
	ss.s[i] = s
	ss.n = i + 1 + n
	return true
}

// drop removes the first n ranges.
func (ss *spanSet) drop(n int) {
	copy(ss.s[:], ss.s[n:ss.n])
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
	for i, s := range ss.spans() {
		if s.start <= off && off < s.end {
			return i
		}
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
	tail := b.tail.Load()
	start := tail + uint64(off)
	end := min(start+uint64(len(p)), b.head.Load()+uint64(len(b.buf)))
	if end <= start {
		return 0, true
	}
	if off > 0 && !b.ooo.add(span{start, end}) {
		return 0, false
	}
	b.copyIn(start, p[:end-start])
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
	b.tail.Store(tail) // publishes the bytes to the reader
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
