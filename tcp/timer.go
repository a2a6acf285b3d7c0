package tcp

import (
	"time"

	"github.com/xdpnet/xdpnet/internal/wheel"
)

// timerKind is what a connection's main timer is running for. A
// connection needs at most one of these at a time: retransmission and
// persist exclude each other (RFC 9293 3.8.6.1), and TIME-WAIT and
// FIN-WAIT-2 come after both. The delayed-ACK timer is apart (dackTm,
// delack.go): it runs alongside retransmission.
type timerKind uint8

const (
	timerNone timerKind = iota
	timerRetransmit
	// timerLossProbe and timerReorder stand in front of the
	// retransmission timer while they run, its deadline waiting in
	// rtoAt: the tail loss probe's (tlp.go), and RACK's reorder timer
	// (rack.go), as Linux's ICSK_TIME_LOSS_PROBE and ICSK_TIME_REO_TIMEOUT
	// do. One timer per connection keeps the wheel's load at one entry
	// per connection.
	timerLossProbe
	timerPersist
	timerTimeWait
	timerFinWait2
	timerKeepalive
	timerShrink // the idle shrink of grown buffers (autotune.go)
	timerReorder
	timerCork // the ceiling of a corked partial segment (sockopt.go)
)

// timerSlot and timerSlots shape the table's timer wheel: 1 ms slots,
// 4096 of them, so a turn covers the RTOs and probes of a busy
// connection and longer timers (TIME-WAIT) wait a few turns. Deadlines
// stay exact: the wheel fires a timer only once its time has come.
const (
	timerSlot  = time.Millisecond
	timerSlots = 4096
)

// setTimer (re)starts c's timer: O(1), no allocation (internal/wheel).
func (c *Conn) setTimer(at time.Duration, kind timerKind) {
	c.timerKind = kind
	c.t.wheel.Schedule(&c.tm, at)
}

// setRTO (re)starts the retransmission timer for at, behind a timer
// standing in front of it that comes before.
func (c *Conn) setRTO(at time.Duration) {
	if (c.timerKind == timerReorder || c.timerKind == timerLossProbe) && c.tm.When() <= at {
		c.rtoAt = at
		return
	}
	c.setTimer(at, timerRetransmit)
}

// retransmitTimerRunning reports whether the RTO runs, itself or behind
// a timer standing in front of it.
func (c *Conn) retransmitTimerRunning() bool {
	return c.timerKind == timerRetransmit || c.timerKind == timerLossProbe || c.timerKind == timerReorder
}

// stopRTO stops the retransmission timer, and any standing in front of
// it: nothing is in flight.
func (c *Conn) stopRTO() {
	if c.retransmitTimerRunning() {
		c.t.stopTimer(c)
	}
}

// stopTimerKind stops c's timer if it runs for kind.
func (c *Conn) stopTimerKind(kind timerKind) {
	if c.timerKind == kind {
		c.t.stopTimer(c)
	}
}

func (t *Table) stopTimer(c *Conn) {
	t.wheel.Stop(&c.tm)
	c.timerKind = timerNone
}

// Deadline is when the first timer runs, which Output runs; false when
// none runs.
func (t *Table) Deadline() (time.Duration, bool) { return t.wheel.Next() }

// runTimers runs the timers due at now: retransmissions, loss probes,
// zero-window probes, delayed ACKs, and the ends of TIME-WAIT and orphaned
// FIN-WAIT-2. Output calls it first; again at the same now it costs
// nothing unless a timer came due since (internal/wheel).
func (t *Table) runTimers(now time.Duration) {
	t.now = now
	t.wheel.Advance(now, t.fire)
}

// fireTimer runs the timer of a connection that came due.
func (t *Table) fireTimer(tm *wheel.Timer[*Conn]) {
	c := tm.Owner
	t.visits++
	switch tm {
	case &c.dackTm:
		c.delayedACKTimeout()
		return
	case &c.paceTm:
		c.paceRelease()
		return
	}
	kind := c.timerKind
	c.timerKind = timerNone
	switch kind {
	case timerRetransmit:
		c.retransmitTimeout()
	case timerLossProbe:
		c.lossProbeFired()
	case timerReorder:
		c.reorderTimeout()
	case timerPersist:
		// A probe stays in flight until the window opens: its
		// retransmissions, and so the user timeout, bound the probing.
		c.probe = true
		t.wantOutput(c)
	case timerCork:
		t.wantOutput(c)
	case timerKeepalive:
		c.keepaliveTimeout()
	case timerShrink:
		c.shrinkIdle()
		c.idle()
	case timerTimeWait, timerFinWait2:
		t.remove(c)
	}
}

// retransmitTimeout is RFC 6298 5.4–5.6: go back to the oldest
// unacknowledged segment, back the timer off, and give up after the
// configured retries (or the connect timeout).
func (c *Conn) retransmitTimeout() {
	t := c.t
	t.stats.Timeouts++
	c.stats.Timeouts++
	if t.cfg.Trace != nil {
		c.trace(Event{Kind: EventRTO})
	}
	limit := t.cfg.Retries
	switch {
	case c.state == SynReceived && c.passive:
		limit = t.cfg.SynAckRetries // a half-open entry of the SYN queue
	case !c.synAcked:
		limit = t.cfg.SynRetries
	}
	if c.retries >= limit || c.userTimedOut() || (c.connectDeadline > 0 && !c.state.synchronized() && t.now >= c.connectDeadline) {
		c.fail(c.timeoutErr())
		return
	}
	c.timeoutWindow(c.retries == 0)
	c.retries++
	c.rto.Backoff()
	c.rttTiming = false // Karn: no sample from what is resent
	if c.sackRecovery() {
		// RFC 6675 5.1: what the peer SACKed is not resent.
		c.rtoMarkLost()
	} else {
		c.sndNxt = c.sndUna // go back N
	}
	c.dupAcks = 0
	c.setTimer(t.now+c.timeout(), timerRetransmit)
	t.wantOutput(c)
}

// timeout is the current RTO, cut short by the connect deadline and the
// user timeout, so each ends the connection on time (Linux's
// tcp_clamp_rto_to_user_timeout).
func (c *Conn) timeout() time.Duration {
	rto := c.rto.RTO()
	if c.connectDeadline > 0 && !c.state.synchronized() {
		rto = max(0, min(rto, c.connectDeadline-c.t.now))
	}
	if c.userTimeout > 0 {
		rto = max(0, min(rto, c.progressAt+c.userTimeout-c.t.now))
	}
	return rto
}
