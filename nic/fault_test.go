package nic

import (
	"bytes"
	"errors"
	"math"
	"math/bits"
	"slices"
	"testing"
	"time"
)

var _ Link = (*Faulty)(nil)

// faultRun is what the far end of a Faulty saw: each frame's bytes and the
// virtual time it was received at.
type faultRun struct {
	frames [][]byte
	at     []time.Duration
	sentAt []time.Duration // by sequence number
	stats  FaultStats
}

// runFaulty sends n numbered frames of size bytes through a Faulty over a
// pipe, perBatch per Transmit with the virtual clock advancing tick between
// batches, receiving after each batch. At the end it moves the clock past
// every delay and flushes, so nothing stays held.
func runFaulty(t testing.TB, cfg FaultConfig, n, size, perBatch int, tick time.Duration) faultRun {
	t.Helper()
	var clock vclock
	cfg.Now = clock.Now
	a, b := NewPipe(PipeConfig{Buffers: 4096, QueueDepth: 4096})
	f := NewFaulty(a, cfg)
	run := faultRun{sentAt: make([]time.Duration, n)}
	recv := func() {
		for _, fr := range drain(t, b) {
			run.frames = append(run.frames, fr)
			run.at = append(run.at, clock.t)
		}
	}
	fs := make([]Frame, perBatch)
	for seq := 0; seq < n; {
		k := f.Alloc(fs[:min(perBatch, n-seq)])
		if k == 0 {
			t.Fatalf("out of transmit buffers at frame %d", seq)
		}
		for i := range fs[:k] {
			fs[i].Data = fs[i].Data[:size]
			fillSeqFrame(fs[i].Data, uint64(seq))
			run.sentAt[seq] = clock.t
			seq++
		}
		if m, err := f.Transmit(fs[:k]); m != k || err != nil {
			t.Fatalf("Transmit: %d, %v; want %d, nil", m, err, k)
		}
		recv()
		clock.t += tick
	}
	clock.t += cfg.Delay + cfg.Jitter + cfg.ReorderDelay + time.Second
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	recv()
	run.stats = f.FaultStats()
	if run.stats.Held != 0 {
		t.Fatalf("%d frames still held after the final flush", run.stats.Held)
	}
	return run
}

// checkBinomial fails unless observed is within 5 standard deviations of the
// mean of a binomial distribution of n trials of probability p: a correct
// injector fails it with probability below 1e-6, whatever the seed.
func checkBinomial(t *testing.T, what string, observed, n int, p float64) {
	t.Helper()
	mean := float64(n) * p
	sd := math.Sqrt(float64(n) * p * (1 - p))
	if math.Abs(float64(observed)-mean) > 5*sd {
		t.Errorf("%s: observed %d in %d, want %.0f ± %.0f (5 sd, p=%v)", what, observed, n, mean, 5*sd, p)
	} else {
		t.Logf("%s: observed %d in %d, expected %.0f ± %.0f (5 sd)", what, observed, n, mean, 5*sd)
	}
}

// inversions counts pairs received in the opposite order to their sequence
// numbers, with a Fenwick tree: O(n log n).
func inversions(seqs []uint64, max int) int {
	tree := make([]int, max+1)
	inv := 0
	for i, s := range seqs {
		seen := 0 // frames so far with a sequence number <= s
		for j := int(s) + 1; j > 0; j -= j & -j {
			seen += tree[j]
		}
		inv += i - seen
		for j := int(s) + 1; j <= max; j += j & -j {
			tree[j]++
		}
	}
	return inv
}

func TestFaultyZeroConfigChangesNothing(t *testing.T) {
	run := runFaulty(t, FaultConfig{}, 1000, 64, 10, time.Microsecond)
	if len(run.frames) != 1000 {
		t.Fatalf("received %d frames, want 1000", len(run.frames))
	}
	for i, fr := range run.frames {
		if !bytes.Equal(fr, seqFrame(uint64(i), 64)) {
			t.Fatalf("frame %d changed or out of order (seq %d)", i, frameSeq(fr))
		}
		if run.at[i] != run.sentAt[i] {
			t.Fatalf("frame %d delayed by %v", i, run.at[i]-run.sentAt[i])
		}
	}
	if run.stats != (FaultStats{}) {
		t.Errorf("stats %+v, want all zero", run.stats)
	}
}

