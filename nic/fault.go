package nic

import (
	"fmt"
	"math/rand/v2"
	"net"
	"time"
)

// FaultConfig says how Faulty impairs the frames it transmits. Probabilities
// are per frame, in [0, 1]; the zero value impairs nothing.
type FaultConfig struct {
	// Seed seeds the PCG generator behind every decision: the same seed and
	// the same calls replay exactly the same impairments.
	Seed uint64

	// Loss is the probability that a frame is dropped.
	Loss float64
	// Drop, if set, sees every frame first (its bytes, Ethernet header
	// on) and drops those it returns true for, counted in Dropped: a
	// test's scripted loss of one chosen segment. A frame it drops draws
	// no random number.
	Drop func(frame []byte) bool
	// Duplicate is the probability that a frame is sent twice. The copy
	// follows the original at once, with the same bytes (including any
	// corruption); it needs a spare buffer of the inner link and is skipped
	// when there is none.
	Duplicate float64
	// Reorder is the probability that a frame is held ReorderDelay longer
	// than its delay, so that frames sent after it overtake it.
	Reorder float64
	// ReorderDelay is how long a reordered frame is held back; default 1ms.
	ReorderDelay time.Duration
	// Corrupt is the probability that one bit of a frame is flipped.
	Corrupt float64
	// CorruptFrom is the first byte a flip may hit. 0 includes the
	// Ethernet header, as noise on a wire would; EthernetHeaderLen spares
	// it, so that every corrupted frame reaches the IP and transport
	// checksums instead of being dropped by MAC or ethertype filtering.
	// A frame no longer than CorruptFrom is left intact.
	CorruptFrom int

	// Delay holds every frame for Delay plus a jitter drawn uniformly from
	// [0, Jitter]. Jitter alone never reorders: a frame leaves no earlier
	// than the frame sent before it (reordering is Reorder's job). Behind
	// a bottleneck (Rate) Delay is the propagation delay, counted from the
	// end of a frame's serialization: a path of round-trip time RTT is
	// Delay = RTT/2 on each end.
	Delay, Jitter time.Duration

	// Rate makes the link a bottleneck of Rate bits per second: frames
	// are serialized one after another, each taking len(Data)*8/Rate
	// (Ethernet frame bytes; no preamble or gap), and wait their turn in
	// a FIFO queue. Zero is no bottleneck. Loss and corruption are
	// decided before the queue; delay, jitter and reordering after it (a
	// duplicate follows its original without taking link time).
	Rate int64
	// QueueBytes and QueuePackets bound the bottleneck's queue, counting
	// the frame being serialized; a frame that would exceed either is
	// dropped (tail drop) and counted in TailDrops. Zero is no bound of
	// that kind; with neither set the queue is bounded by MaxHeld only.
	QueueBytes, QueuePackets int

	// MaxHeld caps the frames held for delay, reordering or a bottleneck's
	// queue; a frame that
	// would exceed it is dropped and counted in Overflowed. Held frames
	// are the inner link's transmit buffers, so keep it below the inner
	// link's pool. Default 1024.
	MaxHeld int

	// Now reads a monotonic clock; held frames leave when it passes their
	// due time. Default: time since NewFaulty. Tests pass a virtual clock.
	Now func() time.Duration
}

// FaultStats counts what a Faulty did.
type FaultStats struct {
	Dropped    uint64 // frames lost on purpose (Loss)
	Duplicated uint64 // extra copies sent (Duplicate)
	Reordered  uint64 // frames held back to be overtaken (Reorder)
	Corrupted  uint64 // frames with one bit flipped (Corrupt)
	Delayed    uint64 // frames held for a delay above zero (Delay, Jitter)
	Overflowed uint64 // frames dropped because MaxHeld frames were held
	Held       uint64 // frames held now
	// LinkDown counts frames dropped while SetDown held the link down.
	LinkDown uint64
	// TailDrops counts frames dropped because the bottleneck's queue was
	// full (Rate, QueueBytes, QueuePackets).
	TailDrops uint64
	// Queued and QueuedBytes are the frames in the bottleneck's queue
	// now (the one being serialized included), and MaxQueuedBytes the
	// most bytes it ever held.
	Queued, QueuedBytes, MaxQueuedBytes uint64
}

