package tcp

import (
	"io"
	"net/netip"
	"time"

	"github.com/xdpnet/xdpnet/internal/wheel"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// State is a connection state of RFC 9293 3.3.2.
type State uint8

// The states. A Listener is LISTEN; a Conn is one of the others.
const (
	Closed State = iota
	Listen
	SynSent
	SynReceived
	Established
	FinWait1
	FinWait2
	CloseWait
	Closing
	LastAck
	TimeWait
)

var stateNames = [...]string{"CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED",
	"FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "UNKNOWN"
}

// synchronized reports whether the handshake is done (RFC 9293 3.5: the
// states after SYN-RECEIVED), the states that answer RST with a reset.
func (s State) synchronized() bool { return s >= Established }

// Conn is one TCP connection. Its methods are for the table's owner (the
// poller goroutine); nothing here is safe for concurrent use.
type Conn struct {
	t             *Table
	local, remote netip.AddrPort
	key           tuple
	state         State
	// listener is the listener a passive connection came from, while it
	// waits in its SYN or accept queue.
	listener         *Listener
	queued           bool  // in listener's accept queue
	synPrev, synNext *Conn // neighbours in listener's SYN queue, if not queued

	// Send sequence variables (RFC 9293 3.3.1). sndNxt is the next
	// sequence number to send, which a retransmission timeout moves back
	// to sndUna; sndMax is the highest ever sent.
	iss, sndUna, sndNxt, sndMax Seq
	sndWnd, maxSndWnd           uint32 // the peer's window, scaled
	sndWl1, sndWl2              Seq
	sndShift, rcvShift          uint8
	mss                         int // the largest payload we send

	// Receive sequence variables. rcvAdv is the right edge of the window
	// we advertised last: it never moves left (RFC 9293 3.8.6.2.2).
	irs, rcvNxt, rcvAdv Seq

	snd *ring       // bytes written and not yet acknowledged, from sndUna (or ISS+1)
	rcv *recvBuffer // bytes received and not yet read
	// Buffer sizing (autotune.go): the sizes SetRecvBuffer and
	// SetSendBuffer pinned (0: auto-tuned), and the app's reading rate.
	rcvPin, sndPin int
	space          rcvSpace

	synAcked    bool // our SYN is acknowledged: data starts at sndUna
	finQueued   bool // the app closed its write side: a FIN follows the data
	finReceived bool // the peer's FIN arrived in order
	finAhead    bool // a FIN came out of order, at finAt: taken when the data before it is in
	finAt       Seq
	appClosed   bool // Close was called: the app reads no more
	nagle       bool
	unpushed    uint32 // bytes sent since the last PSH (markPush)
	passive     bool   // opened by a listener

	// Timestamps (timestamps.go, RFC 7323). ts: offered, in SYN-SENT;
	// in use, once the peer's SYN came. tsOff is our clock's offset;
	// TS.Recent is the peer's TSval to echo, taken at tsRecentAt;
	// Last.ACK.sent the acknowledgment number we sent last (4.3).
	ts          bool
	tsOff       uint32
	tsRecent    uint32
	tsRecentAt  time.Duration
	lastAckSent Seq

	ackNow    bool // an ACK (or window update) is due
	probe     bool // the persist timer fired: probe the zero window
	wsOffered bool // the peer's SYN offered window scaling
	// ACK timing (delack.go): the peer's full segment size as its
	// segments show it (Linux's rcv_mss), the ACKs left to send at once
	// (Linux's icsk_ack.quick), when in-order data last came, and the
	// delayed-ACK timer. A second timer, as retransmission and delayed
	// ACK run together whenever data flows both ways: sharing the one
	// would mean finding the earlier deadline and rearming the other
	// on every change. It costs one wheel.Timer per connection.
	rcvMSS    int
	quickAcks uint8
	dataSeen  bool
	dataAt    time.Duration
	dackTm    wheel.Timer[*Conn]
	// SACK (sack.go, RFC 2018). sack: offered, in SYN-SENT; in use,
	// once the peer's SYN came, if it offered it too (sackOffered).
	// sackRecent are receive stream offsets of the out-of-order segments
	// that came last, newest first: their ranges lead our SACK blocks. A
	// D-SACK block (RFC 2883) is due for a duplicate. The scoreboard
	// holds the ranges the peer SACKed, as send stream offsets.
	sack, sackOffered bool
	sackRecent        [wire.MaxSACKBlocks]uint64
	nSackRecent       int
	dsack             wire.SACKBlock
	dsackDue          bool
	scoreboard        spanSet
	// SACK-based recovery (rack.go, recovery.go): a record of every
	// segment in flight, RACK's state, and PRR's for the recovery.
	recs sentRecords
	rack rackState
	prr  prrState
	// Retransmission (RFC 6298): the estimator, consecutive timeouts,
	// and the one segment timed for an RTT sample (Karn: never a
	// retransmitted one).
	rto            RTOEstimator
	retries        int
	rttSeq         Seq
	rttStart       time.Duration
	rttTiming      bool
	dupAcks        int
	dupAcksDue     int  // duplicate ACKs owed, one per out-of-order segment (RFC 5681 4.2)
	fastRetransmit bool // resend the segment at sndUna now (three duplicate ACKs)
	// Congestion control (cc.go, recovery.go): the window, the
	// algorithm (cc: reno, or &cubic), NewReno's fast recovery until
	// recover (RFC 6582), and when the flight last emptied (idleAt).
	win             window
	cc              congestionControl
	cubic           cubic
	inRecovery      bool
	undo            undoState
	recover         Seq
	idleAt          time.Duration
	tlp             lossProbe // the tail loss probe (tlp.go, RFC 8985 7)
	connectDeadline time.Duration
	// The most in flight over the window of data that began when SND.NXT
	// was flightSeq, for congestion window validation (noteFlight).
	maxFlight uint32
	flightSeq Seq
	// The pacer (pacing.go) and its timer, a third, as it runs alongside
	// the retransmission timer whenever a paced flight is out.
	pace   paceState
	paceTm wheel.Timer[*Conn]

	// The last ACK sent for an unacceptable segment (ratelimit.go).
	oowAt   time.Duration
	oowSent bool

	tm        wheel.Timer[*Conn] // the one timer, running for timerKind
	timerKind timerKind
	// rtoAt is the retransmission timer's deadline while the loss probe's
	// or RACK's reorder timer stands in front of it (tlp.go, rack.go).
	rtoAt time.Duration

	err error     // why the connection ended, if it did badly
	pub published // the status the app sees (Status)

	// Keepalive (keepalive.go): the last time a segment came, and the
	// probes sent since.
	keepalive           bool
	keepProbe           bool // a probe is due
	keepIdle, keepIntvl time.Duration
	keepCount           int // unanswered probes that end the connection
	keepProbes          int
	lastRecv            time.Duration
	// Socket options (sockopt.go): the user timeout and progressAt, when
	// the flight last started or moved; the FIN-WAIT-2 timeout and since
	// when it runs; the cork and since when it holds a partial segment.
	userTimeout, progressAt time.Duration
	finWait2, finWait2Since time.Duration
	cork, corkHeld          bool
	corkSince               time.Duration
	// softErr is the last ICMP error for a synchronized connection
	// (unreach.go): reported instead of ErrTimeout if it times out.
	softErr error

	// Owner is the app layer's handle on the connection, which the owner
	// of the table notifies when NextReady returns it.
	Owner   Notifier
	inTx    bool // in the table's transmit queue
	inReady bool // in the table's ready queue

	// Observability (info.go): the largest reordering seen in segments
	// (found by RACK, rack.go), when data last went and came and an ACK
	// last came, the counters, the windowed minimum RTT (minrtt.go) and
	// the delivery rate (rate.go), last: its records are the bulk of it,
	// and kept out of the way of the fields every segment touches.
	reordering                              uint32
	lastDataSent, lastDataRecv, lastAckRecv time.Duration
	stats                                   ConnStats
	minRTT                                  windowedMin
	rate                                    rateEstimator
	// rexmitCause is the cause of the retransmission being sent, set by
	// the sender that counts it in stats, for Config.Trace.
	rexmitCause RetransmitCause
}

// ConnStats are one connection's counters, for the socket table. Info
// carries them with the rest of the connection's state.
type ConnStats struct {
	// SegsIn and SegsOut count every segment, DataSegsIn and
	// DataSegsOut those with data (retransmissions included), as
	// RFC 4898's tcpEStatsPerfSegsIn and tcpEStatsDataSegsOut.
	SegsIn, SegsOut, DataSegsIn, DataSegsOut uint64
	// BytesAcked and BytesReceived count the data acknowledged by the
	// peer and received in order; BytesSent every data byte sent and
	// BytesRetrans those sent again (Linux's tcpi_bytes_*).
	BytesAcked, BytesReceived, BytesSent, BytesRetrans uint64
	OutOfOrderDrops                                    uint64
	SACKBlocksRecv, DSACKsRecv                         uint64 // the peer's SACK blocks, and D-SACKs among them
	// Retransmits counts the segments sent again, the sum of the kinds:
	// FastRetransmits those of fast retransmit and NewReno's partial
	// ACKs, TLPRetransmits the tail loss probes that resent the last
	// segment, RTORetransmits the others, resent by going back: after a
	// timeout (RFC 6298 5.4; the SYN's included), a dropped zero-window
	// probe, or a repeated SYN that our SYN,ACK answers again. Timeouts
	// counts the retransmission timeouts.
	Retransmits, FastRetransmits, TLPRetransmits, RTORetransmits, Timeouts uint64
	// UndoneReductions counts fast recoveries undone: their
	// retransmissions proved needless (timestamps or D-SACKs).
	UndoneReductions uint64
	// ReorderSeen counts reorderings detected (Linux's tcpi_reord_seen):
	// SACKs of data sent once, below data SACKed before, and
	// retransmissions the timestamps show were not needed.
	ReorderSeen uint64
	// TLPProbes counts tail loss probes sent (RFC 8985 7.3), new data
	// or a retransmission (TLPRetransmits), and TLPRecoveries those that
	// repaired a loss, which reduced the window (7.4.2).
	TLPProbes, TLPRecoveries uint64
	// HystartDelayDetect counts HyStart++'s exits from slow start on a
	// rising RTT (RFC 9406; Linux's TCPHystartDelayDetect), and
	// HystartCSSResumes its returns to slow start from CSS when the RTT
	// fell back (the exit was spurious). HystartTrainDetect counts the
	// exits on an ACK train (Linux's HyStart rule beside RFC 9406's,
	// cc.go; TCPHystartTrainDetect).
	HystartDelayDetect, HystartCSSResumes, HystartTrainDetect uint64
	// SACKRecoveries counts the fast recoveries entered by SACK (RFC
	// 6675), RACKLost the segments marked lost (by RACK, RFC 8985 6.2,
	// or three duplicate ACKs without SACK blocks), SpuriousRetransmits
	// the retransmissions of a recovery that a D-SACK showed needless.
	SACKRecoveries, RACKLost, SpuriousRetransmits uint64
	// SentRecordMerges counts segments recorded in the newest sent
	// segment's record because the records were at their bound (rack.go).
	SentRecordMerges uint64
}

// LocalAddr is the connection's local address and port.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// RemoteAddr is the peer's address and port.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote }

// State is the connection's state.
func (c *Conn) State() State { return c.state }

// Err is why the connection ended (ErrReset, ErrRefused, ErrTimeout,
// ErrAborted), or nil.
func (c *Conn) Err() error { return c.err }

// Stats returns the connection's counters.
func (c *Conn) Stats() ConnStats { return c.stats }

// PeerSACKPermitted reports whether the peer's SYN offered SACK (RFC 2018;
// for a connection rebuilt from a SYN cookie, as the cookie remembers it).
func (c *Conn) PeerSACKPermitted() bool { return c.sackOffered }

// SACK reports whether the connection uses SACK: both SYNs offered it.
func (c *Conn) SACK() bool { return c.sack && c.state != SynSent }

// SACKScoreboard calls f for each range the peer's SACK blocks say it
// holds above SND.UNA, lowest first, as sequence numbers [left, right).
func (c *Conn) SACKScoreboard(f func(left, right Seq)) {
	for _, s := range c.scoreboard.spans() {
		f(c.sndSeq(s.start), c.sndSeq(s.end))
	}
}

// SRTT is the smoothed round-trip time and RTO the retransmission timeout.
func (c *Conn) SRTT() (srtt, rto time.Duration) {
	s, _ := c.rto.SRTT()
	return s, c.rto.RTO()
}

// Readable is the number of bytes Read returns at once.
func (c *Conn) Readable() int {
	c.t.visits++
	return c.rcv.Len()
}

// Writable is the room in the send buffer.
func (c *Conn) Writable() int {
	c.t.visits++
	return c.snd.Free()
}

// Unacked is the number of written bytes the peer has not acknowledged.
func (c *Conn) Unacked() int { return c.snd.Len() }

// SetNagle turns Nagle's algorithm on or off (RFC 9293 3.7.4; off is
// TCP_NODELAY).
func (c *Conn) SetNagle(on bool) { c.nagle = on }

// Read moves received bytes into p. It returns io.EOF once the peer's FIN
// came and every byte before it was read, the connection's error if it
// ended badly, and ErrWouldBlock when nothing is there yet.
func (c *Conn) Read(p []byte) (int, error) {
	c.t.visits++
	if c.rcv.Len() > 0 && len(p) > 0 {
		n := c.rcv.Read(p)
		c.rcvSpaceAdjust()
		c.windowOpened()
		return n, nil
	}
	switch {
	case len(p) == 0 && c.err == nil:
		return 0, nil
	case c.err != nil:
		return 0, c.err
	case c.finReceived:
		return 0, io.EOF
	case c.state == Closed:
		return 0, ErrNotConnected
	}
	return 0, ErrWouldBlock
}

// windowOpened sends a window update if reading opened the window enough
// (windowUpdateDue).
func (c *Conn) windowOpened() {
	if c.state.synchronized() && !c.finReceived && c.windowUpdateDue() {
		c.ackNow = true
		c.t.wantOutput(c)
	}
}

// Write queues as much of p as the send buffer takes and returns how
// much; ErrWouldBlock if none. Data written before the handshake ends
// waits for it.
func (c *Conn) Write(p []byte) (int, error) {
	c.t.visits++
	switch {
	case c.err != nil:
		return 0, c.err
	case c.finQueued || c.state == Closed:
		return 0, ErrClosedWrite
	case len(p) == 0:
		return 0, nil
	}
	n := c.snd.Write(p)
	if n == 0 {
		return 0, ErrWouldBlock
	}
	c.t.wantOutput(c)
	return n, nil
}

// CloseWrite ends the write side: a FIN follows the data written so far
// (RFC 9293 3.10.4). Reading goes on until the peer's FIN.
func (c *Conn) CloseWrite() error {
	if c.err != nil {
		return c.err
	}
	if c.finQueued {
		return nil
	}
	c.finQueued = true
	switch c.state {
	case SynReceived, Established:
		c.setState(FinWait1)
	case CloseWait:
		c.setState(LastAck)
	case Closed:
		return ErrNotConnected
	}
	c.t.wantOutput(c)
	return nil
}

// Close closes the connection for the app. With unread data it aborts
// with a RST, as Linux does (RFC 1122 4.2.2.13, RFC 2525 2.17); otherwise
// the written data goes out followed by a FIN, and the connection lives
// on in the table until the close handshake and TIME-WAIT are over. After
// Close, any data from the peer draws a RST.
func (c *Conn) Close() error {
	if c.appClosed {
		return nil
	}
	c.appClosed = true
	switch {
	case c.state == Closed || c.state == TimeWait:
		c.freeBuffers()
		return nil
	case c.state == SynSent:
		c.t.remove(c)
		return nil
	case c.rcv.Len() > 0:
		c.Abort()
		return nil
	}
	c.CloseWrite()
	if c.state == FinWait2 {
		c.orphanInFinWait2()
	}
	return nil
}

// freeBuffers lets the buffers go once the app closed and the connection
// needs them no more (TIME-WAIT or CLOSED): the app's goroutine may use
// them until its Close, so they are never taken from under it.
//
// They go back to the table's pool for the next connection: making (and
// so zeroing) 256 KiB of rings per connection was a third of a busy
// server's CPU at 64 clients connecting. The app layer must not touch a
// Stream after its Close (sockapi waits out its calls in flight).
func (c *Conn) freeBuffers() {
	if c.appClosed && (c.state == Closed || c.state == TimeWait) && c.rcv != noRecvBuffer {
		c.t.mem.charge(-c.snd.size() - c.rcv.size())
		c.t.pool.put(&c.t.cfg, c.snd, c.rcv)
		c.snd, c.rcv = noBuffer, noRecvBuffer
		c.recs = sentRecords{}
	}
}

// allocBuffers gives the connection its send and receive buffers, at the
// sizes pinned if SetRecvBuffer or SetSendBuffer came first.
func (c *Conn) allocBuffers() {
	c.snd, c.rcv = c.t.pool.get(&c.t.cfg)
	c.t.mem.charge(c.snd.size() + c.rcv.size())
	if c.rcvPin > 0 {
		c.SetRecvBuffer(c.rcvPin)
	}
	if c.sndPin > 0 {
		c.SetSendBuffer(c.sndPin)
	}
}

// noBuffer and noRecvBuffer stand for freed buffers: empty, and with no
// room.
var (
	noBuffer     = newRingSize(0)
	noRecvBuffer = &recvBuffer{ring: noBuffer}
)

// finDue reports whether our FIN is queued and would go out next: the
// data before it all sent, the FIN itself not, and room for it in the
// peer's window.
func (c *Conn) finDue() bool {
	return c.finQueued && c.synAcked && c.sndMax == c.finSeq() && c.sndMax.LessThan(c.sndUna.Add(c.sndWnd))
}

// Abort resets the connection at once (SO_LINGER 0): a RST goes out in
// the synchronized states (RFC 9293 3.10.5) and unsent data is dropped.
func (c *Conn) Abort() {
	if c.state == Closed {
		return
	}
	if (c.state.synchronized() && c.state != TimeWait) || c.state == SynReceived {
		// From SND.MAX, not SND.NXT, which a timeout may have moved back:
		// the peer takes a reset only at the edge it expects (RFC 5961).
		seq := c.sndMax
		if c.finDue() {
			// CloseWrite queued a FIN that has not gone out yet (Linux's
			// shutdown sends it at once): it goes first, then the RST
			// from past it, so the peer sees the order the app asked for.
			c.t.queueCtl(reply{local: c.local, remote: c.remote, seq: seq, ack: c.rcvNxt, flags: wire.TCPFlagFIN | wire.TCPFlagACK,
				wnd: uint16(c.windowToAdvertise() >> c.rcvShift), opts: c.options(wire.TCPFlagFIN | wire.TCPFlagACK)})
			seq = seq.Add(1)
		}
		c.t.queueRST(c.local, c.remote, seq, c.rcvNxt, true)
	}
	if c.err == nil {
		c.err = ErrAborted
	}
	c.t.remove(c)
}