// Drop loses exactly the frames it picks, counted as losses, and the rest
// pass untouched and in order.
func TestFaultyDropPicksFrames(t *testing.T) {
	run := runFaulty(t, FaultConfig{Drop: func(f []byte) bool { return frameSeq(f)%7 == 3 }}, 100, 64, 10, time.Microsecond)
	var want [][]byte
	for i := range uint64(100) {
		if i%7 != 3 {
			want = append(want, seqFrame(i, 64))
		}
	}
	if !slices.EqualFunc(run.frames, want, bytes.Equal) {
		t.Errorf("received %d frames, want the %d Drop did not pick, in order", len(run.frames), len(want))
	}
	if run.stats != (FaultStats{Dropped: 14}) {
		t.Errorf("stats %+v, want 14 dropped and nothing else", run.stats)
	}
}

// TestFaultyRates checks, from what the receiver sees, that each impairment
// happens at its configured rate, and that the counters say exactly what
// happened.
func TestFaultyRates(t *testing.T) {
	const n, size = 100_000, 64
	cfg := FaultConfig{
		Seed: 1, Loss: 0.05, Duplicate: 0.03, Reorder: 0.02, Corrupt: 0.01,
		ReorderDelay: 100 * time.Microsecond,
		CorruptFrom:  EthernetHeaderLen + 8, // spare the sequence number, so the receiver can tell frames apart
	}
	run := runFaulty(t, cfg, n, size, 10, 10*time.Microsecond)

	copies := make([]int, n)
	var lost, duplicated, corrupted, late int
	var firstArrivals []uint64
	next := uint64(0) // one past the highest sequence number received so far
	for _, fr := range run.frames {
		seq := frameSeq(fr)
		copies[seq]++
		if copies[seq] > 1 {
			duplicated++
			continue
		}
		firstArrivals = append(firstArrivals, seq)
		if seq < next {
			late++
		}
		next = max(next, seq+1)
		if diff := bitDiff(fr, seqFrame(seq, size)); diff != 0 {
			corrupted++
			if diff != 1 {
				t.Errorf("frame %d has %d bits flipped, want 1", seq, diff)
			}
		}
	}
	for _, c := range copies {
		if c == 0 {
			lost++
		}
	}
	sent := n - lost // frames that survived the loss decision and met the others
	checkBinomial(t, "lost", lost, n, cfg.Loss)
	checkBinomial(t, "duplicated", duplicated, sent, cfg.Duplicate)
	checkBinomial(t, "corrupted", corrupted, sent, cfg.Corrupt)
	checkBinomial(t, "arrived late", late, sent, cfg.Reorder)

	s := run.stats
	if uint64(lost) != s.Dropped || uint64(duplicated) != s.Duplicated || uint64(corrupted) != s.Corrupted {
		t.Errorf("receiver saw lost %d, duplicated %d, corrupted %d; counters say %+v", lost, duplicated, corrupted, s)
	}
	// A frame held back is late unless nothing was sent in the window
	// after it, which can only happen at the very end of the run.
	if uint64(late) > s.Reordered || s.Reordered-uint64(late) > 2 {
		t.Errorf("%d frames arrived late, but %d were reordered", late, s.Reordered)
	}
	inv := inversions(firstArrivals, n)
	if inv < late {
		t.Errorf("%d inversions for %d late frames", inv, late)
	}
	t.Logf("%d inversions among %d frames", inv, len(firstArrivals))
	if s.Overflowed != 0 || s.Delayed != 0 {
		t.Errorf("counters %+v: nothing should overflow or be delayed here", s)
	}
}

// bitDiff counts the bits in which a and b, of equal length, differ.
func bitDiff(a, b []byte) int {
	d := 0
	for i := range a {
		d += bits.OnesCount8(a[i] ^ b[i])
	}
	return d
}

