// Package wheel is a hashed timer wheel (Varghese and Lauck, 1987): a
// ring of slots, each a list of the timers due in it, so starting,
// restarting and stopping a timer cost O(1) and no allocation. It is what
// a poller needs for thousands of connections whose retransmission timers
// restart on nearly every ACK.
//
// The ring's slots hold only the timers due in its current turn; timers
// further out (a keepalive two hours away, a TIME-WAIT's end) wait in a
// min-heap, O(log n) to start or stop, and move into the ring when their
// turn comes. So Advance looks only at timers that are due or about to
// be, and Next at the first busy slot or the heap's top: neither walks
// the timers of idle connections, which a ring of every timer made Next
// walk on every call (and so every poller before it parked).
//
// Timers are intrusive: the owner embeds a Timer and gets it back, with
// its typed Owner, when it fires. A Wheel is not safe for concurrent use.
package wheel

import (
	"math/bits"
	"time"
)

// Timer is one timer of an owner of type T; the zero value is stopped.
// Embed it in what it times, and find the owner again in the fire
// callback.
type Timer[T any] struct {
	at         time.Duration
	prev, next *Timer[T]
	wheel      *Wheel[T]
	heapPos    int // its index in the heap of far timers, plus one; 0 in the ring
	// Owner is what the timer belongs to, for the fire callback.
	Owner T
}

// Active reports whether the timer is running.
func (t *Timer[T]) Active() bool { return t.wheel != nil }

// When is the deadline of a running timer.
func (t *Timer[T]) When() time.Duration { return t.at }

// level is a ring of slots, each the sentinel of a circular list, and a
// bitmap of the busy ones.
type level[T any] struct {
	slots []Timer[T]
	busy  []uint64
}

func newLevel[T any](n int) level[T] {
	l := level[T]{slots: make([]Timer[T], n), busy: make([]uint64, n/64)}
	for i := range l.slots {
		s := &l.slots[i]
		s.prev, s.next = s, s
	}
	return l
}

// push appends t to slot i.
func (l *level[T]) push(i int, t *Timer[T]) {
	s := &l.slots[i]
	t.prev, t.next = s.prev, s
	s.prev.next = t
	s.prev = t
	l.busy[i/64] |= 1 << (i % 64)
}

// unlink takes t out of slot i.
func (l *level[T]) unlink(i int, t *Timer[T]) {
	t.prev.next, t.next.prev = t.next, t.prev
	t.prev, t.next = nil, nil
	if l.slots[i].next == &l.slots[i] {
		l.busy[i/64] &^= 1 << (i % 64)
	}
}

func (l *level[T]) isBusy(i int) bool { return l.busy[i/64]&(1<<(i%64)) != 0 }

// firstBusy returns k, the least offset below n such that slot
// (from+k) mod len(slots) is busy: O(n/64) words.
func (l *level[T]) firstBusy(from, n int) (int, bool) {
	size := len(l.slots)
	for k := 0; k < n; {
		i := (from + k) % size
		word := l.busy[i/64] >> (i % 64)
		if word == 0 {
			k += 64 - i%64
			continue
		}
		if k += bits.TrailingZeros64(word); k < n {
			return k, true
		}
	}
	return 0, false
}

// Wheel holds the timers of owners of type T in slots of a fixed
// granularity.
type Wheel[T any] struct {
	gran   time.Duration
	span   time.Duration // a turn of the ring: gran × slots
	mask   int
	near   level[T]    // the ring: the timers due in the current turn
	far    []*Timer[T] // the others: a min-heap by deadline
	now    time.Duration
	n      int
	due    Timer[T] // sentinel of the timers Advance is firing
	visits uint64   // see Visits
	// overdue: a timer was scheduled at or before now since the last
	// Advance, so an Advance to the same now has work.
	overdue bool
}

// New returns a wheel of slots (rounded up to a power of two, at least
// 64) of granularity gran each; its ring covers slots×gran per turn.
func New[T any](gran time.Duration, slots int) *Wheel[T] {
	n := 64
	for n < slots {
		n <<= 1
	}
	gran = max(gran, 1)
	return &Wheel[T]{gran: gran, span: gran * time.Duration(n), mask: n - 1, near: newLevel[T](n)}
}

// Visits counts the timers Advance and Next looked at, a measure of their
// work for tests.
func (w *Wheel[T]) Visits() uint64 { return w.visits }

// Len is the number of running timers.
func (w *Wheel[T]) Len() int { return w.n }

func (w *Wheel[T]) nearSlot(at time.Duration) int { return int(uint64(at/w.gran) & uint64(w.mask)) }

// Schedule (re)starts t to fire at at. A time already past fires on the
// next Advance.
func (w *Wheel[T]) Schedule(t *Timer[T], at time.Duration) {
	if t.wheel != nil {
		t.wheel.Stop(t)
	}
	if at <= w.now {
		w.overdue = true
	}
	t.at, t.wheel = max(at, w.now), w
	w.n++
	w.place(t)
}

// place puts t in the ring if it is due in the current turn, else in
// the heap.
func (w *Wheel[T]) place(t *Timer[T]) {
	if t.at/w.span == w.now/w.span {
		w.near.push(w.nearSlot(t.at), t)
		return
	}
	w.far = append(w.far, t)
	t.heapPos = len(w.far)
	w.up(len(w.far) - 1)
}

