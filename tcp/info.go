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
	// SndWnd is the peer's window (scaled), today the sender's only
	// limit outside recovery from a timeout.
	SndWnd uint32
	// SRTT and RTO are the round-trip estimator's (RFC 6298).
	SRTT, RTO time.Duration
}

// Info returns the connection's sending state now.
func (c *Conn) Info() Info {
	srtt, rto := c.SRTT()
	return Info{InFlight: uint32(max(c.sndNxt.Sub(c.sndUna), 0)), SndWnd: c.sndWnd, SRTT: srtt, RTO: rto}
}
