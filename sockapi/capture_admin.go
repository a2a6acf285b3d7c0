package sockapi

import (
	"context"
	"encoding/json"
	"fmt"
)

// The admin endpoint's capture op streams a Capture to its client:
//
//	{"op":"capture","args":{"filter":"tcp and port 80","snaplen":96,"buffer":4096}}
//
// (CaptureConfig's fields, all optional) is answered by a first line
// that carries the snap length, or by an error (a bad filter), then by
// a line per batch of frames, the frames base64 in "data":
//
//	{"result":{"snaplen":1514,"captured":0,"dropped":0}}
//	{"result":{"frames":[{"time":"...","dir":"in","queue":0,"len":74,"data":"..."}],"captured":1,"dropped":0}}
//
// Each line has the capture's counts so far, so its reader sees drops as
// they happen. The client ends the capture by closing its end for
// writing (or sending anything); the stack then stops capturing, sends
// the frames still buffered and a last line with "end":true and the
// final counts, and closes. A last line the client did not ask for
// means the stack is closing.
//
// The capture's ring is what stands between the pollers and this
// stream: while a slow client keeps a line waiting (for at most the
// endpoint's write timeout), the ring fills and the pollers drop and
// count, never wait.

// AdminCaptureBatch is a line of the capture op's stream.
type AdminCaptureBatch struct {
	SnapLen int             `json:"snaplen,omitempty"` // the first line's: the pcap header's snap length
	Frames  []CapturedFrame `json:"frames,omitempty"`
	CaptureStats
	End bool `json:"end,omitempty"` // the last line
}

// adminCaptureBatch is the most frames a line carries.
const adminCaptureBatch = 64

// adminCapture runs the capture op (see above).
func adminCapture(ctx context.Context, s *Stack, args json.RawMessage, reply func(any) error) error {
	var cfg CaptureConfig
	if len(args) > 0 {
		if err := json.Unmarshal(args, &cfg); err != nil {
			return fmt.Errorf("bad arguments: %v", err)
		}
	}
	c, err := s.Capture(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if reply(AdminCaptureBatch{SnapLen: c.SnapLen(), CaptureStats: c.Stats()}) != nil {
		return nil
	}
	b := adminBatcher{c: c, reply: reply, buf: make([]byte, 0, adminCaptureBatch*c.SnapLen())}
	// Next ends when the client stops or goes, or the stack closes.
	for {
		f, err := c.Next(ctx)
		if err != nil {
			break
		}
		if !b.send(f) {
			return nil
		}
	}
	c.Close()
	for f, ok := c.take(); ok; f, ok = c.take() {
		if !b.send(f) {
			return nil
		}
	}
	reply(AdminCaptureBatch{CaptureStats: c.Stats(), End: true})
	return nil
}

// adminBatcher sends frames in lines of up to adminCaptureBatch.
type adminBatcher struct {
	c      *Capture
	reply  func(any) error
	frames []CapturedFrame
	buf    []byte // the frames' copies
}

// send sends f and the frames waiting after it, as many as a line
// takes, and reports whether the client took the line.
func (b *adminBatcher) send(f CapturedFrame) bool {
	b.frames, b.buf = b.frames[:0], b.buf[:0]
	for {
		start := len(b.buf)
		b.buf = append(b.buf, f.Data...)
		f.Data = b.buf[start:len(b.buf):len(b.buf)]
		b.frames = append(b.frames, f)
		var ok bool
		if len(b.frames) == adminCaptureBatch {
			break
		}
		if f, ok = b.c.take(); !ok {
			break
		}
	}
	return b.reply(AdminCaptureBatch{Frames: b.frames, CaptureStats: b.c.Stats()}) == nil
}
