package tcp

import "time"

// SetUserTimeout bounds how long data may stay unacknowledged before the
// connection ends with ErrTimeout (or the soft error an ICMP message
// left), as Linux's TCP_USER_TIMEOUT (RFC 5482): it caps the
// retransmissions, the zero-window probing of a peer whose window stays
// closed, and, with keepalive, the wait for an answer to the probes. The
// retransmission timer is cut short to fire at the bound. 0 restores the
// default: retransmissions counted by Config.Retries, probing unbounded.
func (c *Conn) SetUserTimeout(d time.Duration) {
	c.userTimeout = max(d, 0)
}

// UserTimeout is what SetUserTimeout set, 0 when unset.
func (c *Conn) UserTimeout() time.Duration { return c.userTimeout }

// userTimedOut reports whether the user timeout ran out: nothing was
// acknowledged for that long while data was outstanding.
func (c *Conn) userTimedOut() bool {
	return c.userTimeout > 0 && c.t.now-c.progressAt >= c.userTimeout
}

// SetFinWait2Timeout sets how long a connection the app has closed
// waits in FIN-WAIT-2 for the peer's FIN before it is dropped, as Linux's
// TCP_LINGER2; 0 restores the default, 2×MSL (Linux's tcp_fin_timeout,
// 60 s).
func (c *Conn) SetFinWait2Timeout(d time.Duration) {
	c.finWait2 = max(d, 0)
	if c.timerKind == timerFinWait2 {
		c.setTimer(c.finWait2Since+c.finWait2Timeout(), timerFinWait2)
	}
}

// finWait2Timeout is how long an orphaned FIN-WAIT-2 lasts.
func (c *Conn) finWait2Timeout() time.Duration {
	if c.finWait2 > 0 {
		return c.finWait2
	}
	return 2 * c.t.cfg.MSL
}

// orphanInFinWait2 starts the FIN-WAIT-2 timer of a connection the app
// closed: it does not wait forever for the peer's FIN.
func (c *Conn) orphanInFinWait2() {
	c.finWait2Since = c.t.now
	c.setTimer(c.t.now+c.finWait2Timeout(), timerFinWait2)
}

// SetCork holds back segments shorter than the MSS while on, as Linux's
// TCP_CORK: the app builds a reply from several writes and it leaves in
// full segments. A partial segment goes when the cork comes off (turning
// it off sends what waits), when a FIN follows it, or 200 ms after it was
// first held, Linux's ceiling.
func (c *Conn) SetCork(on bool) {
	if c.cork == on {
		return
	}
	c.cork, c.corkHeld = on, false
	if !on && c.state != Closed {
		c.t.wantOutput(c)
	}
}

// corkCeiling is how long TCP_CORK may hold a partial segment (Linux's
// TCP_CORK: "a 200 millisecond ceiling").
const corkCeiling = 200 * time.Millisecond

// corked reports whether the cork holds back a partial segment now, and
// makes sure it is sent at the ceiling: a timer brings the connection
// back then if none runs that would (the retransmission timer's expiry or
// an ACK of what is in flight calls Output again anyway).
func (c *Conn) corked() bool {
	if !c.cork || c.finQueued {
		return false
	}
	if !c.corkHeld {
		c.corkHeld, c.corkSince = true, c.t.now
	}
	if c.t.now-c.corkSince >= corkCeiling {
		c.corkHeld = false
		return false
	}
	if c.timerKind == timerNone {
		c.setTimer(c.corkSince+corkCeiling, timerCork)
	}
	return true
}
