package nic

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var _ Link = (*PcapTap)(nil)

// pcapRecord is one frame read back from a capture.
type pcapRecord struct {
	ts   time.Time
	orig int
	data []byte
}

// readPcap parses a classic little-endian nanosecond pcap file, checking its
// header, independently of the writer's code.
func readPcap(t *testing.T, b []byte, wantSnap int) []pcapRecord {
	t.Helper()
	if len(b) < 24 {
		t.Fatalf("capture of %d bytes has no header", len(b))
	}
	le := binary.LittleEndian
	if magic := le.Uint32(b); magic != 0xa1b23c4d {
		t.Fatalf("magic %#x, want 0xa1b23c4d (nanosecond pcap)", magic)
	}
	if major, minor := le.Uint16(b[4:]), le.Uint16(b[6:]); major != 2 || minor != 4 {
		t.Errorf("version %d.%d, want 2.4", major, minor)
	}
	if snap := le.Uint32(b[16:]); snap != uint32(wantSnap) {
		t.Errorf("snap length %d, want %d", snap, wantSnap)
	}
	if lt := le.Uint32(b[20:]); lt != 1 {
		t.Errorf("link type %d, want 1 (Ethernet)", lt)
	}
	var recs []pcapRecord
	for b = b[24:]; len(b) > 0; {
		if len(b) < 16 {
			t.Fatalf("truncated record header: %d bytes", len(b))
		}
		incl := int(le.Uint32(b[8:]))
		if len(b) < 16+incl {
			t.Fatalf("record of %d bytes truncated to %d", incl, len(b)-16)
		}
		recs = append(recs, pcapRecord{
			ts:   time.Unix(int64(le.Uint32(b)), int64(le.Uint32(b[4:]))),
			orig: int(le.Uint32(b[12:])),
			data: b[16 : 16+incl],
		})
		b = b[16+incl:]
	}
	return recs
}

// captured is one frame the test expects in a capture.
type captured struct {
	ts    time.Time
	frame []byte
	port  uint16 // UDP destination port
}

// captureBothWays runs a pipe with a tap on end a: a sends 10 frames, then
// receives 8 from b, then sends 14 more, the virtual clock moving between
// batches. It returns the capture and the frames it must contain, in order.
func captureBothWays(t *testing.T, snap int) ([]byte, []captured) {
	var clock vclock
	var out bytes.Buffer
	a, b := NewPipe(PipeConfig{})
	tap, err := NewPcapTap(a, &out, PcapConfig{Now: clock.Time, SnapLen: snap})
	if err != nil {
		t.Fatal(err)
	}
	var want []captured
	batch := func(from, to Link, n int, port uint16) {
		var frames [][]byte
		for i := range n {
			p := port + uint16(i)
			f := udpFrame(to.MAC(), from.MAC(), 40000, p, bytes.Repeat([]byte{byte(p)}, int(p%7)*200))
			frames = append(frames, f)
			want = append(want, captured{clock.Time(), f, p})
		}
		send(t, from, frames...)
	}
	batch(tap, b, 10, 5000)
	clock.t += 1500*time.Microsecond + 123*time.Nanosecond
	batch(b, tap, 8, 6000)
	if got := drain(t, tap); len(got) != 8 {
		t.Fatalf("tap received %d frames, want 8", len(got))
	}
	clock.t += 2 * time.Second
	batch(tap, b, 14, 7000)
	if err := tap.Close(); err != nil {
		t.Fatal(err)
	}
	if s := tap.CaptureStats(); s.Frames != 32 || s.Missed != 0 {
		t.Errorf("capture stats %+v, want 32 frames and none missed", s)
	}
	return out.Bytes(), want
}

