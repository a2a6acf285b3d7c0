package sockapi

import (
	"time"

	"github.com/xdpnet/xdpnet/tcp"
)

// TCPInfo is a TCP connection's state and counters, what Linux's
// TCP_INFO socket option and `ss -ti` show of a kernel socket. Sizes are
// in bytes, where TCP_INFO counts some (cwnd, ssthresh, unacked) in
// segments: divide by SndMSS to compare.
type TCPInfo struct {
	State TCPState
	// SndMSS is the largest payload a segment carries, options excluded
	// (the sender's MSS, RFC 5681's SMSS; tcpi_snd_mss).
	SndMSS uint32

	// RTT and RTTVar are the smoothed round-trip time and its variation
	// (RFC 6298's SRTT and RTTVAR), zero until the first sample; MinRTT
	// is the lowest sample of the last five minutes; RTO is the
	// retransmission timeout, backoff included.
	RTT, RTTVar, MinRTT, RTO time.Duration

	// Cwnd and Ssthresh are the congestion window and slow start
	// threshold (RFC 5681); Ssthresh is 1<<32-1 until the first loss.
	Cwnd, Ssthresh uint32
	// InFlight is the data sent and not yet acknowledged (a SYN or FIN
	// counts one byte); Pipe what is estimated to be still in the
	// network (RFC 6675): with SACK, InFlight less what the peer SACKed
	// and what is lost, plus what was resent; InFlight without.
	InFlight, Pipe uint32
	// SndWnd is the peer's window, RcvWnd the room left in the window
	// the connection advertised.
	SndWnd, RcvWnd uint32

	// Delivered is the data the peer acknowledged, cumulatively or by
	// SACK; DeliveryRate the last delivery rate sample in bytes per
	// second that was not app-limited, or a higher app-limited one
	// (tcpi_delivery_rate), and DeliveryRateAppLimited says it was: the
	// sender had too little to send to fill the path.
	Delivered              uint64
	DeliveryRate           uint64
	DeliveryRateAppLimited bool
	// PacingRate is the rate the pacer releases data at, in bytes per
	// second (tcpi_pacing_rate); 0 with pacing off.
	PacingRate uint64
	// Reordering is the largest reordering seen, in segments (3, the
	// duplicate ACK threshold, until more is seen; tcpi_reordering), and
	// ReorderSeen the reorderings detected (tcpi_reord_seen).
	Reordering  uint32
	ReorderSeen uint64

	// Timer is the timer that runs ("retransmit", "loss-probe",
	// "reorder", "persist", "keepalive", "time-wait", "fin-wait-2"; ""
	// for none), and TimerIn how long until it fires (`ss -o`).
	Timer   string
	TimerIn time.Duration
	// LastDataSent, LastDataRecv and LastAckRecv are how long ago the
	// last data segment went out, the last data segment came, and the
	// last ACK came; from the connection's start if none yet.
	LastDataSent, LastDataRecv, LastAckRecv time.Duration

	// SegsIn and SegsOut count every segment, DataSegsIn and DataSegsOut
	// those with data, retransmissions included (tcpi_segs_in …).
	SegsIn, SegsOut, DataSegsIn, DataSegsOut uint64
	// BytesAcked and BytesReceived count the data acknowledged by the
	// peer and received in order; BytesSent every data byte sent, and
	// BytesRetrans those sent again (tcpi_bytes_acked …).
	BytesAcked, BytesReceived, BytesSent, BytesRetrans uint64
	// Retransmits counts the segments sent again (tcpi_total_retrans),
	// by kind: FastRetransmits by fast retransmit (and NewReno's partial
	// ACKs), TLPRetransmits as tail loss probes, RTORetransmits after a
	// timeout or another go-back. Timeouts counts the retransmission
	// timeouts, Lost the segments found lost (tcpi_lost: by RACK, or three
	// duplicate ACKs), and SpuriousRetransmits the retransmissions a
	// D-SACK showed needless.
	Retransmits, FastRetransmits, TLPRetransmits, RTORetransmits uint64
	Timeouts, Lost, SpuriousRetransmits                          uint64
	// SACKRecoveries counts the fast recoveries entered by SACK, and
	// UndoneReductions the window reductions undone because timestamps
	// or D-SACKs showed the retransmissions needless.
	SACKRecoveries, UndoneReductions uint64
	// TLPProbes counts tail loss probes sent (RFC 8985 7.3), and
	// TLPRecoveries those that repaired a loss.
	TLPProbes, TLPRecoveries uint64
	// SACKBlocksRecv counts the peer's SACK blocks, DSACKsRecv the
	// D-SACKs among them (tcpi_dsack_dups); OutOfOrderDrops the
	// out-of-order segments dropped for want of room to keep them.
	SACKBlocksRecv, DSACKsRecv, OutOfOrderDrops uint64
	// HystartDelayDetect counts HyStart++'s exits from slow start on a
	// rising RTT (RFC 9406), HystartCSSResumes its returns to slow start
	// when the RTT fell back.
	HystartDelayDetect, HystartCSSResumes uint64
	// HystartTrainDetect counts exits from slow start on an ACK train
	// (Linux's HyStart rule beside RFC 9406's).
	HystartTrainDetect uint64
}

