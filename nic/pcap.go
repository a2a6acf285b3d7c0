package nic

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// PcapConfig configures NewPcapTap. The zero value is ready to use.
type PcapConfig struct {
	// Now stamps the frames; it is read once per Receive or Transmit batch.
	// Default time.Now. Tests pass a virtual clock.
	Now func() time.Time
	// SnapLen is the most bytes of a frame kept in the capture; longer
	// frames are truncated (their full length is still recorded). Default
	// 65535.
	SnapLen int
}

// PcapStats counts what a PcapTap captured.
type PcapStats struct {
	Frames, Bytes uint64 // frames, and their captured bytes, written to the writer
	Missed        uint64 // frames not captured, or lost in a failed write
}

// PcapTap is a Link that records every frame it receives and transmits to a
// classic pcap capture (Ethernet link type, nanosecond timestamps), which
// tshark, Wireshark and tcpdump read. Users of a bypass stack cannot run
// tcpdump on its interface; this is the replacement.
//
// Records are buffered and reach the writer when the buffer fills, on Flush
// and on Close. The first error from the writer is kept and returned by Flush
// and Close; from then on frames still pass through but are not captured,
// and are counted in Missed. Capture never fails the data path. Like any
// Link it is not safe for concurrent use.
type PcapTap struct {
	inner    Link
	w        *bufio.Writer
	now      func() time.Time
	snap     int
	err      error
	stats    PcapStats
	buffered PcapStats // records in w's buffer, not yet flushed
}

// pcap file format constants (https://www.tcpdump.org/manpages/pcap-savefile.5.html).
const (
	pcapMagicNanos   = 0xa1b23c4d // the nanosecond-resolution variant of 0xa1b2c3d4
	pcapRecordLen    = 16
	linkTypeEthernet = 1
)

// NewPcapTap wraps inner and starts a capture on w by writing the pcap file
// header. Closing the tap does not close w.
func NewPcapTap(inner Link, w io.Writer, cfg PcapConfig) (*PcapTap, error) {
	if cfg.SnapLen < 0 {
		return nil, fmt.Errorf("nic: pcap snap length %d is negative", cfg.SnapLen)
	}
	snap := orDefault(cfg.SnapLen, 65535)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// The buffer holds at least one whole record: Transmit stages records in
	// it before it knows which frames the inner link accepts.
	t := &PcapTap{
		inner: inner,
		w:     bufio.NewWriterSize(w, max(256<<10, pcapRecordLen+snap)),
		now:   cfg.Now,
		snap:  snap,
	}
	// Into the buffer's free space: cannot fail; errors show on flush.
	t.w.Write(AppendPcapHeader(t.w.AvailableBuffer(), snap))
	return t, nil
}

// AppendPcapHeader appends to b the header of a classic pcap capture
// (Ethernet link type, nanosecond timestamps) whose records keep at most
// snapLen bytes of a frame. PcapTap writes it, and so do programs that
// write the frames of a sockapi capture.
func AppendPcapHeader(b []byte, snapLen int) []byte {
	b = binary.LittleEndian.AppendUint32(b, pcapMagicNanos)
	b = binary.LittleEndian.AppendUint16(b, 2) // version 2.4
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = binary.LittleEndian.AppendUint32(b, 0) // timestamps are UTC
	b = binary.LittleEndian.AppendUint32(b, 0) // accuracy, always 0
	b = binary.LittleEndian.AppendUint32(b, uint32(snapLen))
	return binary.LittleEndian.AppendUint32(b, linkTypeEthernet)
}

// AppendPcapRecord appends to b the pcap record of a frame stamped ts,
// of which data holds the captured bytes and origLen is the length on
// the wire (origLen >= len(data)).
func AppendPcapRecord(b []byte, ts time.Time, data []byte, origLen int) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(ts.Unix()))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts.Nanosecond()))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = binary.LittleEndian.AppendUint32(b, uint32(origLen))
	return append(b, data...)
}

// recordLen is the size of the record that captures data.
func (t *PcapTap) recordLen(data []byte) int {
	return pcapRecordLen + min(len(data), t.snap)
}

// appendRecord appends the record of data, stamped ts, to b.
func (t *PcapTap) appendRecord(b []byte, ts time.Time, data []byte) []byte {
	return AppendPcapRecord(b, ts, data[:min(len(data), t.snap)], len(data))
}

