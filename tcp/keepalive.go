package tcp

import "time"

// Keepalive defaults, Linux's: tcp_keepalive_time, _intvl and _probes.
const (
	defaultKeepIdle   = 2 * time.Hour
	defaultKeepIntvl  = 75 * time.Second
	defaultKeepProbes = 9
)

// SetKeepAlive turns keepalive probes on or off (RFC 1122 4.2.3.6): after
// an idle spell with nothing in flight, the connection sends probes, and
// fails with ErrTimeout when none is answered.
func (c *Conn) SetKeepAlive(on bool) {
	c.keepalive = on
	if c.keepIdle == 0 {
		c.keepIdle, c.keepIntvl = defaultKeepIdle, defaultKeepIntvl
	}
	switch {
	case on && c.timerKind == timerNone:
		c.idle()
	case !on:
		c.stopTimerKind(timerKeepalive)
	}
}

// SetKeepAlivePeriod sets the idle time before the first probe and the
// time between probes (TCP_KEEPIDLE and TCP_KEEPINTVL).
func (c *Conn) SetKeepAlivePeriod(idle, interval time.Duration) {
	c.keepIdle, c.keepIntvl = idle, interval
	if c.timerKind == timerKeepalive {
		c.idle()
	}
}

// idle starts the keepalive timer when nothing else times the
// connection: it is established and has nothing in flight.
func (c *Conn) idle() {
	if c.keepalive && (c.state == Established || c.state == CloseWait) && c.timerKind == timerNone {
		c.setTimer(c.lastRecv+c.keepIdle, timerKeepalive)
	}
}

// keepaliveTimeout sends the next probe, or ends the connection when
// defaultKeepProbes went unanswered. Anything the peer sends resets the
// count, and an idle spell not yet over just moves the timer.
func (c *Conn) keepaliveTimeout() {
	t := c.t
	if c.keepProbes == 0 && t.now < c.lastRecv+c.keepIdle {
		c.idle()
		return
	}
	if c.keepProbes >= defaultKeepProbes {
		c.fail(ErrTimeout)
		return
	}
	c.keepProbes++
	c.keepProbe = true
	t.wantOutput(c)
	c.setTimer(t.now+c.keepIntvl, timerKeepalive)
}
