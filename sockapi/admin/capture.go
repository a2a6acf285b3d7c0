package admin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/xdpnet/xdpnet/sockapi"
)

// ErrStackGone is a capture's stream ending without the client's asking:
// the stack exited, or is closing, mid-capture.
var ErrStackGone = errors.New("the stack exited mid-capture")

// Capture is a running capture of a stack's frames, from Client.Capture:
// the stack's Stack.Capture, streamed over the admin socket (the framing
// is described with the server, in sockapi's capture_admin.go). Next
// reads it; Stop, from any goroutine, ends it. The Client carries
// nothing else meanwhile.
type Capture struct {
	c       *Client
	snap    int
	msg     []byte // the message Next read last; its frame's Data
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
	var start sockapi.AdminCaptureStart
	if err := c.Next(&start); err != nil {
		return nil, err
	}
	if start.SnapLen <= 0 || start.SnapLen > 1<<16 {
		return nil, fmt.Errorf("admin socket %s: bad capture start: snap length %d", c.path, start.SnapLen)
	}
	return &Capture{c: c, snap: start.SnapLen, stats: start.CaptureStats, msg: make([]byte, 0, max(sockapi.AdminCaptureFrameLen+start.SnapLen, sockapi.AdminCaptureStatsLen))}, nil
}

// SnapLen is the most bytes the stack keeps of a frame: the snap length
// of a pcap file's header.
func (p *Capture) SnapLen() int { return p.snap }

// Stats are the capture's counts as of the last batch read; after Next's
// io.EOF, the final ones.
func (p *Capture) Stats() sockapi.CaptureStats { return p.stats }

// Next returns the next frame, whose Data is valid until the next call.
// After Stop it returns the frames the stack still had, then io.EOF. A
// stream that ends before Stop, or breaks, is ErrStackGone.
func (p *Capture) Next() (sockapi.CapturedFrame, error) {
	for !p.ended {
		kind, err := p.read()
		if err != nil {
			return sockapi.CapturedFrame{}, err
		}
		m := p.msg
		if kind == 'f' {
			return sockapi.CapturedFrame{
				Time:  time.Unix(0, int64(binary.LittleEndian.Uint64(m[5:]))),
				Len:   int(binary.LittleEndian.Uint32(m[13:])),
				Queue: int(binary.LittleEndian.Uint16(m[17:])),
				Dir:   sockapi.Direction(m[19] & 1),
				Data:  m[sockapi.AdminCaptureFrameLen:],
			}, nil
		}
		p.stats = sockapi.CaptureStats{Captured: binary.LittleEndian.Uint64(m[5:]), Dropped: binary.LittleEndian.Uint64(m[13:])}
		if m[21] != 0 {
			p.ended = true
			if !p.stopped.Load() {
				return sockapi.CapturedFrame{}, p.gone()
			}
		}
	}
	return sockapi.CapturedFrame{}, io.EOF
}

// read reads the next message into p.msg and returns its kind, checked:
// a frame's header and at most a snap length of bytes, or counts.
func (p *Capture) read() (byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(p.c.r, head[:]); err != nil {
		return 0, p.broken(err)
	}
	n := int(binary.LittleEndian.Uint32(head[:]))
	kind := head[4]
	switch {
	case kind == 'f' && n >= sockapi.AdminCaptureFrameLen-4 && n <= sockapi.AdminCaptureFrameLen-4+p.snap:
	case kind == 's' && n == sockapi.AdminCaptureStatsLen-4:
	default:
		return 0, fmt.Errorf("admin socket %s: bad capture message: kind %q, %d bytes", p.c.path, kind, n)
	}
	p.msg = append(p.msg[:0], head[:]...)
	p.msg = p.msg[:4+n]
	if _, err := io.ReadFull(p.c.r, p.msg[5:]); err != nil {
		return 0, p.broken(err)
	}
	return kind, nil
}

// broken explains a stream that failed: one that ended, or was reset,
// is the stack gone.
func (p *Capture) broken(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("admin socket %s: capture: %w", p.c.path, err)
	}
	return p.gone()
}

func (p *Capture) gone() error { return fmt.Errorf("admin socket %s: %w", p.c.path, ErrStackGone) }

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