// TestFaultyConservation checks that nothing is lost but what the injector
// dropped on purpose, with every impairment on at once.
func TestFaultyConservation(t *testing.T) {
	const n = 50_000
	cfg := FaultConfig{
		Seed: 2, Loss: 0.1, Duplicate: 0.1, Reorder: 0.1, Corrupt: 0.1,
		Delay: 300 * time.Microsecond, Jitter: 200 * time.Microsecond, ReorderDelay: 50 * time.Microsecond,
	}
	run := runFaulty(t, cfg, n, 128, 8, 10*time.Microsecond)
	s := run.stats
	if want := n - s.Dropped - s.Overflowed + s.Duplicated; uint64(len(run.frames)) != want {
		t.Errorf("received %d frames, want sent %d - dropped %d - overflowed %d + duplicated %d = %d",
			len(run.frames), n, s.Dropped, s.Overflowed, s.Duplicated, want)
	}
	if s.Overflowed != 0 {
		t.Errorf("%d frames overflowed the held queue", s.Overflowed)
	}
	if s.Delayed != n-s.Dropped {
		t.Errorf("Delayed %d, want every frame not dropped (%d)", s.Delayed, n-s.Dropped)
	}
}

func TestFaultyReplaysItsSeed(t *testing.T) {
	cfg := FaultConfig{
		Loss: 0.1, Duplicate: 0.1, Reorder: 0.1, Corrupt: 0.1,
		Delay: 100 * time.Microsecond, Jitter: 100 * time.Microsecond, ReorderDelay: 50 * time.Microsecond,
	}
	runs := map[uint64]faultRun{}
	for _, seed := range []uint64{7, 7, 8} {
		cfg.Seed = seed
		run := runFaulty(t, cfg, 5000, 64, 8, 10*time.Microsecond)
		prev, ok := runs[seed]
		runs[seed] = run
		if !ok {
			continue
		}
		if !slices.EqualFunc(run.frames, prev.frames, bytes.Equal) || !slices.Equal(run.at, prev.at) || run.stats != prev.stats {
			t.Fatalf("seed %d did not replay: %d frames, stats %+v; first run %d frames, stats %+v",
				seed, len(run.frames), run.stats, len(prev.frames), prev.stats)
		}
	}
	if slices.EqualFunc(runs[7].frames, runs[8].frames, bytes.Equal) {
		t.Error("seeds 7 and 8 gave the same frames")
	}
}

func TestFaultyDelay(t *testing.T) {
	const n, tick = 2000, 100 * time.Microsecond
	cfg := FaultConfig{Seed: 3, Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond}
	var clock vclock
	cfg.Now = clock.Now
	a, b := NewPipe(PipeConfig{})
	f := NewFaulty(a, cfg)
	sentAt := make([]time.Duration, n)
	var arrived []uint64
	check := func(frames [][]byte) {
		for _, fr := range frames {
			seq := frameSeq(fr)
			arrived = append(arrived, seq)
			// Frames leave on the first call at or after their due time, and
			// this loop calls every tick.
			if d := clock.t - sentAt[seq]; d < cfg.Delay || d > cfg.Delay+cfg.Jitter+tick {
				t.Errorf("frame %d took %v, want within [%v, %v]", seq, d, cfg.Delay, cfg.Delay+cfg.Jitter+tick)
			}
		}
	}
	for seq := range n {
		sentAt[seq] = clock.t
		send(t, f, seqFrame(uint64(seq), 64))
		check(drain(t, b))
		clock.t += tick
	}
	if f.FaultStats().Held == 0 {
		t.Fatal("nothing held at the end of the run: the delay did not hold frames")
	}
	// Flush alone lets the tail out, each frame when due.
	for end := clock.t + cfg.Delay + cfg.Jitter; clock.t <= end; clock.t += tick {
		if err := f.Flush(); err != nil {
			t.Fatal(err)
		}
		check(drain(t, b))
	}
	if len(arrived) != n {
		t.Fatalf("%d of %d frames arrived after the final flush", len(arrived), n)
	}
	if !slices.IsSorted(arrived) {
		t.Error("jitter reordered frames; only Reorder may")
	}
	if s := f.FaultStats(); s.Delayed != n || s.Held != 0 {
		t.Errorf("stats %+v, want Delayed %d and nothing held", s, n)
	}
}

