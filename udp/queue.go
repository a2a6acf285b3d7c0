package udp

import (
	"net/netip"
	"sync/atomic"
)

// queue is a bounded FIFO of datagrams: a ring of records (peer address and
// length) and a ring of payload bytes, both preallocated on first use, so
// that queueing and dequeueing allocate nothing in steady state. A datagram
// may wrap around the end of the byte ring; it is copied in two pieces.
//
// One side produces (push) and the other consumes (front, copyFront, pop).
// Each side writes only its own pair of counters, which only grow; the
// other side only reads them, atomically: a single-producer,
// single-consumer ring, so an app goroutine may be one side and the poller
// the other (Stream). The record is written before the producer's
// counters and read after them, so the atomics order it.
type queue struct {
	maxBytes, maxDatagrams int
	// limit is the byte bound fits applies, at most maxBytes: the
	// socket's SO_RCVBUF or SO_SNDBUF (Stream.SetRecvBuffer), set by the
	// app while the poller checks it.
	limit atomic.Int64
	recs  []record // nil until the first push; then maxDatagrams long
	buf   []byte   // nil until the first push; then maxBytes long

	// Producer's counters: datagrams and bytes ever pushed.
	recWr, byteWr atomic.Uint64
	// Consumer's counters: datagrams and bytes ever popped.
	recRd, byteRd atomic.Uint64
}

// record is one queued datagram: the peer (source on receive, destination
// on send) and the payload length. It holds no pointers, so the record ring
// costs the garbage collector nothing.
type record struct {
	addr [4]byte
	port uint16
	n    uint32
}

func newQueue(maxBytes, maxDatagrams int) *queue {
	q := &queue{maxBytes: maxBytes, maxDatagrams: maxDatagrams}
	q.limit.Store(int64(maxBytes))
	return q
}

// alloc allocates the rings, if not yet: before two goroutines share the
// queue, since the lazy allocation in push would race with the consumer.
func (q *queue) alloc() {
	if q.buf == nil {
		q.buf = make([]byte, q.maxBytes)
		q.recs = make([]record, q.maxDatagrams)
	}
}

// fits reports whether a datagram of n payload bytes can be pushed now:
// both the datagram limit and the ring's bytes hold after it, exactly,
// and so does the byte limit, except that an empty queue takes one
// datagram over it, as Linux's socket buffers do (a datagram larger than
// SO_RCVBUF or SO_SNDBUF still passes alone, rather than never).
func (q *queue) fits(n int) bool {
	used := q.byteWr.Load() - q.byteRd.Load()
	return q.recWr.Load()-q.recRd.Load() < uint64(q.maxDatagrams) &&
		used+uint64(n) <= uint64(q.maxBytes) &&
		(used == 0 || used+uint64(n) <= uint64(q.limit.Load()))
}

// setLimit sets the byte limit, within 1 and the ring's size.
func (q *queue) setLimit(n int) { q.limit.Store(int64(min(max(n, 1), q.maxBytes))) }

// push appends a datagram from peer with payload p. The caller checked fits.
func (q *queue) push(peer netip.AddrPort, p []byte) {
	q.alloc()
	bw, rw := q.byteWr.Load(), q.recWr.Load()
	at := int(bw % uint64(q.maxBytes))
	if c := copy(q.buf[at:], p); c < len(p) {
		copy(q.buf, p[c:])
	}
	q.recs[rw%uint64(len(q.recs))] = record{addr: peer.Addr().As4(), port: peer.Port(), n: uint32(len(p))}
	q.byteWr.Store(bw + uint64(len(p)))
	q.recWr.Store(rw + 1) // publishes the record and bytes
}

// empty reports whether no datagram is queued.
func (q *queue) empty() bool { return q.recWr.Load() == q.recRd.Load() }

// datagrams and bytes are the queue's occupancy.
func (q *queue) datagrams() int { return int(q.recWr.Load() - q.recRd.Load()) }
func (q *queue) bytes() int     { return int(q.byteWr.Load() - q.byteRd.Load()) }

// front returns the oldest datagram's peer and payload length. The queue
// must not be empty.
func (q *queue) front() (netip.AddrPort, int) {
	r := q.recs[q.recRd.Load()%uint64(len(q.recs))]
	return netip.AddrPortFrom(netip.AddrFrom4(r.addr), r.port), int(r.n)
}

// copyFront copies the oldest datagram's payload into p, as much as fits,
// and returns the number of bytes copied and the payload's length. The
// queue must not be empty.
func (q *queue) copyFront(p []byte) (copied, size int) {
	_, size = q.front()
	p = p[:min(size, len(p))]
	at := int(q.byteRd.Load() % uint64(q.maxBytes))
	if c := copy(p, q.buf[at:]); c < len(p) {
		copy(p[c:], q.buf)
	}
	return len(p), size
}

// pop removes the oldest datagram. The queue must not be empty.
func (q *queue) pop() {
	_, n := q.front()
	q.byteRd.Add(uint64(n))
	q.recRd.Add(1) // frees the slot for the producer
}
