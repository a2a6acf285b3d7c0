package tcp

import "time"

// Info is a snapshot of one connection's state, for a socket table like
// `ss -ti` and for traces sampled from outside, modelled on Linux's
// struct tcp_info. Bytes are stream bytes (headers, SYN and FIN not
// counted unless said), times are durations on the table's clock, rates
// bytes per second. Reading it costs a few dozen loads and no
// allocation; it is the owner's (the poller's) to read, like every Conn
// method.
type Info struct {
	State State
	// SndMSS is the largest payload a segment carries, options
	// excluded (the sender's MSS, RFC 5681's SMSS).
	SndMSS uint32

	// RTT and RTTVar are RFC 6298's SRTT and RTTVAR; zero until the
	// first sample. MinRTT is the lowest sample of the last five
	// minutes (minrtt.go). RTO is the retransmission timeout, backoff
	// included.
	RTT, RTTVar, MinRTT, RTO time.Duration

	// Cwnd and Ssthresh are the congestion window and slow start
	// threshold (RFC 5681), in bytes; Ssthresh is 1<<32-1 until the
	// first loss.
	Cwnd, Ssthresh uint32
	// InFlight is the bytes sent and not yet acknowledged: SND.NXT -
	// SND.UNA (a SYN or FIN counts one), which a retransmission timeout
	// sets back to zero. Pipe is RFC 6675's estimate of what is still in
	// the network: with SACK, what is out less what the peer SACKed and
	// what is lost, plus what was resent (rack.go); InFlight without.
	InFlight, Pipe uint32
	// SndWnd is the peer's window (scaled), RcvWnd the room left in the
	// window we advertised (RCV.ADV - RCV.NXT).
	SndWnd, RcvWnd uint32

	// Delivered is the bytes the peer acknowledged, cumulatively or by
	// SACK (draft-cheng-iccrg-delivery-rate-estimation's C.delivered).
	// DeliveryRate is the last rate sample that was not app-limited, or
	// a higher app-limited one (Linux's tcpi_delivery_rate), and
	// DeliveryRateAppLimited says it was app-limited: the sender had
	// too little to send to fill the path, so the path may do more.
	Delivered              uint64
	DeliveryRate           uint64
	DeliveryRateAppLimited bool
	// PacingRate is the rate the pacer releases data at (pacing.go), in
	// bytes per second; 0 when the connection is not paced, or not yet
	// (Linux's tcpi_pacing_rate).
	PacingRate uint64

	// Reordering is the largest reordering seen, in segments: how far
	// out of order a segment came (Linux's tp->reordering; 3, the
	// duplicate ACK threshold, until more is seen).
	Reordering uint32

	// Timer is the timer that runs ("retransmit", "loss-probe", "persist",
	// "keepalive", "time-wait", "fin-wait-2"; "" for none) and TimerIn
	// how long until it fires.
	Timer   string
	TimerIn time.Duration

	// LastDataSent, LastDataRecv and LastAckRecv are how long ago the
	// last data segment went out, the last data segment came, and the
	// last ACK came; from the connection's start if none yet.
	LastDataSent, LastDataRecv, LastAckRecv time.Duration

	// ConnStats are the connection's counters.
	ConnStats
}

// timerNames are what Info calls the timers.
var timerNames = [...]string{
	timerNone: "", timerRetransmit: "retransmit", timerLossProbe: "loss-probe", timerPersist: "persist",
	timerKeepalive: "keepalive", timerTimeWait: "time-wait", timerFinWait2: "fin-wait-2",
	timerReorder: "reorder", timerShrink: "shrink", timerCork: "cork",
}

// initialReordering is the reordering a connection assumes at first:
// the three duplicate ACKs of RFC 5681 3.2, as Linux's tcp_reordering.
// maxReordering bounds it, as Linux's tcp_max_reordering.
const (
	initialReordering = 3
	maxReordering     = 300
)

// noteReordering records that a segment arrived segs segments out of
// order: a reordering event, which widens Reordering if it is the
// largest yet (Linux's tcp_check_sack_reordering).
func (c *Conn) noteReordering(segs uint32) {
	if c.stats.ReorderSeen == 0 {
		c.t.stats.SACKReorder++
	}
	c.stats.ReorderSeen++
	c.reordering = min(max(c.reordering, segs), maxReordering)
}

// Info returns the connection's state now.
func (c *Conn) Info() Info {
	now := c.t.now
	srtt, _ := c.rto.SRTT()
	i := Info{
		State: c.state, SndMSS: c.smss(),
		RTT: srtt, RTTVar: c.rto.RTTVar(), MinRTT: c.minRTT.get(), RTO: c.rto.RTO(),
		Cwnd: c.win.cwnd, Ssthresh: c.win.ssthresh,
		InFlight: c.inFlight(), Pipe: c.Pipe(),
		SndWnd: c.sndWnd, RcvWnd: uint32(max(0, c.rcvAdv.Sub(c.rcvNxt))),
		Delivered: c.rate.delivered, Reordering: c.reordering,
		LastDataSent: now - c.lastDataSent, LastDataRecv: now - c.lastDataRecv, LastAckRecv: now - c.lastAckRecv,
		ConnStats: c.stats,
	}
	i.DeliveryRate, i.DeliveryRateAppLimited = c.rate.rate()
	i.PacingRate = c.pacingRate()
	if c.tm.Active() && int(c.timerKind) < len(timerNames) {
		i.Timer, i.TimerIn = timerNames[c.timerKind], max(0, c.tm.When()-now)
	}
	return i
}

// inFlight is SND.NXT - SND.UNA.
func (c *Conn) inFlight() uint32 { return uint32(max(c.sndNxt.Sub(c.sndUna), 0)) }