func TestFaultyCorruptionFlipsExactlyOneBit(t *testing.T) {
	const n, size = 4000, 64
	for _, from := range []int{0, EthernetHeaderLen} {
		run := runFaulty(t, FaultConfig{Seed: 4, Corrupt: 1, CorruptFrom: from}, n, size, 10, time.Microsecond)
		if len(run.frames) != n {
			t.Fatalf("received %d frames, want %d", len(run.frames), n)
		}
		hits := make([]int, size)
		for i, fr := range run.frames {
			want := seqFrame(uint64(i), size)
			if d := bitDiff(fr, want); d != 1 {
				t.Fatalf("CorruptFrom %d: frame %d has %d bits flipped, want 1", from, i, d)
			}
			hits[firstDiff(fr, want)]++
		}
		for pos, h := range hits {
			// Flips land uniformly on the bytes allowed: n/(size-from) each on
			// average, none before from.
			if pos < from && h != 0 {
				t.Errorf("CorruptFrom %d: %d flips in byte %d", from, h, pos)
			}
			if pos >= from && h == 0 {
				t.Errorf("CorruptFrom %d: byte %d never corrupted in %d frames", from, pos, n)
			}
		}
	}
}

// firstDiff is the index of the first byte in which a and b differ.
func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func TestFaultyOverflowDropsAndCounts(t *testing.T) {
	var clock vclock
	a, _ := NewPipe(PipeConfig{Buffers: 16})
	f := NewFaulty(a, FaultConfig{Delay: time.Millisecond, MaxHeld: 4, Now: clock.Now})
	for i := range 10 {
		send(t, f, seqFrame(uint64(i), 64))
	}
	if s := f.FaultStats(); s.Held != 4 || s.Overflowed != 6 {
		t.Errorf("stats %+v, want 4 held and 6 overflowed", s)
	}
	// Overflowed frames went back to the pipe's pool.
	if n := a.Alloc(make([]Frame, 16)); n != 12 {
		t.Errorf("Alloc gave %d buffers, want 16 - 4 held = 12", n)
	}
}

func TestFaultyRetriesWhatTheInnerLinkRefuses(t *testing.T) {
	var clock vclock
	a, b := NewPipe(PipeConfig{})
	f := NewFaulty(&stingyLink{Link: a}, FaultConfig{Now: clock.Now})
	send(t, f, seqFrame(0, 64), seqFrame(1, 64), seqFrame(2, 64), seqFrame(3, 64))
	var got []uint64
	for range 4 {
		for _, fr := range drain(t, b) {
			got = append(got, frameSeq(fr))
		}
		if err := f.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, []uint64{0, 1, 2, 3}) {
		t.Errorf("received %v, want [0 1 2 3] one per call", got)
	}
}

