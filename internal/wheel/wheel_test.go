package wheel

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAgainstModel runs random schedules, restarts, stops and advances
// against a plain map of deadlines: every timer fires exactly when its
// deadline has passed, never twice, never after a stop, and Next is the
// earliest deadline.
func TestAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	w := New[int](time.Millisecond, 64)
	timers := make([]Timer[int], 500)
	model := map[int]time.Duration{}
	for i := range timers {
		timers[i].Owner = i
	}
	now := time.Duration(0)
	for step := range 20000 {
		i := rng.IntN(len(timers))
		switch op := rng.IntN(10); {
		case op < 5:
			// Deadlines up to 3 turns out, to exercise the heap and
			// its cascade into the ring, and now and then 150 turns.
			horizon := 200 * time.Millisecond
			if rng.IntN(20) == 0 {
				horizon = 10 * time.Second
			}
			at := now + time.Duration(rng.Int64N(int64(horizon)))
			w.Schedule(&timers[i], at)
			model[i] = at
		case op < 7:
			w.Stop(&timers[i])
			delete(model, i)
		default:
			now += time.Duration(rng.Int64N(int64(5 * time.Millisecond)))
			switch rng.IntN(200) {
			case 0, 1:
				now += time.Second // jump past whole turns
			case 2:
				now += 5 * time.Second // and past many
			}
			w.Advance(now, func(tm *Timer[int]) {
				j := tm.Owner
				at, ok := model[j]
				require.True(t, ok, "step %d: timer %d fired but was stopped or fired before", step, j)
				require.LessOrEqual(t, at, now, "step %d: timer %d fired early", step, j)
				assert.False(t, tm.Active())
				delete(model, j)
			})
			for j, at := range model {
				if at <= now {
					t.Fatalf("step %d: timer %d due at %v did not fire by %v", step, j, at, now)
				}
			}
		}
		require.Equal(t, len(model), w.Len())
		next, ok := w.Next()
		require.Equal(t, len(model) > 0, ok)
		earliest := next
		for _, at := range model {
			earliest = min(earliest, at)
		}
		if ok && !slices.Contains(slices.Collect(maps.Values(model)), next) || earliest != next {
			t.Fatalf("step %d: Next is %v, the earliest deadline %v", step, next, earliest)
		}
	}
}

// TestFireMayReschedule: a callback that schedules its own timer at now
// does not make Advance loop; it fires on the next Advance.
func TestFireMayReschedule(t *testing.T) {
	w := New[int](time.Millisecond, 64)
	var tm, other Timer[int]
	w.Schedule(&tm, 5*time.Millisecond)
	w.Schedule(&other, 5*time.Millisecond)
	fired := 0
	w.Advance(10*time.Millisecond, func(x *Timer[int]) {
		fired++
		if x == &tm {
			w.Schedule(&tm, 0)
			w.Stop(&other) // stopping one already due keeps it from firing
		}
	})
	assert.Equal(t, 1, fired)
	assert.True(t, tm.Active())
	assert.False(t, other.Active())
	w.Advance(10*time.Millisecond, func(*Timer[int]) { fired++ })
	assert.Equal(t, 2, fired)
	assert.Zero(t, w.Len())
}

// TestIdleTimersCostNothing: 10,000 timers two hours out, as idle
// connections' keepalives, cost Next and Advance nothing while one timer
// a few milliseconds out restarts and fires: Next looks at the busy near
// slot only, and Advance at due timers; the far ones are walked once per
// near turn they cascade in (amortized), not per call.
func TestIdleTimersCostNothing(t *testing.T) {
	w := New[int](time.Millisecond, 4096)
	idle := make([]Timer[int], 10000)
	for i := range idle {
		w.Schedule(&idle[i], 2*time.Hour+time.Duration(i)*time.Millisecond)
	}
	var busy Timer[int]
	now := time.Duration(0)
	fire := func(*Timer[int]) {}
	v := w.Visits()
	const rounds = 10000
	for i := range rounds {
		w.Schedule(&busy, now+3*time.Millisecond)
		now += time.Millisecond
		w.Advance(now, fire)
		next, ok := w.Next()
		require.True(t, ok)
		if busy.Active() {
			require.Equal(t, busy.When(), next, "round %d", i)
		} else {
			require.Equal(t, 2*time.Hour, next, "round %d", i)
		}
	}
	assert.Less(t, float64(w.Visits()-v)/rounds, 3.0, "timers looked at per round")
	assert.Equal(t, len(idle)+1, w.Len())
}

func TestNoAllocation(t *testing.T) {
	w := New[int](time.Millisecond, 4096)
	timers := make([]Timer[int], 1000)
	now := time.Duration(0)
	fire := func(*Timer[int]) {}
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		w.Schedule(&timers[i%len(timers)], now+200*time.Millisecond)
		i++
		now += 100 * time.Microsecond
		w.Advance(now, fire)
		w.Next()
	})
	assert.Zero(t, allocs)
}

// BenchmarkRestart is the retransmission timer's life: restarted on every
// ACK, with 10,000 connections' timers in the wheel.
func BenchmarkRestart(b *testing.B) {
	w := New[int](time.Millisecond, 4096)
	timers := make([]Timer[int], 10000)
	for i := range timers {
		w.Schedule(&timers[i], time.Duration(i)*time.Millisecond)
	}
	i := 0
	for b.Loop() {
		w.Schedule(&timers[i%len(timers)], time.Duration(i%300)*time.Millisecond+time.Second)
		i++
	}
}

// TestAdvanceSameNowIsFree: advancing again to the same time looks at no
// timer, even with timers waiting in now's slot, unless one was
// scheduled due since; that one then fires.
func TestAdvanceSameNowIsFree(t *testing.T) {
	w := New[int](time.Millisecond, 64)
	var later, due Timer[int]
	now := 10 * time.Millisecond
	w.Schedule(&later, now+time.Millisecond/2) // in now's slot, not due
	fired := 0
	fire := func(*Timer[int]) { fired++ }
	w.Advance(now, fire)
	visits := w.Visits()
	w.Advance(now, fire)
	assert.Equal(t, visits, w.Visits(), "an Advance to the same now walked the slot")
	w.Schedule(&due, now-time.Millisecond)
	w.Advance(now, fire)
	assert.Equal(t, 1, fired)
	assert.True(t, later.Active())
	assert.False(t, due.Active())
}
