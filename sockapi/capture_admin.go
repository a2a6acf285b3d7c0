package sockapi

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
)

// The admin endpoint's capture op streams a Capture to its client:
//
//	{"op":"capture","args":{"filter":"tcp and port 80","snaplen":96,"buffer":4096}}
//
// (CaptureConfig's fields, all optional) is answered by one line of
// JSON, an error (a bad filter) or the start:
//
//	{"result":{"snaplen":1514,"captured":0,"dropped":0}}
//
// after which the stream is binary, as JSON would cost the stack more
// than the frames do: messages of a 4-byte length (of what follows it)
// and a kind, all little-endian (AdminCaptureFrameLen and
// AdminCaptureStatsLen bytes of header):
//
//	'f' frame: time (int64, Unix ns), length on the wire (uint32),
//	    queue (uint16), direction (0 in, 1 out), then the bytes kept
//	's' counts: captured (uint64), dropped (uint64), end (0 or 1)
//
// Each batch of frames, up to 64, is followed by the counts so far, so
// the reader sees drops as they happen. The client ends the capture by
// closing its end for writing (or sending anything); the stack then
// stops capturing, sends the frames still buffered and counts with end
// set, and closes. Counts with end the client did not ask for mean the
// stack is closing.
//
// The capture's ring stands between the pollers and this stream: while
// a slow client keeps a write waiting (for at most the endpoint's write
// timeout), the ring fills and the pollers drop and count, never wait.

// AdminCaptureStart is the capture op's first reply.
type AdminCaptureStart struct {
	SnapLen int `json:"snaplen"` // the pcap header's snap length
	CaptureStats
}

// The headers of the capture op's binary messages, the 4-byte length
// included.
const (
	AdminCaptureFrameLen = 4 + 1 + 8 + 4 + 2 + 1
	AdminCaptureStatsLen = 4 + 1 + 8 + 8 + 1
)

// adminCaptureBatch is the most frames a write carries.
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
	if reply(AdminCaptureStart{SnapLen: c.SnapLen(), CaptureStats: c.Stats()}) != nil {
		return nil
	}
	b := adminBatcher{c: c, reply: reply, buf: make([]byte, 0, adminCaptureBatch*(AdminCaptureFrameLen+c.SnapLen())+AdminCaptureStatsLen)}
	// Next ends when the client stops or goes, or the stack closes.
	for {
		f, err := c.Next(ctx)
		if err != nil {
			break
		}
		if !b.send(&f, false) {
			return nil
		}
	}
	c.Close()
	for c.ready() {
		if !b.send(nil, false) {
			return nil
		}
	}
	b.send(nil, true)
	return nil
}

// adminBatcher writes frames in batches of up to adminCaptureBatch.
type adminBatcher struct {
	c     *Capture
	reply func(any) error
	buf   []byte
}

// send writes a batch: first, if not nil, then the frames waiting, as
// many as a batch takes (none with end), each copied once, from its slot
// to the batch, then the counts; it reports whether the client took the
// batch.
func (b *adminBatcher) send(first *CapturedFrame, end bool) bool {
	b.buf = b.buf[:0]
	n := 0
	if first != nil {
		b.buf = append(appendCaptureHeader(b.buf, *first), first.Data...)
		n++
	}
	for ; !end && n < adminCaptureBatch; n++ {
		// The frame goes after its header, which is written once its
		// length is known.
		at := len(b.buf) + AdminCaptureFrameLen
		f, ok := b.c.take(b.buf[at : at : at+b.c.snap])
		if !ok {
			break
		}
		b.buf = appendCaptureHeader(b.buf, f)[:at+len(f.Data)]
	}
	st := b.c.Stats()
	b.buf = binary.LittleEndian.AppendUint32(b.buf, AdminCaptureStatsLen-4)
	b.buf = append(b.buf, 's')
	b.buf = binary.LittleEndian.AppendUint64(b.buf, st.Captured)
	b.buf = binary.LittleEndian.AppendUint64(b.buf, st.Dropped)
	b.buf = append(b.buf, boolByte(end))
	return b.reply(adminBinary(b.buf)) == nil
}

// appendCaptureHeader appends the header of f's message to b.
func appendCaptureHeader(b []byte, f CapturedFrame) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(AdminCaptureFrameLen-4+len(f.Data)))
	b = append(b, 'f')
	b = binary.LittleEndian.AppendUint64(b, uint64(f.Time.UnixNano()))
	b = binary.LittleEndian.AppendUint32(b, uint32(min(f.Len, math.MaxUint32)))
	b = binary.LittleEndian.AppendUint16(b, uint16(f.Queue))
	return append(b, byte(f.Dir))
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}