// room makes sure the buffer can take need more bytes, flushing it if not.
// It reports false once the writer has failed.
func (t *PcapTap) room(need int) bool {
	if t.err == nil && t.w.Available() < need {
		t.flush()
	}
	return t.err == nil
}

// flush writes the buffer out and settles the count of the records in it.
func (t *PcapTap) flush() {
	if err := t.w.Flush(); err != nil {
		if t.err == nil {
			t.err = fmt.Errorf("nic: writing pcap: %w", err)
		}
		t.stats.Missed += t.buffered.Frames
	} else {
		t.stats.Frames += t.buffered.Frames
		t.stats.Bytes += t.buffered.Bytes
	}
	t.buffered = PcapStats{}
}

// stage appends to the buffer's free space the records of as many frames of
// fs as fit (at least one, after room), without committing them: the caller
// decides how many to keep.
func (t *PcapTap) stage(ts time.Time, fs []Frame) (staged []byte, n int) {
	staged = t.w.AvailableBuffer()
	for n < len(fs) && len(staged)+t.recordLen(fs[n].Data) <= cap(staged) {
		staged = t.appendRecord(staged, ts, fs[n].Data)
		n++
	}
	return staged, n
}

// commit keeps the staged records of frames fs, which must be the first
// ones staged.
func (t *PcapTap) commit(staged []byte, fs []Frame) {
	kept := 0
	for _, f := range fs {
		kept += t.recordLen(f.Data)
		t.buffered.Frames++
		t.buffered.Bytes += uint64(min(len(f.Data), t.snap))
	}
	// staged is the buffer's own free space, so this write only moves the
	// buffer's end; it cannot fail, nor flush.
	t.w.Write(staged[:kept])
}

// Receive receives from the inner link and captures the frames received.
func (t *PcapTap) Receive(fs []Frame) (int, error) {
	n, err := t.inner.Receive(fs)
	if n == 0 {
		return n, err
	}
	ts := t.now()
	for done := 0; done < n; {
		if !t.room(t.recordLen(fs[done].Data)) {
			t.stats.Missed += uint64(n - done)
			break
		}
		staged, k := t.stage(ts, fs[done:n])
		t.commit(staged, fs[done:done+k])
		done += k
	}
	return n, err
}

// Transmit captures the frames the inner link accepts. The records are
// staged before the inner Transmit, since the frames' bytes are not ours to
// read after it, and kept only for the frames it took.
func (t *PcapTap) Transmit(fs []Frame) (int, error) {
	if len(fs) == 0 {
		return t.inner.Transmit(fs)
	}
	ts := t.now()
	sent := 0
	for sent < len(fs) {
		if !t.room(t.recordLen(fs[sent].Data)) {
			n, err := t.inner.Transmit(fs[sent:])
			t.stats.Missed += uint64(n)
			return sent + n, err
		}
		staged, k := t.stage(ts, fs[sent:])
		n, err := t.inner.Transmit(fs[sent : sent+k])
		t.commit(staged, fs[sent:sent+n])
		sent += n
		if err != nil || n < k {
			return sent, err
		}
	}
	return sent, nil
}

// Flush writes the buffered records to the writer. It returns the first
// error the writer ever gave, so a capture that failed long ago still says
// so.
func (t *PcapTap) Flush() error {
	if t.err == nil {
		t.flush()
	}
	return t.err
}

// Close flushes the capture and closes the inner link, and returns both
// errors.
func (t *PcapTap) Close() error {
	return errors.Join(t.Flush(), t.inner.Close())
}

// CaptureStats returns what the tap captured so far. Frames still in the
// buffer are counted once flushed.
func (t *PcapTap) CaptureStats() PcapStats { return t.stats }

// Alloc lends transmit buffers of the inner link.
func (t *PcapTap) Alloc(fs []Frame) int { return t.inner.Alloc(fs) }

// Release gives frames back to the inner link.
func (t *PcapTap) Release(fs []Frame) { t.inner.Release(fs) }

// MAC is the inner link's hardware address.
func (t *PcapTap) MAC() net.HardwareAddr { return t.inner.MAC() }

// MTU is the inner link's MTU.
func (t *PcapTap) MTU() int { return t.inner.MTU() }

// Stats returns the inner link's counters.
func (t *PcapTap) Stats() Stats { return t.inner.Stats() }