// Stop stops t if it runs.
func (w *Wheel[T]) Stop(t *Timer[T]) {
	if t.wheel != w {
		return
	}
	if t.heapPos > 0 {
		w.remove(t.heapPos - 1)
	} else {
		w.near.unlink(w.nearSlot(t.at), t)
	}
	t.wheel = nil
	w.n--
}

// Advance moves the wheel to now and calls fire for every timer due,
// stopped before the call (so fire may schedule it again, or stop
// others). Timers fire near enough in deadline order: by slot of the
// granularity, except that after a pause past the end of a turn the
// heap's due timers come before those of the new turn's ring. A timer that fire schedules at or
// before now fires on the next Advance, not this one, so Advance always
// ends. An Advance to the same now again costs nothing unless a timer
// was scheduled due since, so a caller may advance before every packet.
func (w *Wheel[T]) Advance(now time.Duration, fire func(*Timer[T])) {
	if now < w.now || now == w.now && !w.overdue {
		return
	}
	w.overdue = false
	due := &w.due
	due.prev, due.next = due, due
	perTurn := w.span / w.gran
	oldTurn, newTurn := w.now/w.span, now/w.span
	if newTurn == oldTurn {
		w.collect(w.now/w.gran, now/w.gran, now)
	} else {
		// The ring holds only the old turn's timers: all due.
		w.collect(w.now/w.gran, (oldTurn+1)*perTurn-1, now)
		w.cascade(newTurn, now)
		w.collect(newTurn*perTurn, now/w.gran, now)
	}
	w.now = now
	for due.next != due {
		t := due.next
		t.prev.next, t.next.prev = t.next, t.prev
		t.prev, t.next, t.wheel = nil, nil, nil
		w.n--
		fire(t)
	}
}

// collect moves the timers due by now in ring slots from..to (in units
// of the granularity, within one turn) to the due list. A slot holds only
// timers of its own tick, so this looks at due timers and those of now's
// own slot only.
func (w *Wheel[T]) collect(from, to, now time.Duration) {
	for tick := from; tick <= to; tick++ {
		i := int(uint64(tick) & uint64(w.mask))
		if !w.near.isBusy(i) {
			continue
		}
		s := &w.near.slots[i]
		for t := s.next; t != s; {
			w.visits++
			next := t.next
			if t.at <= now {
				w.near.unlink(i, t)
				w.pushDue(t)
			}
			t = next
		}
	}
}

// cascade takes from the heap the timers due by the end of turn, which
// is now's: those due by now go to the due list, the others to the ring.
func (w *Wheel[T]) cascade(turn, now time.Duration) {
	for len(w.far) > 0 && w.far[0].at/w.span <= turn {
		t := w.far[0]
		w.remove(0)
		if t.at <= now {
			w.pushDue(t)
		} else {
			w.near.push(w.nearSlot(t.at), t)
		}
	}
}

func (w *Wheel[T]) pushDue(t *Timer[T]) {
	due := &w.due
	t.prev, t.next = due.prev, due
	due.prev.next = t
	due.prev = t
}

// Next returns the earliest deadline of a running timer, if any: the
// first busy slot's earliest (O(slots/64) words and that slot's timers),
// or the heap's top.
func (w *Wheel[T]) Next() (time.Duration, bool) {
	if w.n == 0 {
		return 0, false
	}
	// The ring's timers are all in the current turn, at or after now's
	// slot.
	cur := w.nearSlot(w.now)
	if k, ok := w.near.firstBusy(cur, len(w.near.slots)-cur); ok {
		s := &w.near.slots[cur+k]
		best := s.next.at
		for t := s.next; t != s; t = t.next {
			w.visits++
			best = min(best, t.at)
		}
		return best, true
	}
	return w.far[0].at, true
}

// The heap of far timers: each knows its index (Timer.heapPos, plus one), so
// Stop removes it in O(log n).

func (w *Wheel[T]) swap(i, j int) {
	w.far[i], w.far[j] = w.far[j], w.far[i]
	w.far[i].heapPos, w.far[j].heapPos = i+1, j+1
}

// up moves the timer at i towards the root while it is due before its
// parent.
func (w *Wheel[T]) up(i int) {
	for i > 0 {
		w.visits++
		p := (i - 1) / 2
		if w.far[p].at <= w.far[i].at {
			return
		}
		w.swap(i, p)
		i = p
	}
}

// down moves the timer at i towards the leaves while a child is due
// before it.
func (w *Wheel[T]) down(i int) {
	for {
		w.visits++
		least := i
		for _, c := range [2]int{2*i + 1, 2*i + 2} {
			if c < len(w.far) && w.far[c].at < w.far[least].at {
				least = c
			}
		}
		if least == i {
			return
		}
		w.swap(i, least)
		i = least
	}
}

// remove takes the timer at i out of the heap.
func (w *Wheel[T]) remove(i int) {
	t, last := w.far[i], len(w.far)-1
	if i != last {
		w.swap(i, last)
	}
	w.far[last] = nil
	w.far = w.far[:last]
	if i < last {
		w.down(i)
		w.up(i)
	}
	t.heapPos = 0
	t.prev, t.next = nil, nil
}
