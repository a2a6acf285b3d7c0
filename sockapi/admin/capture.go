package admin

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/xdpnet/xdpnet/sockapi"
)

// ErrStackGone is a capture's stream ending without the client's asking:
// the stack exited, or is closing, mid-capture.
var ErrStackGone = errors.New("the stack exited mid-capture")

// Capture is a running capture of a stack's frames, from Client.Capture:
// the stack's Stack.Capture, streamed over the admin socket. Next reads
// it; Stop, from any goroutine, ends it. The Client carries nothing else
// meanwhile.
type Capture struct {
	c       *Client
	snap    int
	batch   []sockapi.CapturedFrame
	stats   sockapi.CaptureStats
	stopped atomic.Bool
	ended   bool
}

// Capture starts a capture of cfg on the stack. A configuration the
// stack refuses (a bad filter) is an error here.
func (c *Client) Capture(cfg sockapi.CaptureConfig) (*Capture, error) {
	c.conn.SetDeadline(time.Now().Add(Timeout))
	defer c.conn.SetDeadline(time.Time{})
	if err := c.Start("capture", cfg); err != nil {
		return nil, err
	}
	var first sockapi.AdminCaptureBatch
	if err := c.Next(&first); err != nil {
		return nil, err
	}
	return &Capture{c: c, snap: first.SnapLen, stats: first.CaptureStats}, nil
}

// SnapLen is the most bytes the stack keeps of a frame: the snap length
// of a pcap file's header.
func (p *Capture) SnapLen() int { return p.snap }

// Stats are the capture's counts as of the last line read; after Next's
// io.EOF, the final ones.
func (p *Capture) Stats() sockapi.CaptureStats { return p.stats }

// Next returns the next frame. After Stop it returns the frames the
// stack still had, then io.EOF. A stream that ends before Stop, or that
// breaks, is ErrStackGone.
func (p *Capture) Next() (sockapi.CapturedFrame, error) {
	for len(p.batch) == 0 {
		if p.ended {
			return sockapi.CapturedFrame{}, io.EOF
		}
		var m sockapi.AdminCaptureBatch
		if err := p.c.Next(&m); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) {
				return sockapi.CapturedFrame{}, fmt.Errorf("admin socket %s: %w", p.c.path, ErrStackGone)
			}
			return sockapi.CapturedFrame{}, err
		}
		p.stats, p.batch = m.CaptureStats, m.Frames
		if m.End {
			p.ended = true
			if !p.stopped.Load() {
				return sockapi.CapturedFrame{}, fmt.Errorf("admin socket %s: %w", p.c.path, ErrStackGone)
			}
		}
	}
	f := p.batch[0]
	p.batch = p.batch[1:]
	return f, nil
}

// Stop ends the capture: the stack sends what it still holds and its
// final counts, which Next returns before io.EOF; it has Timeout to do so.
func (p *Capture) Stop() error {
	if p.stopped.Swap(true) {
		return nil
	}
	p.c.conn.SetReadDeadline(time.Now().Add(Timeout))
	if err := p.c.conn.(*net.UnixConn).CloseWrite(); err != nil {
		return fmt.Errorf("admin socket %s: %w", p.c.path, err)
	}
	return nil
}
