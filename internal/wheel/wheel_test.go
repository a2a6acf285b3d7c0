package wheel

import (
	"math/rand/v2"
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
	w := New(time.Millisecond, 64)
	timers := make([]Timer, 500)
	model := map[int]time.Duration{}
	for i := range timers {
		timers[i].Owner = i
	}
	now := time.Duration(0)
	for step := range 20000 {
		i := rng.IntN(len(timers))
		switch op := rng.IntN(10); {
		case op < 5:
			// Deadlines up to 3 turns out, to exercise whole turns.
			at := now + time.Duration(rng.Int64N(int64(200*time.Millisecond)))
			w.Schedule(&timers[i], at)
			model[i] = at
		case op < 7:
			w.Stop(&timers[i])
			delete(model, i)
		default:
			now += time.Duration(rng.Int64N(int64(5 * time.Millisecond)))
			if rng.IntN(100) == 0 {
				now += time.Second // jump past a whole turn
			}
			w.Advance(now, func(tm *Timer) {
				j := tm.Owner.(int)
				at, ok := model[j]
				require.True(t, ok, "step %d: timer %d fired but was stopped or fired before", step, j)
				require.LessOrEqual(t, at, now, "step %d: timer %d fired early", step, j)
				assert.False(t, tm.Active())
				delete(model, j)
			})
			for j, at := range model {
				require.Greater(t, at, now, "step %d: timer %d due at %v did not fire by %v", step, j, at, now)
			}
		}
		require.Equal(t, len(model), w.Len())
		next, ok := w.Next()
		require.Equal(t, len(model) > 0, ok)
		for _, at := range model {
			require.LessOrEqual(t, next, at)
		}
		if ok {
			found := false
			for _, at := range model {
				found = found || at == next
			}
			require.True(t, found, "Next %v is some timer's deadline", next)
		}
	}
}

// TestFireMayReschedule: a callback that schedules its own timer at now
// does not make Advance loop; it fires on the next Advance.
func TestFireMayReschedule(t *testing.T) {
	w := New(time.Millisecond, 64)
	var tm, other Timer
	w.Schedule(&tm, 5*time.Millisecond)
	w.Schedule(&other, 5*time.Millisecond)
	fired := 0
	w.Advance(10*time.Millisecond, func(x *Timer) {
		fired++
		if x == &tm {
			w.Schedule(&tm, 0)
			w.Stop(&other) // stopping one already due keeps it from firing
		}
	})
	assert.Equal(t, 1, fired)
	assert.True(t, tm.Active())
	assert.False(t, other.Active())
	w.Advance(10*time.Millisecond, func(*Timer) { fired++ })
	assert.Equal(t, 2, fired)
	assert.Zero(t, w.Len())
}

func TestNoAllocation(t *testing.T) {
	w := New(time.Millisecond, 4096)
	timers := make([]Timer, 1000)
	now := time.Duration(0)
	fire := func(*Timer) {}
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
	w := New(time.Millisecond, 4096)
	timers := make([]Timer, 10000)
	for i := range timers {
		w.Schedule(&timers[i], time.Duration(i)*time.Millisecond)
	}
	i := 0
	for b.Loop() {
		w.Schedule(&timers[i%len(timers)], time.Duration(i%300)*time.Millisecond+time.Second)
		i++
	}
}
