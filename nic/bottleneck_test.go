package nic

import (
	"slices"
	"testing"
	"time"
)

// bottleneckRun sends burst frames of size bytes through f at once, then
// ticks the clock until every frame is out, and returns each frame's
// sequence number and arrival time in the order received.
func bottleneckRun(t *testing.T, f *Faulty, b *Pipe, clock *vclock, first, burst, size int, tick time.Duration) (seqs []uint64, at []time.Duration) {
	t.Helper()
	frames := make([][]byte, burst)
	for i := range frames {
		frames[i] = seqFrame(uint64(first+i), size)
	}
	send(t, f, frames...)
	for f.FaultStats().Held > 0 {
		clock.t += tick
		if err := f.Flush(); err != nil {
			t.Fatal(err)
		}
		for _, fr := range drain(t, b) {
			seqs = append(seqs, frameSeq(fr))
			at = append(at, clock.t)
		}
	}
	return seqs, at
}

// TestFaultyBottleneckSerializes: a burst leaves a bottleneck one frame
// per serialization time, each after the propagation delay, in order.
func TestFaultyBottleneckSerializes(t *testing.T) {
	const n, size = 50, 1000
	// 1000 bytes at 80 Mbit/s: 100 µs each.
	const ser, delay = 100 * time.Microsecond, 5 * time.Millisecond
	var clock vclock
	a, b := NewPipe(PipeConfig{})
	f := NewFaulty(a, FaultConfig{Rate: 80_000_000, Delay: delay, Now: clock.Now})
	seqs, at := bottleneckRun(t, f, b, &clock, 0, n, size, 10*time.Microsecond)
	if len(seqs) != n {
		t.Fatalf("%d of %d frames arrived", len(seqs), n)
	}
	for i := range seqs {
		if want := time.Duration(i+1)*ser + delay; seqs[i] != uint64(i) || at[i] != want {
			t.Fatalf("frame %d (seq %d) arrived at %v, want seq %d at %v", i, seqs[i], at[i], i, want)
		}
	}
	s := f.FaultStats()
	if s.TailDrops != 0 || s.Queued != 0 || s.QueuedBytes != 0 || s.MaxQueuedBytes != n*size || s.Delayed != n {
		t.Errorf("stats %+v: want no drops, an empty queue that once held %d bytes, %d delayed", s, n*size, n)
	}
	// An idle link starts the next frame at once.
	clock.t += time.Second
	start := clock.t
	if _, at := bottleneckRun(t, f, b, &clock, n, 1, size, 10*time.Microsecond); len(at) != 1 || at[0] != start+ser+delay {
		t.Errorf("after idle: arrivals %v, want one at %v", at, start+ser+delay)
	}
}

// TestFaultyBottleneckTailDrop: a burst larger than the queue keeps its
// head and loses its tail, counted, with every buffer back in the pool;
// once the queue drained it takes a full burst again.
func TestFaultyBottleneckTailDrop(t *testing.T) {
	const size = 1000
	for _, tc := range []struct {
		name string
		cfg  FaultConfig
		fits int
	}{
		{"packets", FaultConfig{QueuePackets: 10}, 10},
		{"bytes", FaultConfig{QueueBytes: 4500}, 4},
		{"both", FaultConfig{QueuePackets: 3, QueueBytes: 4500}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var clock vclock
			a, b := NewPipe(PipeConfig{Buffers: 64})
			cfg := tc.cfg
			cfg.Rate, cfg.Now = 80_000_000, clock.Now
			f := NewFaulty(a, cfg)
			seqs, _ := bottleneckRun(t, f, b, &clock, 0, 50, size, 10*time.Microsecond)
			want := make([]uint64, tc.fits)
			for i := range want {
				want[i] = uint64(i)
			}
			if !slices.Equal(seqs, want) {
				t.Errorf("received %v, want the burst's first %d", seqs, tc.fits)
			}
			if s := f.FaultStats(); s.TailDrops != uint64(50-tc.fits) || s.MaxQueuedBytes != uint64(tc.fits*size) {
				t.Errorf("stats %+v, want %d tail drops and at most %d bytes queued", s, 50-tc.fits, tc.fits*size)
			}
			all := make([]Frame, 64)
			if got := a.Alloc(all); got != 64 {
				t.Errorf("%d of 64 buffers back in the pool", got)
			} else {
				a.Release(all)
			}
			if seqs, _ := bottleneckRun(t, f, b, &clock, 100, tc.fits, size, 10*time.Microsecond); len(seqs) != tc.fits {
				t.Errorf("drained queue took %d of a burst of %d", len(seqs), tc.fits)
			}
		})
	}
}

