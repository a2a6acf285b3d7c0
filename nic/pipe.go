package nic

import (
	"fmt"
	"math/bits"
	"net"
	"sync/atomic"
	"time"
)

// PipeConfig configures NewPipe. The zero value gives a working pair.
type PipeConfig struct {
	// MACA and MACB are the endpoints' hardware addresses; by default
	// 02:00:00:00:00:01 and 02:00:00:00:00:02 (locally administered).
	MACA, MACB net.HardwareAddr
	// MTU is the largest IP packet carried; frames are at most
	// MTU+EthernetHeaderLen bytes. Default 1500.
	MTU int
	// Buffers is the number of transmit buffers in each endpoint's pool.
	// Default 256.
	Buffers int
	// QueueDepth is how many frames can wait in each direction for the
	// receiver to call Receive; rounded up to a power of two. Default 256.
	QueueDepth int
}

// Pipe is one end of an in-memory Ethernet wire made by NewPipe, for tests
// that need a Link but no kernel.
//
// Each endpoint owns a fixed pool of transmit buffers, allocated once by
// NewPipe. Transmit hands a buffer to the peer without copying; the peer
// receives it, and its Release sends the buffer home. So a receiver that holds
// frames starves the sender's Alloc, the way a slow reader back-pressures a
// real ring. When the peer's receive queue is full the frame is dropped and
// counted in the peer's RxDropped: memory never grows.
//
// One endpoint is not safe for concurrent use, but the two endpoints of a pair
// may be driven from two goroutines: they share only single-producer
// single-consumer rings and atomic counters.
//
// Frame ownership is checked. Every handle names its pool, buffer and a
// generation, so a frame this endpoint does not hold (released twice, stale,
// lent by another link) is ignored and counted in BadFrames instead of
// corrupting the pool. Like the AF_XDP link, Transmit counts such frames in
// n but does not send them.
type Pipe struct {
	peer    *Pipe
	pool    uint64 // this endpoint's pool id, the top 16 bits of its handles
	mac     net.HardwareAddr
	mtu     int
	bufSize int
	slab    []byte            // all transmit buffers, bufSize bytes each
	bufs    []pipeBuf         // state of each own buffer; touched by this endpoint only
	free    []uint32          // indexes of own buffers ready for Alloc
	held    []uint64          // handle of each peer buffer received and not yet released, else 0
	rx      *spscRing[Frame]  // frames from the peer; the peer produces
	home    *spscRing[uint64] // own buffers the peer has released; the peer produces
	stats   Stats
	bad     uint64
	_       cacheLinePad  // the fields below are the peer's to touch too
	dropped atomic.Uint64 // frames the peer found our receive queue full for
	closed  atomic.Bool   // read by the peer, to stop sending to us
	// arrived is rung by the peer's Transmit and wake by Wake, for Park;
	// each holds at most one signal.
	arrived, wake chan struct{}
	deadline      time.Time // Arm's; the parking goroutine's own
}

// pipeBuf is the owner's record of one of its buffers.
type pipeBuf struct {
	handle uint64 // last handle issued for the buffer
	lent   bool   // the caller holds it (between Alloc and Transmit or Release)
}

// Handle layout: pool id (16 bits) | generation (16 bits) | buffer index (32
// bits). The generation changes on every Alloc of a buffer, so a stale handle
// is caught unless that one buffer was reused a multiple of 65,536 times in
// between; pool ids are unique among the last 65,535 pipes created.
const (
	pipePoolShift = 48
	pipeGenShift  = 32
)

var pipePools atomic.Uint64

func newPipePool() uint64 {
	// Pool 0 is never used, so the zero Frame is never a valid handle.
	for {
		if id := pipePools.Add(1) & 0xffff; id != 0 {
			return id
		}
	}
}

// NewPipe returns two endpoints joined back to back: a frame transmitted on
// one is received on the other, in order. It panics on a configuration no
// link could honour (negative sizes, a MAC that is not 6 bytes), since that is
// a bug in the test that builds it.
func NewPipe(cfg PipeConfig) (a, b *Pipe) {
	if cfg.MACA == nil {
		cfg.MACA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	}
	if cfg.MACB == nil {
		cfg.MACB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	}
	cfg.MTU = orDefault(cfg.MTU, 1500)
	cfg.Buffers = orDefault(cfg.Buffers, 256)
	cfg.QueueDepth = orDefault(cfg.QueueDepth, 256)
	if len(cfg.MACA) != 6 || len(cfg.MACB) != 6 || cfg.MTU < 0 || cfg.Buffers < 0 || cfg.QueueDepth < 0 {
		panic(fmt.Sprintf("nic: invalid PipeConfig %+v", cfg))
	}
	a = newPipeEnd(cfg.MACA, cfg)
	b = newPipeEnd(cfg.MACB, cfg)
	a.peer, b.peer = b, a
	// Every peer buffer the receiver releases fits in its home ring, since a
	// pool never has more buffers out than it has.
	a.held = make([]uint64, cfg.Buffers)
	b.held = make([]uint64, cfg.Buffers)
	return a, b
}