// tcpInfo translates the core's snapshot. Only SentRecordMerges stays
// behind: it counts a bound of the core's own bookkeeping.
func tcpInfo(i tcp.Info) TCPInfo {
	s := i.ConnStats
	return TCPInfo{
		State: tcpState(i.State), SndMSS: i.SndMSS,
		RTT: i.RTT, RTTVar: i.RTTVar, MinRTT: i.MinRTT, RTO: i.RTO,
		Cwnd: i.Cwnd, Ssthresh: i.Ssthresh, InFlight: i.InFlight, Pipe: i.Pipe,
		SndWnd: i.SndWnd, RcvWnd: i.RcvWnd,
		Delivered: i.Delivered, DeliveryRate: i.DeliveryRate, DeliveryRateAppLimited: i.DeliveryRateAppLimited, PacingRate: i.PacingRate,
		Reordering: i.Reordering, ReorderSeen: s.ReorderSeen,
		Timer: i.Timer, TimerIn: i.TimerIn,
		LastDataSent: i.LastDataSent, LastDataRecv: i.LastDataRecv, LastAckRecv: i.LastAckRecv,
		SegsIn: s.SegsIn, SegsOut: s.SegsOut, DataSegsIn: s.DataSegsIn, DataSegsOut: s.DataSegsOut,
		BytesAcked: s.BytesAcked, BytesReceived: s.BytesReceived, BytesSent: s.BytesSent, BytesRetrans: s.BytesRetrans,
		Retransmits: s.Retransmits, FastRetransmits: s.FastRetransmits, TLPRetransmits: s.TLPRetransmits, RTORetransmits: s.RTORetransmits,
		Timeouts: s.Timeouts, Lost: s.RACKLost, SpuriousRetransmits: s.SpuriousRetransmits,
		SACKRecoveries: s.SACKRecoveries, UndoneReductions: s.UndoneReductions,
		TLPProbes: s.TLPProbes, TLPRecoveries: s.TLPRecoveries,
		SACKBlocksRecv: s.SACKBlocksRecv, DSACKsRecv: s.DSACKsRecv, OutOfOrderDrops: s.OutOfOrderDrops,
		HystartDelayDetect: s.HystartDelayDetect, HystartCSSResumes: s.HystartCSSResumes,
		HystartTrainDetect: s.HystartTrainDetect,
	}
}

// TCPState is a TCP connection's state (RFC 9293 3.3.2), named as
// netstat and /proc/net/tcp name it and numbered as Linux's TCP_* states,
// so a value compares with tcpi_state. The zero value is no state.
type TCPState uint8

// The TCP states, in Linux's order.
const (
	TCPEstablished TCPState = iota + 1 // ESTABLISHED
	TCPSynSent                         // SYN_SENT
	TCPSynRecv                         // SYN_RECV
	TCPFinWait1                        // FIN_WAIT1
	TCPFinWait2                        // FIN_WAIT2
	TCPTimeWait                        // TIME_WAIT
	TCPClose                           // CLOSE
	TCPCloseWait                       // CLOSE_WAIT
	TCPLastAck                         // LAST_ACK
	TCPListen                          // LISTEN
	TCPClosing                         // CLOSING
)

var tcpStateNames = [...]string{"", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
	"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"}

// String is the state's name as netstat prints it; UNKNOWN for a value
// that is none.
func (s TCPState) String() string {
	if s > 0 && int(s) < len(tcpStateNames) {
		return tcpStateNames[s]
	}
	return "UNKNOWN"
}

// tcpStates maps the core's states to Linux's.
var tcpStates = [...]TCPState{
	tcp.Closed: TCPClose, tcp.Listen: TCPListen, tcp.SynSent: TCPSynSent, tcp.SynReceived: TCPSynRecv,
	tcp.Established: TCPEstablished, tcp.FinWait1: TCPFinWait1, tcp.FinWait2: TCPFinWait2,
	tcp.CloseWait: TCPCloseWait, tcp.Closing: TCPClosing, tcp.LastAck: TCPLastAck, tcp.TimeWait: TCPTimeWait,
}

// tcpState is s in Linux's terms.
func tcpState(s tcp.State) TCPState {
	if int(s) < len(tcpStates) {
		return tcpStates[s]
	}
	return 0
}