// TestFaultyBottleneckOverload: offered twice its rate for a long run, a
// bottleneck delivers at its rate, never faster, and drops the rest at
// its queue's tail, which never holds more than its bound.
func TestFaultyBottleneckOverload(t *testing.T) {
	const n, size = 20_000, 1000
	// 1 ms per frame at 8 Mbit/s; two frames offered every millisecond.
	cfg := FaultConfig{Rate: 8_000_000, QueueBytes: 20 * size, Delay: 3 * time.Millisecond}
	run := runFaulty(t, cfg, n, size, 2, time.Millisecond)
	s := run.stats
	if uint64(len(run.frames))+s.TailDrops != n || s.Dropped+s.Overflowed != 0 {
		t.Errorf("received %d + tail drops %d != %d sent; stats %+v", len(run.frames), s.TailDrops, n, s)
	}
	// The run lasts n/2 ms: about that many frames fit, plus the queue.
	if got := len(run.frames); got < n/2 || got > n/2+21 {
		t.Errorf("%d frames through a link that carries %d in the run (+ a queue of 20)", got, n/2)
	}
	if s.MaxQueuedBytes > 20*size {
		t.Errorf("queue held %d bytes, bound %d", s.MaxQueuedBytes, 20*size)
	}
	var seqs []uint64
	for i, fr := range run.frames {
		seqs = append(seqs, frameSeq(fr))
		// Frame i is serialized no earlier than (i+1) ms after the
		// start; the final flush (the last arrival time) comes later.
		if run.at[i] < run.at[len(run.at)-1] && run.at[i] < time.Duration(i+1)*time.Millisecond+cfg.Delay {
			t.Fatalf("frame %d arrived at %v: faster than the rate", i, run.at[i])
		}
	}
	if !slices.IsSorted(seqs) {
		t.Error("the bottleneck reordered frames")
	}
}

// TestFaultyBottleneckKeepsTheSeed: with a bottleneck that drops nothing,
// a seed loses, reorders and duplicates the same frames as without it.
func TestFaultyBottleneckKeepsTheSeed(t *testing.T) {
	cfg := FaultConfig{Seed: 9, Loss: 0.1, Duplicate: 0.05, Reorder: 0.05, Delay: time.Millisecond}
	plain := runFaulty(t, cfg, 5000, 100, 4, 100*time.Microsecond)
	cfg.Rate = 100_000_000 // 8 µs a frame: 4 frames take 32 of every 100 µs
	shaped := runFaulty(t, cfg, 5000, 100, 4, 100*time.Microsecond)
	set := func(r faultRun) []uint64 {
		var s []uint64
		for _, fr := range r.frames {
			s = append(s, frameSeq(fr))
		}
		slices.Sort(s)
		return s
	}
	if !slices.Equal(set(plain), set(shaped)) {
		t.Error("a bottleneck that drops nothing changed which frames were lost or duplicated")
	}
	p, s := plain.stats, shaped.stats
	if s.TailDrops != 0 || p.Dropped != s.Dropped || p.Duplicated != s.Duplicated || p.Reordered != s.Reordered {
		t.Errorf("stats without a bottleneck %+v, with %+v", p, s)
	}
}

// benchBottleneckConfig is benchFaultConfig behind a bottleneck slower
// than faultyRoundTrip's 3.3 Gbit/s, with a queue of 100 frames: the queue
// fills and drops at its tail.
func benchBottleneckConfig(clock *vclock) FaultConfig {
	cfg := benchFaultConfig(clock)
	cfg.Rate, cfg.QueuePackets = 2_000_000_000, 100
	return cfg
}

func TestFaultyBottleneckZeroAllocsPerFrame(t *testing.T) {
	if f := checkFaultyAllocs(t, benchBottleneckConfig); f.FaultStats().TailDrops == 0 {
		t.Error("no tail drops: the queue's full path did not run")
	}
}

// BenchmarkFaultyBottleneck is BenchmarkFaulty behind a bottleneck that
// queues and drops.
func BenchmarkFaultyBottleneck(b *testing.B) { benchmarkFaulty(b, benchBottleneckConfig) }