func TestPcapTapRecordsBothDirections(t *testing.T) {
	capture, want := captureBothWays(t, 0)
	recs := readPcap(t, capture, 65535)
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		if !r.ts.Equal(want[i].ts) {
			t.Errorf("record %d stamped %v, want %v", i, r.ts, want[i].ts)
		}
		if r.orig != len(want[i].frame) || !bytes.Equal(r.data, want[i].frame) {
			t.Errorf("record %d (%d of %d bytes) differs from the frame sent (%d bytes)", i, len(r.data), r.orig, len(want[i].frame))
		}
	}
}

func TestPcapTapSnapLength(t *testing.T) {
	const snap = 60
	capture, want := captureBothWays(t, snap)
	recs := readPcap(t, capture, snap)
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d", len(recs), len(want))
	}
	for i, r := range recs {
		f := want[i].frame
		if r.orig != len(f) || !bytes.Equal(r.data, f[:min(len(f), snap)]) {
			t.Errorf("record %d keeps %d of %d bytes, want the first %d of %d", i, len(r.data), r.orig, min(len(f), snap), len(f))
		}
	}
}

// TestPcapTapReadByTshark checks the capture against an independent reader:
// every frame, its length, its UDP port and its timestamp, and that tshark
// finds the IPv4 and UDP checksums good (so the test frames are real ones).
func TestPcapTapReadByTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tshark not installed, and CI must run this test")
		}
		t.Skip("tshark not installed")
	}
	capture, want := captureBothWays(t, 0)
	path := filepath.Join(t.TempDir(), "capture.pcap")
	if err := os.WriteFile(path, capture, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tshark, "-r", path, "-T", "fields",
		"-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
		"-e", "frame.len", "-e", "udp.dstport", "-e", "frame.time_epoch",
		"-e", "ip.checksum.status", "-e", "udp.checksum.status")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.Bytes())
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("tshark read %d frames, want %d:\n%s", len(lines), len(want), out)
	}
	const good = "1" // Wireshark's PROTO_CHECKSUM_E_GOOD
	for i, line := range lines {
		w := want[i]
		wantLine := fmt.Sprintf("%d\t%d\t%d.%09d\t%s\t%s", len(w.frame), w.port, w.ts.Unix(), w.ts.Nanosecond(), good, good)
		if line != wantLine {
			t.Errorf("frame %d: tshark says %q, want %q", i, line, wantLine)
		}
	}
}

// TestPcapTapAcrossManyFlushes captures megabytes, so that batches are split
// where the buffer fills, and checks that no record is lost or torn there.
func TestPcapTapAcrossManyFlushes(t *testing.T) {
	const batches, perBatch = 200, 64
	var out bytes.Buffer
	a, b := NewPipe(PipeConfig{})
	ta, _ := NewPcapTap(a, &out, PcapConfig{})
	fs := make([]Frame, perBatch)
	seq := uint64(0)
	for range batches {
		n := ta.Alloc(fs)
		for i := range fs[:n] {
			fs[i].Data = fs[i].Data[:60+int(seq%1455)]
			fillSeqFrame(fs[i].Data, seq)
			seq++
		}
		ta.Transmit(fs[:n])
		drain(t, b)
	}
	if err := ta.Flush(); err != nil {
		t.Fatal(err)
	}
	recs := readPcap(t, out.Bytes(), 65535)
	if len(recs) != batches*perBatch {
		t.Fatalf("%d records, want %d", len(recs), batches*perBatch)
	}
	for i, r := range recs {
		if !bytes.Equal(r.data, seqFrame(uint64(i), 60+i%1455)) {
			t.Fatalf("record %d is not frame %d", i, i)
		}
	}
}

