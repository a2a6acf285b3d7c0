package tcp

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestRateForget: a retransmission of [start, end) takes its bytes out of
// the delivery rate records: the front or the back of a record is cut
// off, a record it covers or cuts in two goes, and the others stay.
func TestRateForget(t *testing.T) {
	ranges := func(r *rateEstimator) [][2]uint64 {
		var out [][2]uint64
		for _, rec := range r.recs[:r.n] {
			out = append(out, [2]uint64{rec.start, rec.end})
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		start, end uint64
		want       [][2]uint64
	}{
		{"front", 1000, 2000, [][2]uint64{{2000, 5000}, {5000, 8000}}},
		{"across two fronts", 1000, 6000, [][2]uint64{{6000, 8000}}},
		{"back", 7000, 8000, [][2]uint64{{1000, 5000}, {5000, 7000}}},
		{"middle", 2000, 3000, [][2]uint64{{5000, 8000}}},
		{"all", 0, 9000, nil},
		{"none", 8000, 9000, [][2]uint64{{1000, 5000}, {5000, 8000}}},
	} {
		r := &rateEstimator{n: 2}
		r.recs[0] = rateRecord{start: 1000, end: 5000}
		r.recs[1] = rateRecord{start: 5000, end: 8000}
		r.forget(tc.start, tc.end)
		assert.Equal(t, tc.want, ranges(r), tc.name)
	}
}

// TestWindowedMin: the filter's minimum is the lowest sample of the last
// minRTTWindow; a better one replaces all three choices at once, and as
// the best ages out the next best of the window takes its place.
func TestWindowedMin(t *testing.T) {
	var m windowedMin
	assert.Zero(t, m.get())
	m.update(0, 50)
	m.update(1, 70)
	m.update(2, 40)
	assert.Equal(t, [3]minSample{{2, 40}, {2, 40}, {2, 40}}, m.s, "a new minimum")
	m.update(minRTTWindow/4+3, 60) // a quarter on: the second choice
	m.update(minRTTWindow/2+3, 80) // half on: the third
	assert.Equal(t, [3]minSample{{2, 40}, {minRTTWindow/4 + 3, 60}, {minRTTWindow/2 + 3, 80}}, m.s)
	m.update(minRTTWindow+3, 90) // the best ages out
	assert.Equal(t, [3]minSample{{minRTTWindow/4 + 3, 60}, {minRTTWindow/2 + 3, 80}, {minRTTWindow + 3, 90}}, m.s)
	assert.EqualValues(t, 60, m.get())
	m.update(3*minRTTWindow, 100) // nothing left in the window
	assert.Equal(t, [3]minSample{{3 * minRTTWindow, 100}, {3 * minRTTWindow, 100}, {3 * minRTTWindow, 100}}, m.s)
}
