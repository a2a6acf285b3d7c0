package fastpath

import "github.com/xdpnet/xdpnet/nic"

// Tap sees the frames of a poller's batches, for a capture (sockapi's
// Stack.Capture): each batch of received frames as Receive gave it,
// before input, and each batch of transmit frames, finished, as it goes
// to Transmit (so, like tcpdump on Linux, it sees a frame the link then
// refuses, which Stats counts in TxErrors, and its frame counts are
// RxFrames and TxFrames). It runs on the poller's goroutine and must
// not block nor keep the frames: it copies what it keeps. Packets on the
// loopback path never reach the link, so no tap sees them.
type Tap interface {
	Frames(dir Direction, fs []nic.Frame)
}

// Direction is a frame's way through the link.
type Direction uint8

// The directions of Tap.Frames.
const (
	In  Direction = iota // received
	Out                  // transmitted
)

// tapBox holds a Tap behind the poller's atomic pointer.
type tapBox struct{ t Tap }

// SetTap makes t see the poller's batches from its next batch on; nil
// removes it. Any goroutine may call it. Without a tap the poller pays one
// atomic load per batch.
func (p *Poller) SetTap(t Tap) {
	if t == nil {
		p.tap.Store(nil)
		return
	}
	p.tap.Store(&tapBox{t})
}

// tapFrames shows fs to the tap, if there is one.
func (p *Poller) tapFrames(dir Direction, fs []nic.Frame) {
	if len(fs) == 0 {
		return
	}
	if b := p.tap.Load(); b != nil {
		b.t.Frames(dir, fs)
	}
}