func newPipeEnd(mac net.HardwareAddr, cfg PipeConfig) *Pipe {
	size := cfg.MTU + EthernetHeaderLen
	p := &Pipe{
		pool:    newPipePool(),
		mac:     append(net.HardwareAddr(nil), mac...),
		mtu:     cfg.MTU,
		bufSize: size,
		slab:    make([]byte, size*cfg.Buffers),
		bufs:    make([]pipeBuf, cfg.Buffers),
		free:    make([]uint32, cfg.Buffers),
		rx:      newSPSCRing[Frame](cfg.QueueDepth),
		home:    newSPSCRing[uint64](cfg.Buffers),
		arrived: make(chan struct{}, 1),
		wake:    make(chan struct{}, 1),
	}
	for i := range p.bufs {
		p.bufs[i].handle = p.pool<<pipePoolShift | uint64(i)
		// Stacked so that Alloc hands out buffer 0 first: easier to read
		// in a debugger, and no different otherwise.
		p.free[i] = uint32(cfg.Buffers - 1 - i)
	}
	return p
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Receive takes up to len(fs) frames sent by the peer, oldest first.
func (p *Pipe) Receive(fs []Frame) (int, error) {
	if p.closed.Load() {
		return 0, ErrClosed
	}
	n := 0
	for n < len(fs) {
		f, ok := p.rx.get()
		if !ok {
			break
		}
		p.held[uint32(f.Handle)] = f.Handle
		p.stats.RxBytes += uint64(len(f.Data))
		fs[n] = f
		n++
	}
	p.rx.consume()
	p.stats.RxFrames += uint64(n)
	return n, nil
}

// Alloc lends up to len(fs) transmit buffers of MTU+EthernetHeaderLen bytes,
// first taking back the buffers the peer has released.
func (p *Pipe) Alloc(fs []Frame) int {
	if p.closed.Load() {
		return 0
	}
	for {
		h, ok := p.home.get()
		if !ok {
			break
		}
		p.free = append(p.free, uint32(h))
	}
	p.home.consume()
	n := min(len(fs), len(p.free))
	for i := range n {
		idx := p.free[len(p.free)-1-i]
		b := &p.bufs[idx]
		gen := uint16(b.handle>>pipeGenShift) + 1
		b.handle = p.pool<<pipePoolShift | uint64(gen)<<pipeGenShift | uint64(idx)
		b.lent = true
		off := int(idx) * p.bufSize
		fs[i] = Frame{Data: p.slab[off : off+p.bufSize : off+p.bufSize], Handle: b.handle}
	}
	p.free = p.free[:len(p.free)-n]
	return n
}

// Transmit sends fs to the peer and returns len(fs): every frame is taken.
// A frame shorter than an Ethernet header, or whose Data no longer starts at
// its buffer, is counted in TxErrors and not sent; a frame this endpoint did
// not lend is counted in BadFrames and left alone. If the peer has closed,
// frames are counted in TxErrors. Frames the peer's full queue refuses are
// counted in the peer's RxDropped.
func (p *Pipe) Transmit(fs []Frame) (int, error) {
	if p.closed.Load() {
		return 0, ErrClosed
	}
	q, peerUp := p.peer.rx, !p.peer.closed.Load()
	var dropped uint64
	for _, f := range fs {
		idx, ok := p.owned(f.Handle)
		if !ok {
			p.bad++
			continue
		}
		p.bufs[idx].lent = false
		off := int(idx) * p.bufSize
		if len(f.Data) < EthernetHeaderLen || &f.Data[0] != &p.slab[off] || !peerUp {
			p.stats.TxErrors++
			p.free = append(p.free, idx)
			continue
		}
		p.stats.TxFrames++
		p.stats.TxBytes += uint64(len(f.Data))
		// The peer sees only the frame's bytes: no capacity to append into
		// the rest of our buffer.
		if !q.put(Frame{Data: f.Data[:len(f.Data):len(f.Data)], Handle: f.Handle}) {
			dropped++
			p.free = append(p.free, idx)
		}
	}
	q.publish()
	if dropped > 0 {
		p.peer.dropped.Add(dropped)
	}
	if len(fs) > 0 {
		select {
		case p.peer.arrived <- struct{}{}:
		default:
		}
	}
	return len(fs), nil
}

// Arm sets the latest time the next Park returns (zero: no limit).
func (p *Pipe) Arm(deadline time.Time) error {
	p.deadline = deadline
	return nil
}

// Park sleeps until the peer transmits, the armed deadline, or Wake
// (Close wakes it too).
func (p *Pipe) Park() error {
	if !p.rx.empty() || p.closed.Load() {
		return nil
	}
	var timeout <-chan time.Time
	if !p.deadline.IsZero() {
		t := time.NewTimer(time.Until(p.deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-p.arrived:
	case <-p.wake:
	case <-timeout:
	}
	return nil
}

// Wake makes the current or next Park return; any goroutine may call it.
func (p *Pipe) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// owned reports whether h is a buffer of this endpoint now lent to the
// caller, and its index.
func (p *Pipe) owned(h uint64) (uint32, bool) {
	idx := uint32(h)
	if h>>pipePoolShift != p.pool || int(idx) >= len(p.bufs) {
		return 0, false
	}
	b := p.bufs[idx]
	return idx, b.lent && b.handle == h
}

// Release gives back received frames (they go home to the peer's pool) and
// unsent transmit buffers. A frame this endpoint does not hold is counted in
// BadFrames and left alone.
func (p *Pipe) Release(fs []Frame) {
	if p.closed.Load() {
		return
	}
	home := p.peer.home
	for _, f := range fs {
		if f.Handle>>pipePoolShift == p.peer.pool {
			idx := uint32(f.Handle)
			if int(idx) < len(p.held) && p.held[idx] == f.Handle {
				p.held[idx] = 0
				if !home.put(f.Handle) {
					panic("nic: pipe home ring overflow") // unreachable: it holds the whole peer pool
				}
				continue
			}
		} else if idx, ok := p.owned(f.Handle); ok {
			p.bufs[idx].lent = false
			p.free = append(p.free, idx)
			continue
		}
		p.bad++
	}
	home.publish()
}

// MAC is the endpoint's hardware address. The caller must not modify it.
func (p *Pipe) MAC() net.HardwareAddr { return p.mac }

// MTU is the largest IP packet the pipe carries.
func (p *Pipe) MTU() int { return p.mtu }

// Stats returns the endpoint's counters. RxDropped counts frames the peer
// sent while this endpoint's receive queue was full.
func (p *Pipe) Stats() Stats {
	s := p.stats
	s.RxDropped = p.dropped.Load()
	return s
}

// BadFrames counts frames passed to Release or Transmit that this endpoint
// did not hold: released twice, stale, or lent by another link. Each one is a
// caller bug; the pool is unharmed by it.
func (p *Pipe) BadFrames() uint64 { return p.bad }

// Close makes further calls return ErrClosed (Alloc returns 0, Release does
// nothing). The peer's later frames count as its TxErrors.
func (p *Pipe) Close() error {
	p.closed.Store(true)
	p.Wake() // a parked poller sees the close at once
	return nil
}

// cacheLinePad keeps fields written by different goroutines on different
// cache lines (128 bytes covers adjacent-line prefetch on x86).
type cacheLinePad [128]byte

// spscRing is a bounded queue for one producer goroutine and one consumer
// goroutine. Each side works on a private cursor and publishes it with one
// atomic store per batch (publish, consume); the atomics order the slot writes
// before the other side reads them. A mutex taken per frame, measured here,
// halved BenchmarkPipe (29 -> 60 ns/frame) and cut the two-goroutine rate
// from ~15 to 3.5-11 million frames/s.
type spscRing[T any] struct {
	slots []T
	mask  uint64
	_     cacheLinePad
	tail  atomic.Uint64 // published by the producer: slots [head, tail) are full
	ptail uint64        // producer: next slot to fill
	phead uint64        // producer: last head it read
	_     cacheLinePad
	head  atomic.Uint64 // published by the consumer: slots before head are free
	chead uint64        // consumer: next slot to read
	ctail uint64        // consumer: last tail it read
	_     cacheLinePad
}

func newSPSCRing[T any](size int) *spscRing[T] {
	n := 1
	if size > 1 {
		n = 1 << bits.Len(uint(size-1))
	}
	return &spscRing[T]{slots: make([]T, n), mask: uint64(n - 1)}
}

// put stages v, reporting false when the ring is full. Producer only.
func (r *spscRing[T]) put(v T) bool {
	if r.ptail-r.phead == uint64(len(r.slots)) {
		r.phead = r.head.Load()
		if r.ptail-r.phead == uint64(len(r.slots)) {
			return false
		}
	}
	r.slots[r.ptail&r.mask] = v
	r.ptail++
	return true
}

// publish makes staged values visible to the consumer. Producer only.
func (r *spscRing[T]) publish() {
	if r.tail.Load() != r.ptail {
		r.tail.Store(r.ptail)
	}
}

// get takes the oldest published value. Consumer only.
func (r *spscRing[T]) get() (v T, ok bool) {
	if r.chead == r.ctail {
		r.ctail = r.tail.Load()
		if r.chead == r.ctail {
			return v, false
		}
	}
	v = r.slots[r.chead&r.mask]
	r.chead++
	return v, true
}

// empty reports whether nothing is published to get. Consumer only.
func (r *spscRing[T]) empty() bool {
	return r.chead == r.ctail && r.chead == r.tail.Load()
}

// consume hands the slots read so far back to the producer. Consumer only.
func (r *spscRing[T]) consume() {
	if r.head.Load() != r.chead {
		r.head.Store(r.chead)
	}
}
