package tcp

import (
	"net/netip"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Event is one thing Config.Trace hears of: a connection's state change,
// a retransmission and its cause, a retransmission timeout or a tail
// loss probe firing, or a segment dropped and why. It is passed by value
// and holds no reference into the table.
type Event struct {
	Kind EventKind
	// Local and Remote are the connection's, or the dropped segment's
	// destination and source (zero ports for a header too short to
	// read).
	Local, Remote netip.AddrPort
	// From and To are the states left and entered (EventState).
	From, To State
	// Cause is why a segment was resent (EventRetransmit).
	Cause RetransmitCause
	// Seq and Len are the sequence number and payload length of the
	// segment resent (EventRetransmit).
	Seq Seq
	Len int
	// Reason is why a segment was dropped (EventDrop).
	Reason DropReason
}

// EventKind is what an Event reports.
type EventKind uint8

// The kinds of event.
const (
	EventState      EventKind = iota + 1 // a connection changed state
	EventRetransmit                      // a segment was resent
	EventRTO                             // the retransmission timer fired
	EventTLP                             // the loss probe timer fired (RFC 8985 7.3)
	EventDrop                            // a segment was dropped
)

// RetransmitCause is why a segment was resent: the last loss decision
// before it.
type RetransmitCause uint8

// The causes of a retransmission.
const (
	CauseRTO  RetransmitCause = iota + 1 // after a retransmission timeout (RFC 6298 5.4): gone back to SND.UNA, or what it marked lost
	CauseFast                            // three duplicate ACKs, or a partial ACK, without SACK (RFC 6582)
	CauseRACK                            // in a SACK recovery: RACK, or three duplicate ACKs, marked it lost (RFC 8985 6.2, RFC 6675 5)
	CauseTLP                             // a tail loss probe resent the last segment (RFC 8985 7.3)
	CauseSYN                             // a SYN or SYN,ACK was resent
)

// DropReason is why a segment was dropped: each one a counter of Stats
// counts too, but for DropNoSocket and DropSequence, which answer the
// segment (with a RST, with an ACK) as well.
type DropReason uint8

// The reasons for a drop, after Linux's skb drop reasons.
const (
	DropMalformed      DropReason = iota + 1 // a bad header, options or port (InErrs)
	DropChecksum                             // a bad checksum (InCsumErrors; Linux's TCP_CSUM)
	DropFlags                                // flags no TCP sends in that state (FlagDrops; TCP_FLAGS)
	DropListenOverflow                       // a SYN or ACK while the accept queue is full (ListenOverflows; SOCKET_BACKLOG)
	DropPAWS                                 // an old duplicate by its timestamp (PAWSDrops; TCP_RFC7323_PAWS)
	DropSequence                             // outside the receive window (TCP_INVALID_SEQUENCE)
	DropOutOfOrder                           // out of order, too many ranges kept already (OfoDrops; TCP_OFODROP)
	DropRecvQueueFull                        // cut: the receive buffer was full (RcvQDrops; PROTO_MEM)
	DropNoSocket                             // no connection or listener takes it (NO_SOCKET)
)

// trace reports e, filled with c's addresses, to Config.Trace. Callers
// check Config.Trace first, so that with no hook the event is not built.
func (c *Conn) trace(e Event) {
	e.Local, e.Remote = c.local, c.remote
	c.t.cfg.Trace(e)
}

// setState moves c to s: the one place a connection changes state, so
// that CurrEstab and the trace see every change.
func (c *Conn) setState(s State) {
	from := c.state
	if from == s {
		return
	}
	c.state = s
	if counted(from) {
		c.t.stats.CurrEstab--
	}
	if counted(s) {
		c.t.stats.CurrEstab++
	}
	if c.t.cfg.Trace != nil {
		c.trace(Event{Kind: EventState, From: from, To: s})
	}
}

// counted reports whether a connection in s counts in CurrEstab, as
// RFC 4022's tcpCurrEstab and Linux's: ESTABLISHED or CLOSE-WAIT.
func counted(s State) bool { return s == Established || s == CloseWait }

// drop reports a segment dropped for reason r, if a trace is on. Only
// the nil check is inlined into Input's paths.
func (t *Table) drop(r DropReason, local, remote netip.AddrPort) {
	if t.cfg.Trace != nil {
		t.traceDrop(r, local, remote)
	}
}

// traceDrop is drop's call of the trace, kept out of line: inlined, the
// Event it builds would sit in the frames of Input and its callees.
//
//go:noinline
func (t *Table) traceDrop(r DropReason, local, remote netip.AddrPort) {
	t.cfg.Trace(Event{Kind: EventDrop, Local: local, Remote: remote, Reason: r})
}

// traceRetransmit reports the segment at seq, n bytes of payload with
// flags, resent, by the cause ConnStats counts it under: a SYN, a go
// back from SND.NXT (a timeout), or the cause its sender set.
func (c *Conn) traceRetransmit(seq Seq, n int, flags uint8) {
	cause := c.rexmitCause
	switch {
	case flags&wire.TCPFlagSYN != 0:
		cause = CauseSYN
	case seq == c.sndNxt:
		cause = CauseRTO
	}
	c.trace(Event{Kind: EventRetransmit, Cause: cause, Seq: seq, Len: n})
}
