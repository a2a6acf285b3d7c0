// Package wheel is a hashed timer wheel (Varghese and Lauck, 1987): a
// ring of slots, each a list of the timers due in it, so starting,
// restarting and stopping a timer cost O(1) and no allocation. It is what
// a poller needs for thousands of connections whose retransmission timers
// restart on nearly every ACK.
//
// Timers are intrusive: the owner embeds a Timer and gets it back when it
// fires. A timer further out than one turn of the wheel waits in its slot
// through whole turns. A Wheel is not safe for concurrent use.
package wheel

import (
	"math/bits"
	"time"
)

// Timer is one timer; the zero value is stopped. Embed it in what it
// times, and find the owner again in the fire callback.
type Timer struct {
	at         time.Duration
	prev, next *Timer
	wheel      *Wheel
	// Owner is what the timer belongs to, for the fire callback.
	Owner any
}

// Active reports whether the timer is running.
func (t *Timer) Active() bool { return t.wheel != nil }

// When is the deadline of a running timer.
func (t *Timer) When() time.Duration { return t.at }

// Wheel holds timers in slots of a fixed granularity.
type Wheel struct {
	gran   time.Duration
	slots  []Timer  // sentinels of circular lists
	busy   []uint64 // bitmap of non-empty slots
	now    time.Duration
	n      int
	due    Timer  // sentinel of the timers Advance is firing
	visits uint64 // see Visits
}

// New returns a wheel of slots (rounded up to a power of two, at least
// 64) of granularity gran each; it covers slots×gran per turn.
func New(gran time.Duration, slots int) *Wheel {
	n := 64
	for n < slots {
		n <<= 1
	}
	w := &Wheel{gran: max(gran, 1), slots: make([]Timer, n), busy: make([]uint64, n/64)}
	for i := range w.slots {
		s := &w.slots[i]
		s.prev, s.next = s, s
	}
	return w
}

// Visits counts the timers Advance and Next looked at, a measure of their
// work for tests.
func (w *Wheel) Visits() uint64 { return w.visits }

// Len is the number of running timers.
func (w *Wheel) Len() int { return w.n }

func (w *Wheel) slot(at time.Duration) int { return int(uint64(at/w.gran) & uint64(len(w.slots)-1)) }

// Schedule (re)starts t to fire at at. A time already past fires on the
// next Advance.
func (w *Wheel) Schedule(t *Timer, at time.Duration) {
	if t.wheel != nil {
		t.wheel.Stop(t)
	}
	at = max(at, w.now)
	i := w.slot(at)
	s := &w.slots[i]
	t.at, t.wheel = at, w
	t.prev, t.next = s.prev, s
	s.prev.next = t
	s.prev = t
	w.busy[i/64] |= 1 << (i % 64)
	w.n++
}

// Stop stops t if it runs.
func (w *Wheel) Stop(t *Timer) {
	if t.wheel != w {
		return
	}
	t.prev.next, t.next.prev = t.next, t.prev
	t.prev, t.next, t.wheel = nil, nil, nil
	w.n--
	if i := w.slot(t.at); w.slots[i].next == &w.slots[i] {
		w.busy[i/64] &^= 1 << (i % 64)
	}
}

// Advance moves the wheel to now and calls fire for every timer due,
// stopped before the call (so fire may schedule it again, or stop
// others). Timers fire in slot order; within a slot, in the order they
// were scheduled. A timer that fire schedules at or before now fires on
// the next Advance, not this one, so Advance always ends.
func (w *Wheel) Advance(now time.Duration, fire func(*Timer)) {
	if now < w.now {
		return
	}
	from, to := w.now/w.gran, now/w.gran
	if to-from >= time.Duration(len(w.slots)) {
		from = to - time.Duration(len(w.slots)) + 1 // a whole turn visits every slot
	}
	w.now = now
	due := &w.due
	due.prev, due.next = due, due
	for tick := from; tick <= to; tick++ {
		i := int(uint64(tick) & uint64(len(w.slots)-1))
		if w.busy[i/64]&(1<<(i%64)) == 0 {
			continue
		}
		// Move the due timers to the due list first: fire may then stop
		// or schedule any timer without disturbing this walk.
		s := &w.slots[i]
		for t := s.next; t != s; {
			w.visits++
			next := t.next
			if t.at <= now {
				t.prev.next, t.next.prev = t.next, t.prev
				t.prev, t.next = due.prev, due
				due.prev.next = t
				due.prev = t
			}
			t = next
		}
		if s.next == s {
			w.busy[i/64] &^= 1 << (i % 64)
		}
	}
	for due.next != due {
		t := due.next
		t.prev.next, t.next.prev = t.next, t.prev
		t.prev, t.next, t.wheel = nil, nil, nil
		w.n--
		fire(t)
	}
}

// Next returns the earliest deadline of a running timer, if any. It
// scans the slot bitmap from now: O(slots/64) words and the timers of the
// first busy slot with one due this turn.
func (w *Wheel) Next() (time.Duration, bool) {
	if w.n == 0 {
		return 0, false
	}
	start := w.slot(w.now)
	n := len(w.slots)
	best, found := time.Duration(0), false
	for k := 0; k < n; {
		i := (start + k) % n
		word := w.busy[i/64] >> (i % 64)
		if word == 0 {
			k += 64 - i%64
			continue
		}
		skip := bits.TrailingZeros64(word)
		k += skip
		i = (start + k) % n
		s := &w.slots[i]
		turnEnd := (w.now/w.gran + time.Duration(k) + 1) * w.gran
		for t := s.next; t != s; t = t.next {
			w.visits++
			if !found || t.at < best {
				best, found = t.at, true
			}
		}
		if found && best < turnEnd {
			return best, true // nothing in a later slot can be earlier
		}
		k++
	}
	return best, found
}
