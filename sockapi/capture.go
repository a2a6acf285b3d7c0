package sockapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/nic"
)

// A capture copies the frames of the stack's links, as tcpdump does an
// interface's, into a bounded buffer its reader drains. The pollers see
// every batch they receive and transmit through a tap (fastpath.Tap),
// which costs them one atomic load per batch while no capture runs; with
// captures, each filters the batch and copies the frames it keeps into
// its buffer, one ring per queue with one writer (the queue's poller)
// and one reader. A full ring drops the frame and counts it: a slow or
// absent reader never holds a poller.

// CaptureConfig configures Stack.Capture. The zero value captures every
// frame, whole.
type CaptureConfig struct {
	// Filter is a capture expression (see ParseCaptureFilter): `host H`,
	// `port P`, `tcp`, `udp`, `icmp`, `arp`, joined by `and`. Empty keeps
	// every frame.
	Filter string `json:"filter,omitempty"`
	// SnapLen is the most bytes kept of a frame (its whole length is
	// still recorded); default, and at most, the link's largest frame
	// (MTU + 14).
	SnapLen int `json:"snaplen,omitempty"`
	// Buffer is how many frames each queue's ring holds for the reader
	// (each a slot of SnapLen bytes, as the kernel's TPACKET ring);
	// default 2048, at most 65536. Frames beyond it are dropped and
	// counted in CaptureStats.Dropped.
	Buffer int `json:"buffer,omitempty"`
}

const (
	defaultCaptureBuffer = 2048
	maxCaptureBuffer     = 1 << 16
	// maxCaptures bounds the captures running on a stack at once: each
	// costs every poller a filter and a copy per frame it keeps.
	maxCaptures = 8
)

// Direction is the way a captured frame went through the link.
type Direction uint8

// The directions of a captured frame.
const (
	Inbound  Direction = iota // received
	Outbound                  // transmitted
)

// String is tcpdump's name for the direction: "In" or "Out".
func (d Direction) String() string {
	if d == Outbound {
		return "Out"
	}
	return "In"
}

// MarshalText is the direction as JSON has it: "in" or "out".
func (d Direction) MarshalText() ([]byte, error) {
	if d == Outbound {
		return []byte("out"), nil
	}
	return []byte("in"), nil
}

// UnmarshalText reads "in" or "out".
func (d *Direction) UnmarshalText(b []byte) error {
	switch string(b) {
	case "in":
		*d = Inbound
	case "out":
		*d = Outbound
	default:
		return fmt.Errorf("sockapi: direction %q: want in or out", b)
	}
	return nil
}

// CapturedFrame is a frame a capture kept.
type CapturedFrame struct {
	Time  time.Time `json:"time"` // when its poller took it from or gave it to the link (one reading per batch)
	Dir   Direction `json:"dir"`
	Queue int       `json:"queue"` // the index of the queue whose poller saw it
	Len   int       `json:"len"`   // its length on the wire
	Data  []byte    `json:"data"`  // its first SnapLen bytes; valid until the next call of Next
}

// CaptureStats counts a capture's frames.
type CaptureStats struct {
	// Captured counts the frames the filter kept and the buffer took;
	// Dropped those it kept but the buffer, full, had no room for.
	// Together, the frames that matched the filter (tcpdump's "received
	// by filter").
	Captured uint64 `json:"captured"`
	Dropped  uint64 `json:"dropped"`
}

// Capture is a running capture of a stack's frames, from Stack.Capture.
// Its reader calls Next, one goroutine at a time; Stats and Close may be
// called from any goroutine.
type Capture struct {
	s      *Stack
	filter CaptureFilter
	snap   int
	rings  []*capRing // by queue
	bell   bell       // the reader's, rung by the pollers
	once   sync.Once
	closed chan struct{} // closed by Close, once no poller writes any more
	gone   chan struct{} // closed when the stack stops or fails, or the capture closes
	frame  []byte        // the copy Next returns
}