func TestPcapTapCapturesOnlyWhatTheLinkTook(t *testing.T) {
	var out bytes.Buffer
	a, b := NewPipe(PipeConfig{})
	tap, err := NewPcapTap(&stingyLink{Link: a}, &out, PcapConfig{})
	if err != nil {
		t.Fatal(err)
	}
	fs := make([]Frame, 3)
	tap.Alloc(fs)
	for i := range fs {
		fs[i].Data = fs[i].Data[:copy(fs[i].Data, seqFrame(uint64(i), 64))]
	}
	for sent := 0; sent < len(fs); {
		n, err := tap.Transmit(fs[sent:])
		if err != nil || n != 1 {
			t.Fatalf("Transmit: %d, %v; want 1, nil", n, err)
		}
		sent += n
	}
	if err := tap.Flush(); err != nil {
		t.Fatal(err)
	}
	recs := readPcap(t, out.Bytes(), 65535)
	if len(recs) != 3 {
		t.Fatalf("%d records for 3 frames sent one by one, want 3", len(recs))
	}
	for i, r := range recs {
		if frameSeq(r.data) != uint64(i) {
			t.Errorf("record %d holds frame %d", i, frameSeq(r.data))
		}
	}
	if got := drain(t, b); len(got) != 3 {
		t.Errorf("peer received %d frames, want 3", len(got))
	}
}

// failingWriter accepts limit bytes, then fails every write.
type failingWriter struct{ limit int }

var errDiskFull = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.limit {
		n := w.limit
		w.limit = 0
		return n, errDiskFull
	}
	w.limit -= len(p)
	return len(p), nil
}

func TestPcapTapWriterErrorsAreKeptAndCounted(t *testing.T) {
	a, b := NewPipe(PipeConfig{})
	tap, err := NewPcapTap(a, &failingWriter{limit: 100}, PcapConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		send(t, tap, seqFrame(uint64(i), 64))
	}
	if err := tap.Flush(); !errors.Is(err, errDiskFull) {
		t.Fatalf("Flush: %v, want the writer's error", err)
	}
	for i := range 5 {
		send(t, b, seqFrame(uint64(i), 64))
		send(t, tap, seqFrame(uint64(i), 64))
	}
	if got := drain(t, tap); len(got) != 5 {
		t.Errorf("tap received %d frames after the capture failed, want 5", len(got))
	}
	if got := drain(t, b); len(got) != 10 {
		t.Errorf("peer received %d frames after the capture failed, want 10", len(got))
	}
	if err := tap.Close(); !errors.Is(err, errDiskFull) {
		t.Errorf("Close: %v, want the writer's error", err)
	}
	if s := tap.CaptureStats(); s.Frames != 0 || s.Missed != 15 {
		t.Errorf("capture stats %+v, want 0 frames written and 15 missed", s)
	}
}

func TestPcapTapZeroAllocsPerFrame(t *testing.T) {
	a, b := NewPipe(PipeConfig{})
	ta, _ := NewPcapTap(a, io.Discard, PcapConfig{})
	tb, _ := NewPcapTap(b, io.Discard, PcapConfig{})
	fs := make([]Frame, 64)
	allocs := testing.AllocsPerRun(1000, func() { tapRoundTrip(ta, tb, fs) })
	if allocs != 0 {
		t.Errorf("%v allocations per batch, want 0", allocs)
	}
}

// tapRoundTrip sends a batch of 64-byte frames from ta to tb, so each frame
// is captured twice: on transmit and on receive.
func tapRoundTrip(ta, tb *PcapTap, fs []Frame) int {
	n := ta.Alloc(fs)
	for i := range fs[:n] {
		fs[i].Data = fs[i].Data[:64]
		fillSeqFrame(fs[i].Data, uint64(i))
	}
	ta.Transmit(fs[:n])
	n, _ = tb.Receive(fs)
	tb.Release(fs[:n])
	return n
}

// BenchmarkPcapTap captures each frame twice (transmit and receive) into
// io.Discard: the cost of the tap, not of a disk.
func BenchmarkPcapTap(b *testing.B) {
	a, c := NewPipe(PipeConfig{})
	ta, _ := NewPcapTap(a, io.Discard, PcapConfig{})
	tc, _ := NewPcapTap(c, io.Discard, PcapConfig{})
	fs := make([]Frame, 64)
	b.ReportAllocs()
	frames := 0
	for b.Loop() {
		frames += tapRoundTrip(ta, tc, fs)
	}
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
}
