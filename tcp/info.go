package tcp

import "time"

// Info is a snapshot of a connection's sending state, for a trace sampled
// from outside (a cwnd/in-flight plot, a socket table). Reading it costs a
// few loads and no allocation.
type Info struct {
	// InFlight is the bytes sent and not yet acknowledged: SND.NXT -
	// SND.UNA (a SYN or FIN counts one), which a retransmission timeout
	// sets back to zero.
	InFlight uint32
	// SndWnd is the peer's window (scaled); the sender keeps at most
	// min(SndWnd, Cwnd) in flight.
	SndWnd uint32
	// Cwnd and Ssthresh are the congestion window and slow start
	// threshold (RFC 5681), in bytes.
	Cwnd, Ssthresh uint32
	// SRTT and RTO are the round-trip estimator's (RFC 6298).
	SRTT, RTO time.Duration
}

// Info returns the connection's sending state now.
func (c *Conn) Info() Info {
	srtt, rto := c.SRTT()
	return Info{InFlight: uint32(max(c.sndNxt.Sub(c.sndUna), 0)), SndWnd: c.sndWnd, Cwnd: c.win.cwnd, Ssthresh: c.win.ssthresh,
		SRTT: srtt, RTO: rto}
}
