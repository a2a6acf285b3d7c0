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
	c.keepDefaults()
	if !on {
		c.stopTimerKind(timerKeepalive)
	}
	c.idle()
}

// SetKeepAlivePeriod sets the idle time before the first probe and the
// time between probes (TCP_KEEPIDLE and TCP_KEEPINTVL); a value ≤ 0
// leaves that one as it is (Linux's defaults at first: 2 h and 75 s).
func (c *Conn) SetKeepAlivePeriod(idle, interval time.Duration) {
	c.keepDefaults()
	if idle > 0 {
		c.keepIdle = idle
	}
	if interval > 0 {
		c.keepIntvl = interval
	}
	c.idle()
}

// SetKeepAliveCount sets how many probes go unanswered before the
// connection ends (TCP_KEEPCNT; Linux's default 9); n ≤ 0 leaves it as
// it is.
func (c *Conn) SetKeepAliveCount(n int) {
	c.keepDefaults()
	if n > 0 {
		c.keepCount = n
	}
}

// keepDefaults gives the keepalive settings Linux's defaults, the first
// time one is set: a connection that never sets one pays nothing.
func (c *Conn) keepDefaults() {
	if c.keepIdle == 0 {
		c.keepIdle, c.keepIntvl, c.keepCount = defaultKeepIdle, defaultKeepIntvl, defaultKeepProbes
	}
}

// idle (re)starts the keepalive timer, or the idle shrink's if grown
// buffers wait for it sooner (autotune.go), when nothing else times the
// connection: it is established, has nothing in flight, and sends no
// keepalive probes.
func (c *Conn) idle() {
	switch {
	case c.state != Established && c.state != CloseWait:
		return
	case c.timerKind == timerKeepalive && c.keepProbes > 0:
		return
	case c.timerKind != timerNone && c.timerKind != timerKeepalive && c.timerKind != timerShrink:
		return
	}
	keep := c.lastRecv + c.keepIdle
	switch grown := c.grown(); {
	case grown && (!c.keepalive || c.shrinkAt() < keep):
		c.setTimer(c.shrinkAt(), timerShrink)
	case c.keepalive:
		c.setTimer(keep, timerKeepalive)
	}
}

// keepaliveTimeout sends the next probe, or ends the connection when
// keepCount went unanswered. Anything the peer sends resets the
// count, and an idle spell not yet over just moves the timer.
func (c *Conn) keepaliveTimeout() {
	t := c.t
	if c.keepProbes == 0 && t.now < c.lastRecv+c.keepIdle {
		c.idle()
		return
	}
	// With a user timeout, as Linux: the probes end the connection once
	// one is out and nothing came for that long, however many went.
	if (c.userTimeout > 0 && c.keepProbes > 0 && t.now-c.lastRecv >= c.userTimeout) ||
		(c.userTimeout == 0 && c.keepProbes >= c.keepCount) {
		c.fail(c.timeoutErr())
		return
	}
	c.keepProbes++
	c.keepProbe = true
	t.wantOutput(c)
	c.setTimer(t.now+c.keepIntvl, timerKeepalive)
}
