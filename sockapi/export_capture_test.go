package sockapi

import (
	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/nic"
)

// CapturesRunning is how many captures run on s.
func CapturesRunning(s *Stack) int {
	s.capMu.Lock()
	defer s.capMu.Unlock()
	return len(s.captures)
}

// TapBatch shows queue 0's tap of c a transmit batch, as its poller does.
func TapBatch(c *Capture, fs []nic.Frame) {
	(&queueTap{q: 0, caps: []*Capture{c}}).Frames(fastpath.Out, fs)
}

// SkipBuffered empties c's rings as a reader that keeps up would, without
// copying the frames out.
func SkipBuffered(c *Capture) {
	for _, r := range c.rings {
		r.tail.Store(r.head.Load())
	}
}