// Capture starts a capture of the frames the stack receives and
// transmits on every queue. Several captures may run at once (up to 8),
// each with its own filter and buffer. Close ends it.
func (s *Stack) Capture(cfg CaptureConfig) (*Capture, error) {
	filter, err := ParseCaptureFilter(cfg.Filter)
	if err != nil {
		return nil, err
	}
	frameMax := s.pollers[0].Link().MTU() + nic.EthernetHeaderLen
	switch {
	case cfg.SnapLen < 0:
		return nil, fmt.Errorf("sockapi: capture snap length %d is negative", cfg.SnapLen)
	case cfg.Buffer < 0 || cfg.Buffer > maxCaptureBuffer:
		return nil, fmt.Errorf("sockapi: capture buffer of %d frames: must be within 0-%d", cfg.Buffer, maxCaptureBuffer)
	}
	snap := frameMax
	if cfg.SnapLen > 0 {
		snap = min(cfg.SnapLen, frameMax)
	}
	frames := cfg.Buffer
	if frames == 0 {
		frames = defaultCaptureBuffer
	}
	c := &Capture{s: s, filter: filter, snap: snap, bell: newBell(), closed: make(chan struct{}), gone: make(chan struct{}), frame: make([]byte, snap)}
	for range s.pollers {
		c.rings = append(c.rings, &capRing{slot: snap, data: make([]byte, frames*snap), meta: make([]capMeta, frames)})
	}
	s.capMu.Lock()
	defer s.capMu.Unlock()
	if isClosed(s.done) {
		return nil, net.ErrClosed
	}
	if len(s.captures) == maxCaptures {
		return nil, fmt.Errorf("sockapi: %d captures already run, the most a stack takes", maxCaptures)
	}
	s.captures = append(s.captures, c)
	s.retap()
	go func() {
		select {
		case <-s.stopped:
		case <-s.failed:
		case <-c.closed:
		}
		close(c.gone)
	}()
	return c, nil
}

// retap gives every poller a tap for the captures now running, or none;
// the caller holds capMu.
func (s *Stack) retap() {
	for q, p := range s.pollers {
		if len(s.captures) == 0 {
			p.SetTap(nil)
			continue
		}
		p.SetTap(&queueTap{q: q, caps: slices.Clone(s.captures)})
	}
}

// SnapLen is the most bytes the capture keeps of a frame: what a pcap
// file's header of its frames says.
func (c *Capture) SnapLen() int { return c.snap }

// Stats returns the capture's counts so far.
func (c *Capture) Stats() CaptureStats {
	var st CaptureStats
	for _, r := range c.rings {
		st.Captured += r.head.Load()
		st.Dropped += r.drops.Load()
	}
	return st
}

// Next returns the next frame of the capture, the earliest of those
// waiting on the queues, and blocks until there is one. Once the capture
// is closed it returns the frames still buffered, then io.EOF; once the
// stack is closed or failed, the frames buffered, then net.ErrClosed;
// when ctx ends, its error.
func (c *Capture) Next(ctx context.Context) (CapturedFrame, error) {
	for {
		if f, ok := c.take(c.frame); ok {
			return f, nil
		}
		switch c.bell.wait(c.ready, ctx.Done(), c.gone, nil) {
		case nil:
		case c.gone:
			switch {
			case c.ready():
			case isClosed(c.closed):
				return CapturedFrame{}, io.EOF
			default:
				return CapturedFrame{}, net.ErrClosed
			}
		default:
			return CapturedFrame{}, ctx.Err()
		}
	}
}

// ready reports whether a frame waits on any queue.
func (c *Capture) ready() bool {
	for _, r := range c.rings {
		if r.tail.Load() != r.head.Load() {
			return true
		}
	}
	return false
}