// Faulty is a Link that impairs the frames transmitted through it, for tests
// of how a stack copes with a bad network: loss, duplication, reordering,
// bit errors, delay and a bottleneck of a fixed rate, each decided by a seeded generator so that a failing
// run can be replayed. It impairs egress only; to impair both directions of
// a two-stack test, wrap both ends.
//
// Frames that must wait (delay, reordering, or an inner link that refused
// them) are held in order of due time, and leave on the first Transmit,
// Receive or Flush at or after it. Receive, Alloc and Release pass
// through to the inner link. Like any Link it is not safe for concurrent use.
type Faulty struct {
	inner   Link
	cfg     FaultConfig
	rng     *rand.Rand
	held    heldQueue
	seq     uint64 // order of arrival, to keep equal due times FIFO
	lastDue time.Duration
	batch   []Frame // frames due now, on their way to the inner link
	one     [1]Frame
	stats   FaultStats
	queue   bottleneck
	down    bool
	closed  bool
}

// faultBatch is how many due frames are passed to the inner Transmit at
// once.
const faultBatch = 64

// NewFaulty wraps inner. It panics on a configuration that makes no sense (a
// probability outside [0, 1], a negative duration or size), since that is a
// bug in the test that builds it.
func NewFaulty(inner Link, cfg FaultConfig) *Faulty {
	for _, p := range []float64{cfg.Loss, cfg.Duplicate, cfg.Reorder, cfg.Corrupt} {
		if !(p >= 0 && p <= 1) {
			panic(fmt.Sprintf("nic: FaultConfig probability %v outside [0, 1]", p))
		}
	}
	if cfg.ReorderDelay < 0 || cfg.Delay < 0 || cfg.Jitter < 0 || cfg.MaxHeld < 0 || cfg.CorruptFrom < 0 ||
		cfg.Rate < 0 || cfg.QueueBytes < 0 || cfg.QueuePackets < 0 {
		panic(fmt.Sprintf("nic: invalid FaultConfig %+v", cfg))
	}
	if cfg.ReorderDelay == 0 {
		cfg.ReorderDelay = time.Millisecond
	}
	cfg.MaxHeld = orDefault(cfg.MaxHeld, 1024)
	if cfg.Now == nil {
		start := time.Now()
		cfg.Now = func() time.Duration { return time.Since(start) }
	}
	return &Faulty{
		inner: inner,
		cfg:   cfg,
		// PCG's second word is a stream selector; a constant keeps the
		// whole run a function of Seed alone.
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x786470_6e6574)),
		held:  newHeldQueue(cfg.MaxHeld),
		batch: make([]Frame, 0, faultBatch),
		queue: newBottleneck(cfg),
	}
}

// SetDown takes the link down or brings it back up, as a flap of its
// interface: while down, Transmit drops every frame it is given (counted in
// LinkDown) and returns ErrLinkDown; frames already held wait until it is
// up again. Receive still delivers what arrives.
func (f *Faulty) SetDown(down bool) { f.down = down }

// Transmit impairs each frame, then sends every frame that is due. It takes
// all of fs (n is len(fs)); an error is ErrLinkDown (see SetDown) or the
// inner link's.
func (f *Faulty) Transmit(fs []Frame) (int, error) {
	if f.closed {
		return 0, ErrClosed
	}
	if f.down {
		f.stats.LinkDown += uint64(len(fs))
		f.inner.Release(fs)
		return len(fs), ErrLinkDown
	}
	now := f.cfg.Now()
	if err := f.sendDue(now); err != nil {
		return 0, err
	}
	for _, fr := range fs {
		f.impair(fr, now)
	}
	return len(fs), f.sendDue(now)
}

// impair decides one frame's fate and queues what is left of it.
func (f *Faulty) impair(fr Frame, now time.Duration) {
	c := &f.cfg
	if (c.Drop != nil && c.Drop(fr.Data)) || f.chance(c.Loss) {
		f.stats.Dropped++
		f.release(fr)
		return
	}
	if f.chance(c.Corrupt) && len(fr.Data) > c.CorruptFrom {
		bit := f.rng.IntN((len(fr.Data) - c.CorruptFrom) * 8)
		fr.Data[c.CorruptFrom+bit/8] ^= 1 << (bit % 8)
		f.stats.Corrupted++
	}
	dup := f.chance(c.Duplicate)
	reorder := f.chance(c.Reorder)

	delay := c.Delay
	if c.Jitter > 0 {
		delay += time.Duration(f.rng.Int64N(int64(c.Jitter) + 1))
	}
	// The bottleneck draws no random number, so a seed replays the same
	// decisions with it or without it.
	sent, ok := f.queue.enqueue(len(fr.Data), now)
	if !ok {
		f.stats.TailDrops++
		f.release(fr)
		return
	}
	if delay > 0 {
		f.stats.Delayed++
	}
	due := max(sent+delay, f.lastDue)
	if reorder {
		// Not recorded in lastDue: the frames after this one must not
		// wait for it.
		due += c.ReorderDelay
		f.stats.Reordered++
	} else {
		f.lastDue = due
	}

	if !f.hold(fr, due, now, reorder) {
		f.queue.unqueueLast(len(fr.Data))
		return
	}
	if dup && f.inner.Alloc(f.one[:]) == 1 {
		cp := f.one[0]
		cp.Data = cp.Data[:copy(cp.Data, fr.Data)]
		if f.hold(cp, due, now, reorder) {
			f.stats.Duplicated++
		}
	}
}

