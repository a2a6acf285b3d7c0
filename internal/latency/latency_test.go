package latency

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuckets: every value reads back within 1/128 of itself, and the
// buckets are in order with no gap.
func TestBuckets(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 123456789, 1 << 40} {
		got := uint64(value(index(v)))
		assert.InDelta(t, float64(v), float64(got), float64(v)/128+0.5, "value %d", v)
	}
	for i := 1; i < buckets; i++ {
		require.Less(t, value(i-1), value(i), "bucket %d", i)
		require.Equal(t, i, index(uint64(value(i))), "bucket %d's value maps back", i)
	}
	assert.Equal(t, buckets-1, index(1<<62), "beyond the range: the last bucket")
}

// TestQuantilesAgainstSorted: percentiles of a random sample agree with
// the sorted sample's to the histogram's precision; the extremes and the
// mean are exact.
func TestQuantilesAgainstSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	sample := make([]time.Duration, 100000)
	var sum time.Duration
	for i := range sample {
		// Log-normal-ish: most near 50 µs, a tail to tens of ms.
		d := time.Duration(r.ExpFloat64()*float64(50*time.Microsecond)) + time.Duration(r.IntN(1000))
		if i%1000 == 0 {
			d *= 300
		}
		sample[i] = d
		sum += d
		h.Record(d)
	}
	slices.Sort(sample)
	require.Equal(t, uint64(len(sample)), h.Count())
	assert.Equal(t, sample[0], h.Min())
	assert.Equal(t, sample[len(sample)-1], h.Max())
	assert.Equal(t, sum/time.Duration(len(sample)), h.Mean())
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 0.9999} {
		want := sample[int(q*float64(len(sample)))-1]
		assert.InDelta(t, float64(want), float64(h.Quantile(q)), float64(want)/100, "q %v", q)
	}
	assert.Equal(t, h.Max(), h.Quantile(1))
	assert.LessOrEqual(t, h.Quantile(0), h.Quantile(0.5))
}

// TestConcurrentRecordAndMerge: goroutines recording into one histogram
// lose nothing, and merging per-goroutine histograms gives the same.
func TestConcurrentRecordAndMerge(t *testing.T) {
	var shared, merged Histogram
	parts := make([]Histogram, 8)
	var wg sync.WaitGroup
	for g := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10000 {
				d := time.Duration(g*10000+i+1) * time.Microsecond
				shared.Record(d)
				parts[g].Record(d)
			}
		}()
	}
	wg.Wait()
	for g := range parts {
		merged.Merge(&parts[g])
	}
	for _, h := range []*Histogram{&shared, &merged} {
		assert.Equal(t, uint64(80000), h.Count())
		assert.Equal(t, time.Microsecond, h.Min())
		assert.Equal(t, 80000*time.Microsecond, h.Max())
		assert.InDelta(t, float64(40000*time.Microsecond), float64(h.Quantile(0.5)), float64(40000*time.Microsecond)/100)
	}
	assert.Equal(t, shared.Quantile(0.99), merged.Quantile(0.99))
	assert.InDelta(t, float64(shared.Stdev()), float64(merged.Stdev()), 1)
}

// TestEmpty: an empty histogram reads 0 everywhere.
func TestEmpty(t *testing.T) {
	var h Histogram
	assert.Zero(t, h.Count())
	assert.Zero(t, h.Min())
	assert.Zero(t, h.Max())
	assert.Zero(t, h.Mean())
	assert.Zero(t, h.Stdev())
	assert.Zero(t, h.Quantile(0.99))
	h.Record(-time.Second)
	assert.Equal(t, time.Duration(0), h.Max(), "a negative duration counts as 0")
}

// TestRecordDoesNotAllocate: recording is on a load generator's hot path.
func TestRecordDoesNotAllocate(t *testing.T) {
	var h Histogram
	assert.Zero(t, testing.AllocsPerRun(1000, func() { h.Record(123 * time.Microsecond) }))
}

// TestCounts: the non-empty buckets in order, each value read back
// within 1/128, the counts summing to Count.
func TestCounts(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{5, 5, 1000, 1001, 30 * time.Microsecond, time.Second} {
		h.Record(d)
	}
	var ds []time.Duration
	var ns []uint64
	for d, n := range h.Counts() {
		ds, ns = append(ds, d), append(ns, n)
	}
	require.Len(t, ds, 4, "1000 and 1001 share a bucket")
	assert.Equal(t, []uint64{2, 2, 1, 1}, ns)
	assert.True(t, slices.IsSorted(ds))
	for i, want := range []time.Duration{5, 1000, 30 * time.Microsecond, time.Second} {
		assert.InDelta(t, float64(want), float64(ds[i]), float64(want)/128+1, "bucket %d", i)
	}
	for range h.Counts() {
		break // stopping early is allowed
	}
}
