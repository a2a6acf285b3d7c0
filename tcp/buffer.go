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
	r.nooo = 0
	p.snd, p.rcv = append(p.snd, s), append(p.rcv, r)
}

// reset empties the ring and lifts its limit; its old bytes stay but lie
// outside [head, tail), so no reader sees them.
func (r *ring) reset() {
	r.head.Store(r.tail.Load())
	r.limit.Store(0)
}

// maxOutOfOrder bounds the disjoint ranges the receive buffer tracks past
// its in-order end. Their bytes live in the ring itself, so memory is
// bounded by the ring; the count bounds the work per segment.
const maxOutOfOrder = 16

// span is a range of stream offsets [start, end).
type span struct{ start, end uint64 }

// recvBuffer is the receive buffer: in-order bytes for the app in the
// ring, and out-of-order ones stored at their place past tail, recorded in
// ooo (sorted, disjoint, not touching).
type recvBuffer struct {
	*ring
	ooo  [maxOutOfOrder]span
	nooo int
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
	if off > 0 && !b.addRange(span{start, end}) {
		return 0, false
	}
	b.copyIn(start, p[:end-start])
	if off > 0 {
		return 0, true
	}
	tail = end
	// Out-of-order ranges the new bytes reached join the in-order data.
	i := 0
	for ; i < b.nooo && b.ooo[i].start <= tail; i++ {
		tail = max(tail, b.ooo[i].end)
	}
	b.dropRanges(i)
	b.tail.Store(tail) // publishes the bytes to the reader
	return int(tail - start), true
}

// addRange merges s into the out-of-order ranges, or reports false when
// that needs a range more than the limit.
func (b *recvBuffer) addRange(s span) bool {
	// Ranges that s overlaps or touches: ooo[i:j].
	i := 0
	for i < b.nooo && b.ooo[i].end < s.start {
		i++
	}
	j := i
	for j < b.nooo && b.ooo[j].start <= s.end {
		s.start, s.end = min(s.start, b.ooo[j].start), max(s.end, b.ooo[j].end)
		j++
	}
	if i == j && b.nooo == maxOutOfOrder {
		return false
	}
	// Replace ooo[i:j] by s.
	n := copy(b.ooo[i+1:], b.ooo[j:b.nooo])
	b.ooo[i] = s
	b.nooo = i + 1 + n
	return true
}

// dropRanges removes the first n ranges.
func (b *recvBuffer) dropRanges(n int) {
	copy(b.ooo[:], b.ooo[n:b.nooo])
	b.nooo -= n
}

// OutOfOrder returns the bytes held past the in-order end.
func (b *recvBuffer) OutOfOrder() int {
	n := 0
	for _, s := range b.ooo[:b.nooo] {
		n += int(s.end - s.start)
	}
	return n
}