// take copies out the earliest frame waiting, if any, into into, whose
// capacity holds the snap length.
func (c *Capture) take(into []byte) (CapturedFrame, bool) {
	var first *capRing
	q := 0
	for i, r := range c.rings {
		if r.tail.Load() == r.head.Load() {
			continue
		}
		if first == nil || r.peek().time < first.peek().time {
			first, q = r, i
		}
	}
	if first == nil {
		return CapturedFrame{}, false
	}
	m := first.peek()
	i := int(first.tail.Load() % uint64(len(first.meta)))
	data := into[:copy(into[:cap(into)], first.data[i*first.slot:i*first.slot+int(m.capLen)])]
	first.tail.Add(1) // the slot is the poller's again
	return CapturedFrame{Time: time.Unix(0, m.time), Dir: m.dir, Queue: q, Len: int(m.len), Data: data}, true
}

// Close ends the capture: the pollers stop copying frames into it before
// it returns. Next then returns the frames still buffered, and io.EOF.
func (c *Capture) Close() error {
	c.once.Do(func() {
		s := c.s
		s.capMu.Lock()
		s.captures = slices.DeleteFunc(s.captures, func(x *Capture) bool { return x == c })
		s.retap()
		s.capMu.Unlock()
		// A poller amid a batch may still hold the old tap: one Do on
		// each runs after its batch (unless the stack ends first).
		for _, p := range s.pollers {
			s.do(background, p, func() {})
		}
		close(c.closed)
	})
	return nil
}

// capRing is one queue's ring of a capture: slots of the snap length,
// written by the queue's poller only, read by the capture's reader only.
type capRing struct {
	slot  int
	data  []byte        // len(meta) slots of slot bytes
	meta  []capMeta     // each slot's frame
	head  atomic.Uint64 // frames written, the poller's
	tail  atomic.Uint64 // frames read, the reader's
	drops atomic.Uint64 // frames that found the ring full
}

// capMeta describes the frame in a slot.
type capMeta struct {
	time        int64 // Unix nanoseconds
	len, capLen int32
	dir         Direction
}

// peek is the oldest frame's description; the ring must not be empty.
func (r *capRing) peek() capMeta { return r.meta[r.tail.Load()%uint64(len(r.meta))] }

// put copies the frames of fs that f keeps into free slots, on the
// poller's goroutine, and reports whether it copied any. *now is the
// batch's time, read at the first frame kept by any capture. It never
// waits: a frame without a free slot is counted in drops.
func (r *capRing) put(f CaptureFilter, dir Direction, fs []nic.Frame, now *int64) bool {
	start, tail := r.head.Load(), r.tail.Load()
	head, n := start, uint64(len(r.meta))
	dropped := uint64(0)
	for _, fr := range fs {
		if !f.Match(fr.Data) {
			continue
		}
		if head-tail == n {
			if tail = r.tail.Load(); head-tail == n {
				dropped++
				continue
			}
		}
		if *now == 0 {
			*now = time.Now().UnixNano()
		}
		i := int(head % n)
		k := copy(r.data[i*r.slot:(i+1)*r.slot], fr.Data)
		r.meta[i] = capMeta{time: *now, len: int32(len(fr.Data)), capLen: int32(k), dir: dir}
		head++
	}
	if dropped > 0 {
		r.drops.Add(dropped)
	}
	if head == start {
		return false
	}
	r.head.Store(head) // publishes the slots written
	return true
}

// queueTap is the tap of one queue's poller: it shows the poller's
// batches to every capture running.
type queueTap struct {
	q    int
	caps []*Capture
}

// Frames copies a batch into the captures' rings of the queue and rings
// the readers that wait.
func (t *queueTap) Frames(dir fastpath.Direction, fs []nic.Frame) {
	d := Inbound
	if dir == fastpath.Out {
		d = Outbound
	}
	var now int64
	for _, c := range t.caps {
		if c.rings[t.q].put(c.filter, d, fs, &now) {
			c.bell.ring()
		}
	}
}
