package sockapi

import (
	"fmt"
	"time"

	"github.com/xdpnet/xdpnet/tcp"
)

// TCPInfo is a TCP connection's state and counters, what Linux's
// TCP_INFO socket option and `ss -ti` show of a kernel socket. Sizes are
// in bytes, where TCP_INFO counts some (cwnd, ssthresh, unacked) in
// segments: divide by SndMSS to compare. In JSON (the admin endpoint's),
// durations are in nanoseconds.
type TCPInfo struct {
	State TCPState `json:"state"`
	// SndMSS is the largest payload a segment carries, options excluded
	// (the sender's MSS, RFC 5681's SMSS; tcpi_snd_mss).
	SndMSS uint32 `json:"snd_mss"`

	// RTT and RTTVar are the smoothed round-trip time and its variation
	// (RFC 6298's SRTT and RTTVAR), zero until the first sample; MinRTT
	// is the lowest sample of the last five minutes; RTO is the
	// retransmission timeout, backoff included.
	RTT    time.Duration `json:"rtt"`
	RTTVar time.Duration `json:"rttvar"`
	MinRTT time.Duration `json:"min_rtt"`
	RTO    time.Duration `json:"rto"`

	// Cwnd and Ssthresh are the congestion window and slow start
	// threshold (RFC 5681); Ssthresh is 1<<32-1 until the first loss.
	Cwnd     uint32 `json:"cwnd"`
	Ssthresh uint32 `json:"ssthresh"`
	// InFlight is the data sent and not yet acknowledged (a SYN or FIN
	// counts one byte); Pipe what is estimated to be still in the
	// network (RFC 6675): with SACK, InFlight less what the peer SACKed
	// and what is lost, plus what was resent; InFlight without.
	InFlight uint32 `json:"in_flight"`
	Pipe     uint32 `json:"pipe"`
	// SndWnd is the peer's window, RcvWnd the room left in the window
	// the connection advertised.
	SndWnd uint32 `json:"snd_wnd"`
	RcvWnd uint32 `json:"rcv_wnd"`

	// Delivered is the data the peer acknowledged, cumulatively or by
	// SACK; DeliveryRate the last delivery rate sample in bytes per
	// second that was not app-limited, or a higher app-limited one
	// (tcpi_delivery_rate), and DeliveryRateAppLimited says it was: the
	// sender had too little to send to fill the path.
	Delivered              uint64 `json:"delivered"`
	DeliveryRate           uint64 `json:"delivery_rate"`
	DeliveryRateAppLimited bool   `json:"delivery_rate_app_limited"`
	// PacingRate is the rate the pacer releases data at, in bytes per
	// second (tcpi_pacing_rate); 0 with pacing off.
	PacingRate uint64 `json:"pacing_rate"`
	// Reordering is the largest reordering seen, in segments (3, the
	// duplicate ACK threshold, until more is seen; tcpi_reordering), and
	// ReorderSeen the reorderings detected (tcpi_reord_seen).
	Reordering  uint32 `json:"reordering"`
	ReorderSeen uint64 `json:"reorder_seen"`

	// Timer is the timer that runs ("retransmit", "loss-probe",
	// "reorder", "persist", "keepalive", "time-wait", "fin-wait-2"; ""
	// for none), and TimerIn how long until it fires (`ss -o`).
	Timer   string        `json:"timer"`
	TimerIn time.Duration `json:"timer_in"`
	// LastDataSent, LastDataRecv and LastAckRecv are how long ago the
	// last data segment went out, the last data segment came, and the
	// last ACK came; from the connection's start if none yet.
	LastDataSent time.Duration `json:"last_data_sent"`
	LastDataRecv time.Duration `json:"last_data_recv"`
	LastAckRecv  time.Duration `json:"last_ack_recv"`

	// SegsIn and SegsOut count every segment, DataSegsIn and DataSegsOut
	// those with data, retransmissions included (tcpi_segs_in …).
	SegsIn      uint64 `json:"segs_in"`
	SegsOut     uint64 `json:"segs_out"`
	DataSegsIn  uint64 `json:"data_segs_in"`
	DataSegsOut uint64 `json:"data_segs_out"`
	// BytesAcked and BytesReceived count the data acknowledged by the
	// peer and received in order; BytesSent every data byte sent, and
	// BytesRetrans those sent again (tcpi_bytes_acked …).
	BytesAcked    uint64 `json:"bytes_acked"`
	BytesReceived uint64 `json:"bytes_received"`
	BytesSent     uint64 `json:"bytes_sent"`
	BytesRetrans  uint64 `json:"bytes_retrans"`
	// Retransmits counts the segments sent again (tcpi_total_retrans),
	// by kind: FastRetransmits by fast retransmit (and NewReno's partial
	// ACKs), TLPRetransmits as tail loss probes, RTORetransmits after a
	// timeout or another go-back. Timeouts counts the retransmission
	// timeouts, Lost the segments found lost (tcpi_lost: by RACK, or three
	// duplicate ACKs), and SpuriousRetransmits the retransmissions a
	// D-SACK showed needless.
	Retransmits         uint64 `json:"retransmits"`
	FastRetransmits     uint64 `json:"fast_retransmits"`
	TLPRetransmits      uint64 `json:"tlp_retransmits"`
	RTORetransmits      uint64 `json:"rto_retransmits"`
	Timeouts            uint64 `json:"timeouts"`
	Lost                uint64 `json:"lost"`
	SpuriousRetransmits uint64 `json:"spurious_retransmits"`
	// SACKRecoveries counts the fast recoveries entered by SACK, and
	// UndoneReductions the window reductions undone because timestamps
	// or D-SACKs showed the retransmissions needless.
	SACKRecoveries   uint64 `json:"sack_recoveries"`
	UndoneReductions uint64 `json:"undone_reductions"`
	// TLPProbes counts tail loss probes sent (RFC 8985 7.3), and
	// TLPRecoveries those that repaired a loss.
	TLPProbes     uint64 `json:"tlp_probes"`
	TLPRecoveries uint64 `json:"tlp_recoveries"`
	// SACKBlocksRecv counts the peer's SACK blocks, DSACKsRecv the
	// D-SACKs among them (tcpi_dsack_dups); OutOfOrderDrops the
	// out-of-order segments dropped for want of room to keep them.
	SACKBlocksRecv  uint64 `json:"sack_blocks_recv"`
	DSACKsRecv      uint64 `json:"dsacks_recv"`
	OutOfOrderDrops uint64 `json:"out_of_order_drops"`
	// HystartDelayDetect counts HyStart++'s exits from slow start on a
	// rising RTT (RFC 9406), HystartCSSResumes its returns to slow start
	// when the RTT fell back.
	HystartDelayDetect uint64 `json:"hystart_delay_detect"`
	HystartCSSResumes  uint64 `json:"hystart_cssresumes"`
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

// MarshalText gives the state's name, as String.
func (s TCPState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a name String gives.
func (s *TCPState) UnmarshalText(b []byte) error {
	for i, n := range tcpStateNames {
		if i > 0 && n == string(b) {
			*s = TCPState(i)
			return nil
		}
	}
	return fmt.Errorf("sockapi: unknown TCP state %q", b)
}

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
