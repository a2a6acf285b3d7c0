package tcp

import (
	"container/heap"
	"time"
)

// timerKind is what a connection's one timer is running for. A
// connection needs at most one at a time: retransmission and persist
// exclude each other (RFC 9293 3.8.6.1), and TIME-WAIT and FIN-WAIT-2
// come after both.
type timerKind uint8

const (
	timerNone timerKind = iota
	timerRetransmit
	timerPersist
	timerTimeWait
	timerFinWait2
	timerKeepalive
)

// timerHeap is a min-heap of connections by deadline. (Issue 5 replaces
// it by the poller's timer wheel.)
type timerHeap []*Conn

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].timer < h[j].timer }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex, h[j].heapIndex = i, j
}
func (h *timerHeap) Push(x any) {
	c := x.(*Conn)
	c.heapIndex = len(*h)
	*h = append(*h, c)
}
func (h *timerHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	c.heapIndex = -1
	return c
}

// setTimer (re)starts c's timer.
func (c *Conn) setTimer(at time.Duration, kind timerKind) {
	c.timer, c.timerKind = at, kind
	if c.heapIndex >= 0 {
		heap.Fix(&c.t.timers, c.heapIndex)
	} else {
		heap.Push(&c.t.timers, c)
	}
}

// stopTimerKind stops c's timer if it runs for kind.
func (c *Conn) stopTimerKind(kind timerKind) {
	if c.timerKind == kind {
		c.t.stopTimer(c)
	}
}

func (t *Table) stopTimer(c *Conn) {
	if c.heapIndex >= 0 {
		heap.Remove(&t.timers, c.heapIndex)
	}
	c.timerKind = timerNone
}

// Deadline is when Tick next has work, if ever.
func (t *Table) Deadline() (time.Duration, bool) {
	if len(t.timers) == 0 {
		return 0, false
	}
	return t.timers[0].timer, true
}

// Tick runs the timers due at now: retransmissions, zero-window probes,
// and the ends of TIME-WAIT and orphaned FIN-WAIT-2.
func (t *Table) Tick(now time.Duration) {
	t.now = now
	for len(t.timers) > 0 && t.timers[0].timer <= now {
		c := heap.Pop(&t.timers).(*Conn)
		kind := c.timerKind
		c.timerKind = timerNone
		switch kind {
		case timerRetransmit:
			c.retransmitTimeout()
		case timerPersist:
			c.probe = true
			t.wantOutput(c)
		case timerKeepalive:
			c.keepaliveTimeout()
		case timerTimeWait, timerFinWait2:
			t.remove(c)
		}
	}
}

// retransmitTimeout is RFC 6298 5.4–5.6: go back to the oldest
// unacknowledged segment, back the timer off, and give up after the
// configured retries (or the connect timeout).
func (c *Conn) retransmitTimeout() {
	t := c.t
	t.stats.Timeouts++
	c.stats.Timeouts++
	limit := t.cfg.Retries
	if !c.synAcked {
		limit = t.cfg.SynRetries
	}
	if c.retries >= limit || (c.connectDeadline > 0 && !c.state.synchronized() && t.now >= c.connectDeadline) {
		c.fail(ErrTimeout)
		return
	}
	c.retries++
	c.rto.Backoff()
	c.rttTiming = false // Karn: no sample from what is resent
	c.sndNxt = c.sndUna
	c.dupAcks = 0
	c.setTimer(t.now+c.timeout(), timerRetransmit)
	t.wantOutput(c)
}

// timeout is the current RTO, cut short by the connect deadline.
func (c *Conn) timeout() time.Duration {
	rto := c.rto.RTO()
	if c.connectDeadline > 0 && !c.state.synchronized() {
		rto = max(0, min(rto, c.connectDeadline-c.t.now))
	}
	return rto
}
