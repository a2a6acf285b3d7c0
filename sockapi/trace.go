package sockapi

import (
	"net/netip"

	"github.com/xdpnet/xdpnet/tcp"
)

// TraceEvent is one event of a stack's TCP that Config.Trace hears of:
// a connection's state change, a retransmission and its cause, a
// retransmission timeout or a tail loss probe firing, or a segment
// dropped and why. It is passed by value: delivering it allocates
// nothing.
type TraceEvent struct {
	Kind TraceKind
	// Local and Remote are the connection's 4-tuple, or a dropped
	// segment's destination and source (ports zero when its header was
	// too short to read them).
	Local, Remote netip.AddrPort
	// From and To are the states left and entered (TraceState).
	From, To TCPState
	// Cause is why a segment was resent (TraceRetransmit).
	Cause RetransmitCause
	// Seq and Len are the resent segment's sequence number and payload
	// length (TraceRetransmit).
	Seq uint32
	Len int
	// Reason is why a segment was dropped (TraceDrop).
	Reason DropReason
}

// TraceKind is what a TraceEvent reports.
type TraceKind uint8

// The kinds of trace event.
const (
	TraceState      TraceKind = iota + 1 // a connection changed state
	TraceRetransmit                      // a segment was resent
	TraceRTO                             // a retransmission timer fired (RFC 6298 5.4)
	TraceTLP                             // a tail loss probe timer fired (RFC 8985 7.3)
	TraceDrop                            // a segment was dropped
)

// RetransmitCause is why a segment was resent.
type RetransmitCause uint8

// The causes of a retransmission, as Linux's tcpi counters and
// TcpExt's split them.
const (
	CauseRTO  RetransmitCause = iota + 1 // after a retransmission timeout (TcpExtTCPTimeouts)
	CauseFast                            // fast retransmit: duplicate or partial ACKs, without SACK (TcpExtTCPRenoRecovery)
	CauseRACK                            // in a SACK recovery: marked lost by RACK or three duplicate ACKs (TcpExtTCPSackRecovery)
	CauseTLP                             // a tail loss probe resent the last segment (TcpExtTCPLossProbes)
	CauseSYN                             // a SYN or SYN,ACK resent
)

// DropReason is why a segment was dropped, after Linux's skb drop
// reasons (named in each's comment); each but DropSequence and
// DropNoSocket (whose segments are answered, by an ACK, by a RST) is
// also counted in Counters, as said.
type DropReason uint8

// The reasons for a drop.
const (
	DropMalformed      DropReason = iota + 1 // a bad header, options or port (TcpInErrs; PKT_TOO_SMALL)
	DropChecksum                             // a bad checksum (TcpInCsumErrors; TCP_CSUM)
	DropFlags                                // flags no TCP sends in that state (XdpnetTcpFlagDrops; TCP_FLAGS)
	DropListenOverflow                       // a SYN or ACK while the accept queue is full (TcpExtListenOverflows; SOCKET_BACKLOG)
	DropPAWS                                 // an old duplicate by its timestamp (TcpExtPAWSEstab; TCP_RFC7323_PAWS)
	DropSequence                             // outside the receive window, answered by an ACK (TCP_INVALID_SEQUENCE)
	DropOutOfOrder                           // out of order, too many ranges kept already (TcpExtTCPOFODrop; TCP_OFODROP)
	DropRecvQueueFull                        // cut: the receive buffer was full (TcpExtTCPRcvQDrop; PROTO_MEM)
	DropNoSocket                             // no connection or listener takes it, answered by a RST (NO_SOCKET)
)

var (
	traceKindNames = [...]string{"", "state", "retransmit", "rto", "tlp", "drop"}
	causeNames     = [...]string{"", "rto", "fast", "rack", "tlp", "syn"}
	dropNames      = [...]string{"", "malformed", "checksum", "flags", "listen-overflow", "paws", "sequence",
		"out-of-order", "recv-queue-full", "no-socket"}
)

// String is the kind's name: state, retransmit, rto, tlp, drop.
func (k TraceKind) String() string { return name(traceKindNames[:], int(k)) }

// String is the cause's name: rto, fast, rack, tlp, syn.
func (c RetransmitCause) String() string { return name(causeNames[:], int(c)) }

// String is the reason's name: malformed, checksum, flags, …
func (r DropReason) String() string { return name(dropNames[:], int(r)) }

func name(names []string, i int) string {
	if i > 0 && i < len(names) {
		return names[i]
	}
	return "unknown"
}

// The core's values, in sockapi's words.
var (
	traceKinds = [...]TraceKind{tcp.EventState: TraceState, tcp.EventRetransmit: TraceRetransmit,
		tcp.EventRTO: TraceRTO, tcp.EventTLP: TraceTLP, tcp.EventDrop: TraceDrop}
	causes = [...]RetransmitCause{tcp.CauseRTO: CauseRTO, tcp.CauseFast: CauseFast, tcp.CauseRACK: CauseRACK,
		tcp.CauseTLP: CauseTLP, tcp.CauseSYN: CauseSYN}
	drops = [...]DropReason{tcp.DropMalformed: DropMalformed, tcp.DropChecksum: DropChecksum, tcp.DropFlags: DropFlags,
		tcp.DropListenOverflow: DropListenOverflow, tcp.DropPAWS: DropPAWS, tcp.DropSequence: DropSequence,
		tcp.DropOutOfOrder: DropOutOfOrder, tcp.DropRecvQueueFull: DropRecvQueueFull, tcp.DropNoSocket: DropNoSocket}
)

// traceEvent is the core's event e in sockapi's words.
func traceEvent(e tcp.Event) TraceEvent {
	return TraceEvent{
		Kind:  lookup(traceKinds[:], e.Kind),
		Local: e.Local, Remote: e.Remote,
		From: tcpState(e.From), To: tcpState(e.To),
		Cause: lookup(causes[:], e.Cause),
		Seq:   uint32(e.Seq), Len: e.Len,
		Reason: lookup(drops[:], e.Reason),
	}
}

// lookup is table[i], or zero for a value the table has none for.
func lookup[T any, I ~uint8](table []T, i I) T {
	var zero T
	if int(i) < len(table) {
		return table[i]
	}
	return zero
}
