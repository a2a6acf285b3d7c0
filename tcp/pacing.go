package tcp

import "time"

// Pacing spreads a connection's data over its round trip instead of
// sending each window in one burst at line rate, so that a slow start or
// a recovery does not overrun a bottleneck's queue with bursts the path
// could have carried spread out. It follows Linux's internal pacing
// (tcp_update_pacing_rate, tcp_pacing_check, tcp_update_skb_after_send):
//
//   - the rate is a ratio of cwnd/SRTT (of the flight, if larger): 200 %
//     while cwnd is below half ssthresh (slow start, well short of its
//     end), 120 % after, so ACK clocking, not the pacer, sets the pace of
//     a connection that fills its window;
//   - the first paceUnpaced data segments go unpaced (the initial
//     window, as Linux's fq leaves the first 10), and so does anything
//     before the first RTT sample;
//   - data leaves in bursts of a quantum, at least two segments or a
//     millisecond of data at the rate (Linux's tcp_tso_autosize: 2
//     segments or rate >> sk_pacing_shift), and each segment pushes the
//     release time of the next burst back by its length at the rate;
//   - a burst that begins late (the release found the connection held
//     by cwnd, or a poller woke after its deadline) takes up to half a
//     quantum of the time it lost as credit, as Linux counts a late
//     segment's time at half.
//
// The quantum is what makes the wheel's 1 ms slots and the poller's park
// enough: a release comes at most once a millisecond per connection
// whatever the rate, so a paced connection costs one timer and one visit
// per burst, not per segment, and a poller whose park rounds a short wait
// up to a millisecond (Go's netpoll does) does not cut the rate. The
// wheel keeps exact deadlines within a slot, so in virtual time a
// release comes at its time to the nanosecond.
//
// What is paced is new data and the retransmissions of SACK recovery
// (RFC 6675's NextSeg), Linux's tcp_write_xmit and
// tcp_xmit_retransmit_queue; not pure ACKs, not the one segment a timer
// sends (a tail loss probe, a zero-window or keepalive probe) and not
// NewReno's fast retransmission, which each send one segment after a
// pause. Those still count against the rate. While the connection waits
// for its release it leaves the transmit queue, and paceTm brings it
// back; an ACK it owes meanwhile goes alone.

// paceUnpaced is the data segments a connection sends before pacing
// starts.
const paceUnpaced = 10

// Pacing ratios, percent of cwnd/SRTT: Linux's tcp_pacing_ss_ratio and
// tcp_pacing_ca_ratio.
const (
	paceSSRatio = 200
	paceCARatio = 120
)

// paceQuantumTime is the least time a burst takes at the pacing rate.
const paceQuantumTime = time.Millisecond

// paceState is a connection's pacer.
type paceState struct {
	on bool
	// at is when the next burst may go; left the bytes the burst under
	// way may still send, at rate (bytes per second) taken when it began.
	at   time.Duration
	left int
	rate uint64
}

// pacingRate is the rate the pacer sends at, in bytes per second: 0 when
// the connection is not paced (yet).
func (c *Conn) pacingRate() uint64 {
	srtt, ok := c.rto.SRTT()
	if !c.pace.on || !ok || srtt <= 0 {
		return 0
	}
	ratio := uint64(paceCARatio)
	if c.win.cwnd < c.win.ssthresh/2 {
		ratio = paceSSRatio
	}
	wnd := uint64(max(c.win.cwnd, uint32(max(c.sndMax.Sub(c.sndUna), 0))))
	// ratio/100 × wnd / srtt, in bytes per second: wnd below 2^32 and
	// ratio 200 keep the product below 2^64.
	return wnd * ratio * uint64(time.Second/100) / uint64(srtt)
}

// paceHeld reports whether a paced connection's data must wait for the
// pacer's next release, and if so makes sure the pacing timer brings the
// connection back then. Callers test pace.on first, so an unpaced
// segment pays a load and a branch, not a call.
func (c *Conn) paceHeld() bool {
	p := &c.pace
	if p.left > 0 || p.at <= c.t.now {
		return false
	}
	if !c.paceTm.Active() {
		c.t.wheel.Schedule(&c.paceTm, p.at)
	}
	return true
}

// paceSent charges n bytes of data sent now to the pacer. It inlines, as
// the test of pace.on before paceHeld.
func (c *Conn) paceSent(n int) {
	if c.pace.on && c.stats.DataSegsOut > paceUnpaced {
		c.paceCharge(n)
	}
}

// paceCharge is paceSent's work.
func (c *Conn) paceCharge(n int) {
	p := &c.pace
	now := c.t.now
	if p.left <= 0 || p.at < now-paceQuantumTime/2 {
		// A burst begins: at the release time, or with credit for a late one.
		if p.rate = c.pacingRate(); p.rate == 0 {
			p.left = 0
			return
		}
		p.at = max(p.at, now-paceQuantumTime/2)
		// The rate divided, not the time multiplied: at a
		// microsecond's SRTT the product would not fit 64 bits.
		p.left = max(2*int(c.smss()), int(p.rate/uint64(time.Second/paceQuantumTime)))
	}
	p.left -= n
	p.at += time.Duration(uint64(n) * uint64(time.Second) / p.rate)
}

// paceRelease is the pacing timer: the connection may send again.
func (c *Conn) paceRelease() { c.t.wantOutput(c) }

// SetPacing turns pacing on or off for the connection (Config.Pacing
// sets it for new connections). Off, a held connection is released.
func (c *Conn) SetPacing(on bool) {
	if c.pace.on == on {
		return
	}
	c.pace = paceState{on: on}
	if !on && c.paceTm.Active() {
		c.t.wheel.Stop(&c.paceTm)
		c.t.wantOutput(c)
	}
}

// Pacing reports whether the connection paces its sending.
func (c *Conn) Pacing() bool { return c.pace.on }
