package nic

import (
	"bytes"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

var (
	_ Link   = (*Pipe)(nil)
	_ Parker = (*Pipe)(nil)
	_ Parker = (*XDPLink)(nil)
)

func TestPipeDefaults(t *testing.T) {
	a, b := NewPipe(PipeConfig{})
	if bytes.Equal(a.MAC(), b.MAC()) {
		t.Fatalf("both ends have MAC %v", a.MAC())
	}
	for _, p := range []*Pipe{a, b} {
		mac := p.MAC()
		if len(mac) != 6 || mac[0]&0x02 == 0 || mac[0]&0x01 != 0 {
			t.Errorf("MAC %v: want a 6-byte locally administered unicast address", mac)
		}
		if p.MTU() != 1500 {
			t.Errorf("MTU %d, want 1500", p.MTU())
		}
	}
	fs := make([]Frame, 300)
	if n := a.Alloc(fs); n != 256 {
		t.Errorf("Alloc from a default pool gave %d buffers, want 256", n)
	}
	if len(fs[0].Data) != 1500+EthernetHeaderLen {
		t.Errorf("transmit buffer of %d bytes, want %d", len(fs[0].Data), 1500+EthernetHeaderLen)
	}
}

func TestPipeDeliversInOrderBothWays(t *testing.T) {
	a, b := NewPipe(PipeConfig{MTU: 9000, Buffers: 64, QueueDepth: 64})
	for _, dir := range []struct {
		name     string
		from, to *Pipe
	}{{"a to b", a, b}, {"b to a", b, a}} {
		t.Run(dir.name, func(t *testing.T) {
			var want [][]byte
			for batch := range 5 {
				var frames [][]byte
				for i := range 10 {
					seq := uint64(batch*10 + i)
					frames = append(frames, seqFrame(seq, 60+int(seq)*150)) // up to 9,000 bytes
				}
				send(t, dir.from, frames...)
				want = append(want, frames...)
			}
			got := drain(t, dir.to)
			if len(got) != len(want) {
				t.Fatalf("received %d frames, want %d", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("frame %d differs: seq %d, want %d", i, frameSeq(got[i]), frameSeq(want[i]))
				}
			}
			var bytesSent uint64
			for _, f := range want {
				bytesSent += uint64(len(f))
			}
			tx, rx := dir.from.Stats(), dir.to.Stats()
			if tx.TxFrames != 50 || tx.TxBytes != bytesSent || rx.RxFrames != 50 || rx.RxBytes != bytesSent {
				t.Errorf("stats tx %+v rx %+v, want 50 frames and %d bytes each way", tx, rx, bytesSent)
			}
		})
	}
}

func TestPipeFullQueueDropsAndCounts(t *testing.T) {
	a, b := NewPipe(PipeConfig{Buffers: 16, QueueDepth: 4})
	for i := range 10 {
		send(t, a, seqFrame(uint64(i), 64))
	}
	got := drain(t, b)
	if len(got) != 4 {
		t.Fatalf("received %d frames through a queue of 4, want 4", len(got))
	}
	for i, f := range got {
		if frameSeq(f) != uint64(i) {
			t.Errorf("frame %d has seq %d: the queue must keep the oldest", i, frameSeq(f))
		}
	}
	if s := b.Stats(); s.RxDropped != 6 {
		t.Errorf("receiver RxDropped %d, want 6", s.RxDropped)
	}
	if s := a.Stats(); s.TxFrames != 10 || s.TxErrors != 0 {
		t.Errorf("sender stats %+v: all 10 frames left it", s)
	}
	// Dropped frames' buffers went straight home; received ones came back
	// on Release: the whole pool is free again.
	if n := a.Alloc(make([]Frame, 32)); n != 16 {
		t.Errorf("after the drops the sender can Alloc %d buffers, want all 16", n)
	}
}

func TestPipeReceiverHoldingFramesStarvesSender(t *testing.T) {
	a, b := NewPipe(PipeConfig{Buffers: 8, QueueDepth: 8})
	for i := range 8 {
		send(t, a, seqFrame(uint64(i), 64))
	}
	held := make([]Frame, 8)
	if n, err := b.Receive(held); n != 8 || err != nil {
		t.Fatalf("Receive: %d, %v; want 8, nil", n, err)
	}
	if n := a.Alloc(make([]Frame, 1)); n != 0 {
		t.Fatalf("Alloc while the peer holds the whole pool gave %d buffers, want 0", n)
	}
	b.Release(held[:3])
	if n := a.Alloc(make([]Frame, 8)); n != 3 {
		t.Errorf("after the peer released 3 frames Alloc gave %d buffers, want 3", n)
	}
}

func TestPipeOwnershipErrorsAreCountedNotHarmful(t *testing.T) {
	a, b := NewPipe(PipeConfig{Buffers: 4, QueueDepth: 4})
	other, _ := NewPipe(PipeConfig{Buffers: 4})

	tx := make([]Frame, 2)
	a.Alloc(tx)
	stale := tx[0]
	a.Release(tx[:1])
	a.Release(tx[:1]) // double release of a transmit buffer

	send(t, a, seqFrame(1, 64))
	rx := make([]Frame, 1)
	if n, _ := b.Receive(rx); n != 1 {
		t.Fatal("nothing received")
	}
	if n, err := b.Transmit(rx); n != 1 || err != nil { // not b's to send: it belongs to a's pool
		t.Fatalf("Transmit of a received frame: %d, %v; want 1, nil", n, err)
	}
	b.Release(rx)
	b.Release(rx) // double release of a received frame

	foreign := make([]Frame, 1)
	other.Alloc(foreign)
	a.Release(foreign)
	a.Transmit(foreign)
	a.Release(make([]Frame, 1)) // the zero Frame
	fresh := make([]Frame, 1)
	a.Alloc(fresh) // reuses a buffer, so stale's buffer gets a new generation
	a.Release([]Frame{stale})
	a.Release(fresh)
	a.Release(tx[1:])

	if got := a.BadFrames(); got != 5 {
		t.Errorf("a.BadFrames() = %d, want 5 (double release, foreign release and transmit, zero frame, stale handle)", got)
	}
	if got := b.BadFrames(); got != 2 {
		t.Errorf("b.BadFrames() = %d, want 2 (transmit of a received frame, double release)", got)
	}
	if s := b.Stats(); s.TxFrames != 0 {
		t.Errorf("b sent %d frames it did not own", s.TxFrames)
	}
	// The pool is intact: every buffer is free exactly once.
	all := make([]Frame, 8)
	n := a.Alloc(all)
	if n != 4 {
		t.Fatalf("Alloc after the misuse gave %d buffers, want 4", n)
	}
	seen := map[*byte]bool{}
	for _, f := range all[:n] {
		if seen[&f.Data[0]] {
			t.Fatalf("buffer %p handed out twice", &f.Data[0])
		}
		seen[&f.Data[0]] = true
	}
}

func TestPipeMalformedTransmitIsATxError(t *testing.T) {
	a, b := NewPipe(PipeConfig{Buffers: 2})
	fs := make([]Frame, 2)
	a.Alloc(fs)
	fs[0].Data = fs[0].Data[:EthernetHeaderLen-1] // shorter than an Ethernet header
	fs[1].Data = bytes.Clone(fs[1].Data[:64])     // bytes written somewhere else than the buffer
	if n, err := a.Transmit(fs); n != 2 || err != nil {
		t.Fatalf("Transmit: %d, %v; want 2, nil", n, err)
	}
	if s := a.Stats(); s.TxErrors != 2 || s.TxFrames != 0 {
		t.Errorf("stats %+v, want 2 TxErrors and no TxFrames", s)
	}
	if got := drain(t, b); len(got) != 0 {
		t.Errorf("peer received %d malformed frames", len(got))
	}
	if n := a.Alloc(fs); n != 2 {
		t.Errorf("the malformed frames' buffers were not recycled: Alloc gave %d, want 2", n)
	}
}

func TestPipeClose(t *testing.T) {
	a, b := NewPipe(PipeConfig{})
	fs := make([]Frame, 1)
	b.Alloc(fs)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Receive(fs); !errors.Is(err, ErrClosed) {
		t.Errorf("Receive after Close: %v, want ErrClosed", err)
	}
	if _, err := a.Transmit(fs); !errors.Is(err, ErrClosed) {
		t.Errorf("Transmit after Close: %v, want ErrClosed", err)
	}
	if n := a.Alloc(make([]Frame, 1)); n != 0 {
		t.Errorf("Alloc after Close gave %d buffers", n)
	}
	fs[0].Data = fs[0].Data[:64]
	if n, err := b.Transmit(fs); n != 1 || err != nil {
		t.Fatalf("Transmit to a closed peer: %d, %v; want 1, nil", n, err)
	}
	if s := b.Stats(); s.TxErrors != 1 || s.TxFrames != 0 {
		t.Errorf("stats after sending to a closed peer %+v, want 1 TxError", s)
	}
}

// pipeRoundTrip moves one batch from a to b and back to a's pool, writing
// each frame's sequence number so the bytes really move.
func pipeRoundTrip(a, b *Pipe, fs []Frame, size int, seq uint64) int {
	n := a.Alloc(fs)
	for i := range fs[:n] {
		fs[i].Data = fs[i].Data[:size]
		fillSeqFrame(fs[i].Data, seq+uint64(i))
	}
	a.Transmit(fs[:n])
	n, _ = b.Receive(fs)
	b.Release(fs[:n])
	return n
}

func TestPipeZeroAllocsPerFrame(t *testing.T) {
	a, b := NewPipe(PipeConfig{})
	fs := make([]Frame, 64)
	allocs := testing.AllocsPerRun(100, func() {
		if n := pipeRoundTrip(a, b, fs, 64, 0); n != 64 {
			t.Fatalf("round trip moved %d frames, want 64", n)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch of 64 frames, want 0", allocs)
	}
}

// TestPipeTwoGoroutines drives each end from its own goroutine, as two stacks
// would: frames arrive in order, and every frame is either received or
// counted as dropped. Run with -race to check the ring's synchronisation.
func TestPipeTwoGoroutines(t *testing.T) {
	const total = 200_000
	a, b := NewPipe(PipeConfig{Buffers: 64, QueueDepth: 32})
	var sent atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		fs := make([]Frame, 16)
		for seq := uint64(0); seq < total; {
			n := a.Alloc(fs[:min(len(fs), int(total-seq))])
			if n == 0 {
				runtime.Gosched() // the receiver holds our buffers
				continue
			}
			for i := range fs[:n] {
				fs[i].Data = fs[i].Data[:64]
				fillSeqFrame(fs[i].Data, seq)
				seq++
			}
			a.Transmit(fs[:n])
		}
		sent.Store(true)
	})
	received, next := 0, uint64(0)
	fs := make([]Frame, 16)
	for {
		done := sent.Load() // read before Receive: everything sent before it is visible now
		n, err := b.Receive(fs)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs[:n] {
			seq := frameSeq(f.Data)
			if seq < next {
				t.Fatalf("frame %d arrived after frame %d", seq, next-1)
			}
			if !bytes.Equal(f.Data, seqFrame(seq, 64)) {
				t.Fatalf("frame %d corrupted in transit", seq)
			}
			next = seq + 1
		}
		received += n
		b.Release(fs[:n])
		if n == 0 && done {
			break
		}
		if n == 0 {
			runtime.Gosched()
		}
	}
	wg.Wait()
	dropped := b.Stats().RxDropped
	if uint64(received)+dropped != total {
		t.Errorf("received %d + dropped %d != sent %d", received, dropped, total)
	}
	t.Logf("received %d, dropped %d", received, dropped)
}

// BenchmarkPipe moves batches of 64 frames of 64 bytes from one end to the
// other and back to the sender's pool, on one goroutine.
func BenchmarkPipe(b *testing.B) {
	const batch = 64
	pa, pb := NewPipe(PipeConfig{})
	fs := make([]Frame, batch)
	b.ReportAllocs()
	frames := 0
	for b.Loop() {
		frames += pipeRoundTrip(pa, pb, fs, 64, uint64(frames))
	}
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
}

// BenchmarkPipeTwoGoroutines is BenchmarkPipe with the receiver on its own
// goroutine, so the ring is crossed between cores.
func BenchmarkPipeTwoGoroutines(b *testing.B) {
	const batch = 64
	pa, pb := NewPipe(PipeConfig{Buffers: 512, QueueDepth: 512})
	var stop atomic.Bool
	var wg sync.WaitGroup
	var received int
	wg.Go(func() {
		fs := make([]Frame, batch)
		for {
			done := stop.Load()
			n, _ := pb.Receive(fs)
			pb.Release(fs[:n])
			received += n
			if n == 0 && done {
				return
			}
			if n == 0 {
				runtime.Gosched() // when both goroutines share a CPU, let the sender run
			}
		}
	})
	fs := make([]Frame, batch)
	b.ReportAllocs()
	sent := 0
	for b.Loop() {
		// One op is one whole batch, however many Allocs it takes while
		// the receiver still holds our buffers.
		for k := 0; k < batch; {
			n := pa.Alloc(fs[:batch-k])
			if n == 0 {
				runtime.Gosched()
			}
			for i := range fs[:n] {
				fs[i].Data = fs[i].Data[:64]
				fillSeqFrame(fs[i].Data, uint64(sent+i))
			}
			pa.Transmit(fs[:n])
			sent += n
			k += n
		}
	}
	stop.Store(true)
	wg.Wait()
	b.ReportMetric(float64(received)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(pb.Stats().RxDropped)/float64(max(sent, 1)), "dropped/frame")
}

// TestPipePark: Park returns when the peer transmits, at the armed
// deadline, and on a Wake, whether it came before or during the Park.
// In a synctest bubble time moves only when every goroutine waits, so
// each Park's return time is exact, and a Park that never returns fails
// the test as a deadlock instead of hanging it.
func TestPipePark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := NewPipe(PipeConfig{})
		park := func(what string, want time.Duration) {
			t.Helper()
			start := time.Now()
			b.Park()
			if d := time.Since(start); d != want {
				t.Fatalf("Park for %s returned after %v, want %v", what, d, want)
			}
		}
		b.Arm(time.Now().Add(30 * time.Millisecond))
		park("the deadline", 30*time.Millisecond)
		b.Arm(time.Time{})
		go func() {
			time.Sleep(10 * time.Millisecond)
			fs := make([]Frame, 1)
			a.Alloc(fs)
			a.Transmit(fs)
		}()
		park("a frame", 10*time.Millisecond)
		fs := make([]Frame, 1)
		if n, _ := b.Receive(fs); n != 1 {
			t.Fatalf("Park returned with %d frames to receive", n)
		}
		b.Release(fs)
		b.Wake()
		park("a Wake before it", 0)
		go func() {
			time.Sleep(10 * time.Millisecond)
			b.Wake()
		}()
		park("a Wake during it", 10*time.Millisecond)
	})
}