// chance draws one decision of probability p. A zero probability draws
// nothing, so an impairment left off costs no time. (Replay needs the same
// configuration as well as the same seed.)
func (f *Faulty) chance(p float64) bool {
	return p > 0 && f.rng.Float64() < p
}

// hold queues fr until due; late says that due may be earlier than that of
// frames already held. When MaxHeld frames are held it first sends what is
// due, and drops fr if that frees nothing.
func (f *Faulty) hold(fr Frame, due, now time.Duration, late bool) bool {
	if f.held.full() {
		// An error here resurfaces on the next call that sends.
		_ = f.sendDue(now)
		if f.held.full() {
			f.stats.Overflowed++
			f.release(fr)
			return false
		}
	}
	f.held.push(heldFrame{due: due, seq: f.seq, f: fr}, late)
	f.seq++
	return true
}

// sendDue transmits held frames whose time has come, oldest due first. Frames
// the inner link refuses go back to the queue, in front, and wait for the
// next call.
func (f *Faulty) sendDue(now time.Duration) error {
	for !f.down && f.held.due(now) {
		f.batch = f.batch[:0]
		var popped [faultBatch]heldFrame
		for len(f.batch) < faultBatch && f.held.due(now) {
			popped[len(f.batch)] = f.held.pop()
			f.batch = append(f.batch, popped[len(f.batch)].f)
		}
		n, err := f.inner.Transmit(f.batch)
		for _, h := range popped[n:len(f.batch)] {
			f.held.push(h, true)
		}
		if err != nil || n < len(f.batch) {
			return err
		}
	}
	return nil
}

func (f *Faulty) release(fr Frame) {
	f.one[0] = fr
	f.inner.Release(f.one[:])
}

// Flush sends every held frame that is due now. Call it when nothing else
// would call Transmit or Receive, to let a delayed tail out.
func (f *Faulty) Flush() error {
	if f.closed {
		return ErrClosed
	}
	return f.sendDue(f.cfg.Now())
}

// Receive sends the held frames that are due, then receives from the inner
// link.
func (f *Faulty) Receive(fs []Frame) (int, error) {
	if f.closed {
		return 0, ErrClosed
	}
	serr := f.sendDue(f.cfg.Now())
	n, err := f.inner.Receive(fs)
	if err == nil {
		err = serr
	}
	return n, err
}

// Alloc lends transmit buffers of the inner link.
func (f *Faulty) Alloc(fs []Frame) int { return f.inner.Alloc(fs) }

// Release gives frames back to the inner link.
func (f *Faulty) Release(fs []Frame) { f.inner.Release(fs) }

// MAC is the inner link's hardware address.
func (f *Faulty) MAC() net.HardwareAddr { return f.inner.MAC() }

// MTU is the inner link's MTU.
func (f *Faulty) MTU() int { return f.inner.MTU() }

// Stats returns the inner link's counters: what really crossed it,
// duplicates included and losses excluded.
func (f *Faulty) Stats() Stats { return f.inner.Stats() }

// FaultStats returns what the injector did so far.
func (f *Faulty) FaultStats() FaultStats {
	s := f.stats
	s.Held = uint64(f.held.len())
	f.queue.advance(f.cfg.Now())
	s.Queued, s.QueuedBytes, s.MaxQueuedBytes = uint64(f.queue.size), uint64(f.queue.bytes), uint64(f.queue.maxBytesSeen)
	return s
}

// bottleneck is the FIFO queue in front of a link of a fixed rate. It
// keeps, for each frame in it, the time its serialization ends and its
// size, in a ring allocated once: a frame in the queue is also held, so
// MaxHeld bounds how many there are.
type bottleneck struct {
	rate                int64 // bits per second; 0: no bottleneck
	maxBytes, maxFrames int   // the queue's bounds; 0: none
	ring                []queuedFrame
	head, size, bytes   int
	last                time.Duration // when the last frame queued is serialized
	maxBytesSeen        int
}

type queuedFrame struct {
	done time.Duration
	size int
}

func newBottleneck(cfg FaultConfig) bottleneck {
	q := bottleneck{rate: cfg.Rate, maxBytes: cfg.QueueBytes, maxFrames: cfg.QueuePackets}
	if q.rate > 0 {
		q.ring = make([]queuedFrame, cfg.MaxHeld)
	}
	return q
}