func TestFaultyClose(t *testing.T) {
	var clock vclock
	a, _ := NewPipe(PipeConfig{})
	inner := &stingyLink{Link: a}
	f := NewFaulty(inner, FaultConfig{Delay: time.Second, Now: clock.Now})
	send(t, f, seqFrame(0, 64), seqFrame(1, 64), seqFrame(2, 64))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if inner.released != 3 {
		t.Errorf("Close gave back %d held frames, want 3", inner.released)
	}
	if _, err := f.Transmit(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Transmit after Close: %v, want ErrClosed", err)
	}
	if _, err := f.Receive(make([]Frame, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Receive after Close: %v, want ErrClosed", err)
	}
	if err := f.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close: %v, want ErrClosed", err)
	}
	if _, err := a.Receive(make([]Frame, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("inner link still open after Close: %v", err)
	}
}

// benchFaultConfig impairs 1% of frames each way and delays them all a
// little, so every path of Transmit runs.
func benchFaultConfig(clock *vclock) FaultConfig {
	return FaultConfig{
		Seed: 5, Loss: 0.01, Duplicate: 0.01, Reorder: 0.01, Corrupt: 0.01,
		Delay: 20 * time.Microsecond, Jitter: 10 * time.Microsecond, ReorderDelay: 10 * time.Microsecond,
		Now: clock.Now,
	}
}

// faultyRoundTrip sends one batch through f, receives all that is due at b,
// and advances the clock by 10µs: a third of the delay, so about three
// batches are held at any time.
func faultyRoundTrip(f *Faulty, b *Pipe, fs []Frame, clock *vclock) int {
	n := f.Alloc(fs)
	for i := range fs[:n] {
		fs[i].Data = fs[i].Data[:64]
		fillSeqFrame(fs[i].Data, uint64(i))
	}
	f.Transmit(fs[:n])
	clock.t += 10 * time.Microsecond
	received := 0
	for {
		m, _ := b.Receive(fs)
		if m == 0 {
			return received
		}
		b.Release(fs[:m])
		received += m
	}
}

func TestFaultyZeroAllocsPerFrame(t *testing.T) { checkFaultyAllocs(t, benchFaultConfig) }

// checkFaultyAllocs fails unless faultyRoundTrip allocates nothing, in a
// steady state, through a Faulty of config's configuration; it returns
// the Faulty for more checks.
func checkFaultyAllocs(t *testing.T, config func(*vclock) FaultConfig) *Faulty {
	t.Helper()
	var clock vclock
	a, b := NewPipe(PipeConfig{Buffers: 1024, QueueDepth: 1024})
	f := NewFaulty(a, config(&clock))
	fs := make([]Frame, 64)
	for range 100 { // reach a steady state of held frames first
		faultyRoundTrip(f, b, fs, &clock)
	}
	allocs := testing.AllocsPerRun(1000, func() { faultyRoundTrip(f, b, fs, &clock) })
	if allocs != 0 {
		t.Errorf("%v allocations per batch, want 0", allocs)
	}
	return f
}

// BenchmarkFaulty sends batches of 64 frames of 64 bytes through a Faulty
// with every impairment on over a pipe, and receives them.
func BenchmarkFaulty(b *testing.B) { benchmarkFaulty(b, benchFaultConfig) }

// benchmarkFaulty measures faultyRoundTrip through a Faulty of config's
// configuration.
func benchmarkFaulty(b *testing.B, config func(*vclock) FaultConfig) {
	var clock vclock
	pa, pb := NewPipe(PipeConfig{Buffers: 1024, QueueDepth: 1024})
	f := NewFaulty(pa, config(&clock))
	fs := make([]Frame, 64)
	b.ReportAllocs()
	frames := 0
	for b.Loop() {
		frames += faultyRoundTrip(f, pb, fs, &clock)
	}
	b.ReportMetric(float64(frames)/b.Elapsed().Seconds(), "frames/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frames), "ns/frame")
}

// TestFaultySetDown: a down link takes and drops what it is given, says
// ErrLinkDown, and gives every buffer back; frames held for a delay wait
// for it to come up.
func TestFaultySetDown(t *testing.T) {
	var clock vclock
	a, b := NewPipe(PipeConfig{Buffers: 8})
	f := NewFaulty(a, FaultConfig{Now: clock.Now, Delay: time.Millisecond})
	send(t, f, seqFrame(0, 64)) // held for its delay
	f.SetDown(true)
	fs := make([]Frame, 3)
	if n := f.Alloc(fs); n != 3 {
		t.Fatalf("Alloc: %d buffers, want 3", n)
	}
	if n, err := f.Transmit(fs); n != 3 || !errors.Is(err, ErrLinkDown) {
		t.Fatalf("Transmit while down: %d, %v; want 3, ErrLinkDown", n, err)
	}
	clock.t += time.Second
	if got := drain(t, b); len(got) != 0 {
		t.Fatalf("a down link delivered %d frames", len(got))
	}
	if s := f.FaultStats(); s.LinkDown != 3 || s.Held != 1 {
		t.Errorf("stats %+v: want 3 frames dropped for the link down, 1 held", s)
	}
	f.SetDown(false)
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, b); len(got) != 1 || frameSeq(got[0]) != 0 {
		t.Fatalf("after the link came up: got %d frames, want the held frame 0", len(got))
	}
	all := make([]Frame, 9)
	if n := f.Alloc(all); n != 8 {
		t.Errorf("%d of 8 buffers back in the pool", n)
	}
}