// enqueue queues a frame of size bytes arriving at now, and returns when
// it is serialized, or false if the queue has no room for it (tail drop).
// Without a rate every frame leaves at once.
func (q *bottleneck) enqueue(size int, now time.Duration) (time.Duration, bool) {
	if q.rate == 0 {
		return now, true
	}
	q.advance(now)
	if q.size == len(q.ring) || q.maxFrames > 0 && q.size >= q.maxFrames ||
		q.maxBytes > 0 && q.bytes+size > q.maxBytes {
		return 0, false
	}
	q.last = max(q.last, now) + q.serialization(size)
	q.ring[(q.head+q.size)%len(q.ring)] = queuedFrame{done: q.last, size: size}
	q.size++
	q.bytes += size
	q.maxBytesSeen = max(q.maxBytesSeen, q.bytes)
	return q.last, true
}

// advance forgets the frames serialized by now.
func (q *bottleneck) advance(now time.Duration) {
	for q.size > 0 && q.ring[q.head].done <= now {
		q.bytes -= q.ring[q.head].size
		q.head = (q.head + 1) % len(q.ring)
		q.size--
	}
}

// unqueueLast takes back the frame of size bytes enqueue queued last, which
// the held queue had no room for: it never takes the link's time.
func (q *bottleneck) unqueueLast(size int) {
	if q.rate == 0 {
		return
	}
	q.size--
	q.bytes -= size
	q.last -= q.serialization(size)
}

// serialization is how long a frame of size bytes takes on the link.
func (q *bottleneck) serialization(size int) time.Duration {
	return time.Duration(int64(size) * 8 * int64(time.Second) / q.rate)
}

// Close gives the held frames back to the inner link unsent, and closes it.
// Further calls return ErrClosed; a second Close does nothing.
func (f *Faulty) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	for f.held.len() > 0 {
		f.release(f.held.pop().f)
	}
	return f.inner.Close()
}

type heldFrame struct {
	due time.Duration
	seq uint64
	f   Frame
}

func (h heldFrame) before(o heldFrame) bool {
	return h.due < o.due || h.due == o.due && h.seq < o.seq
}

// heldQueue gives back held frames in order of (due, seq). Most frames
// arrive in that order already (delays never reorder), so they wait in a FIFO
// ring at O(1); only frames that jump the queue (reordered ones, and those an
// inner link refused) go to a binary min-heap. With every frame in a heap,
// BenchmarkFaulty spent two thirds of its time sifting.
type heldQueue struct {
	ring       []heldFrame // FIFO, sorted by construction
	head, size int
	heap       []heldFrame // min-heap; shares the cap with ring
}

func newHeldQueue(capacity int) heldQueue {
	return heldQueue{ring: make([]heldFrame, capacity), heap: make([]heldFrame, 0, capacity)}
}

func (q *heldQueue) len() int   { return q.size + len(q.heap) }
func (q *heldQueue) full() bool { return q.len() == len(q.ring) }

// push queues h. Unless late, h must not come before any frame in the ring.
func (q *heldQueue) push(h heldFrame, late bool) {
	if !late {
		q.ring[(q.head+q.size)%len(q.ring)] = h
		q.size++
		return
	}
	// container/heap would box every element pushed; sift by hand.
	q.heap = append(q.heap, h)
	hp := q.heap
	for i := len(hp) - 1; i > 0; {
		parent := (i - 1) / 2
		if !hp[i].before(hp[parent]) {
			break
		}
		hp[i], hp[parent] = hp[parent], hp[i]
		i = parent
	}
}

// fromHeap reports whether the next frame is the heap's; false when both
// are empty.
func (q *heldQueue) fromHeap() bool {
	return len(q.heap) > 0 && (q.size == 0 || q.heap[0].before(q.ring[q.head]))
}

// due reports whether a frame is held whose time has come at now.
func (q *heldQueue) due(now time.Duration) bool {
	switch {
	case q.fromHeap():
		return q.heap[0].due <= now
	case q.size > 0:
		return q.ring[q.head].due <= now
	}
	return false
}

// pop takes the next frame; the queue must not be empty.
func (q *heldQueue) pop() heldFrame {
	if !q.fromHeap() {
		h := q.ring[q.head]
		q.head = (q.head + 1) % len(q.ring)
		q.size--
		return h
	}
	hp := q.heap
	top := hp[0]
	last := len(hp) - 1
	hp[0] = hp[last]
	hp = hp[:last]
	for i := 0; ; {
		least, l, r := i, 2*i+1, 2*i+2
		if l < len(hp) && hp[l].before(hp[least]) {
			least = l
		}
		if r < len(hp) && hp[r].before(hp[least]) {
			least = r
		}
		if least == i {
			break
		}
		hp[i], hp[least] = hp[least], hp[i]
		i = least
	}
	q.heap = hp
	return top
}
