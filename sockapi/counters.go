package sockapi

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/xdpnet/xdpnet/arp"
	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/tcp"
	"github.com/xdpnet/xdpnet/udp"
	"github.com/xdpnet/xdpnet/xdp"
)

// Counters is a snapshot of a stack's counters (Stack.Counters). The
// protocols' are the stack's, summed over its queues as the kernel's
// are over a network namespace, and each field's nstat tag is its name
// as Linux's /proc/net/snmp and /proc/net/netstat name it, and nstat
// prints it: IpInReceives, TcpActiveOpens, TcpExtTCPSackRecovery. A
// counter Linux has no counterpart for is named Xdpnet…. Queues are
// each queue's own figures, in queue order.
type Counters struct {
	IP     IPCounters
	ICMP   ICMPCounters
	TCP    TCPCounters
	UDP    UDPCounters
	TCPExt TCPExtCounters
	IPExt  IPExtCounters
	ARP    ARPCounters
	Queues []QueueCounters
}

// IPCounters are IPv4's counters (RFC 4293's ipSystemStats). A received
// packet is counted once in InReceives and ends in one of InHdrErrors,
// InAddrErrors, ReasmReqds (a fragment), InDelivers or InUnknownProtos,
// except that a reassembled datagram is delivered without being
// received as such. InDiscards, ForwDatagrams and FragFails have no
// cause in xdpnet (it forwards nothing and never cuts a datagram with
// DF set), so they are not listed.
type IPCounters struct {
	InReceives      uint64 `nstat:"IpInReceives"`      // packets received
	InHdrErrors     uint64 `nstat:"IpInHdrErrors"`     // bad version, IHL, length, checksum, or a source that is no host
	InAddrErrors    uint64 `nstat:"IpInAddrErrors"`    // destination neither ours nor our subnet's broadcast
	InUnknownProtos uint64 `nstat:"IpInUnknownProtos"` // datagrams of protocols other than ICMP, TCP and UDP
	InDelivers      uint64 `nstat:"IpInDelivers"`      // datagrams delivered, reassembled ones included
	OutRequests     uint64 `nstat:"IpOutRequests"`     // datagrams sent
	OutNoRoutes     uint64 `nstat:"IpOutNoRoutes"`     // datagrams with no route
	ReasmTimeout    uint64 `nstat:"IpReasmTimeout"`    // reassemblies timed out
	ReasmReqds      uint64 `nstat:"IpReasmReqds"`      // fragments received
	ReasmOKs        uint64 `nstat:"IpReasmOKs"`        // datagrams reassembled
	ReasmFails      uint64 `nstat:"IpReasmFails"`      // datagrams given up: timed out, overlapping, malformed, oversized, evicted
	FragOKs         uint64 `nstat:"IpFragOKs"`         // datagrams sent in fragments
	FragCreates     uint64 `nstat:"IpFragCreates"`     // fragments sent
}

// IPExtCounters are /proc/net/netstat's IpExt counters that xdpnet has.
type IPExtCounters struct {
	InCsumErrors  uint64 `nstat:"IpExtInCsumErrors"`  // of IpInHdrErrors, bad header checksums
	ReasmOverlaps uint64 `nstat:"IpExtReasmOverlaps"` // of IpReasmFails, overlapping fragments
}

// ICMPCounters are ICMP's counters; InType and OutType count valid
// messages by type, as /proc/net/snmp's IcmpMsg lines do (InType[8] is
// IcmpMsgInType8, echo requests).
type ICMPCounters struct {
	InMsgs             uint64      `nstat:"IcmpInMsgs"`
	InErrors           uint64      `nstat:"IcmpInErrors"` // short, bad checksum, to a broadcast, or an error quoting no datagram of ours
	InCsumErrors       uint64      `nstat:"IcmpInCsumErrors"`
	InDestUnreachs     uint64      `nstat:"IcmpInDestUnreachs"`
	InTimeExcds        uint64      `nstat:"IcmpInTimeExcds"`
	InParmProbs        uint64      `nstat:"IcmpInParmProbs"`
	InSrcQuenchs       uint64      `nstat:"IcmpInSrcQuenchs"`
	InRedirects        uint64      `nstat:"IcmpInRedirects"`
	InEchos            uint64      `nstat:"IcmpInEchos"`
	InEchoReps         uint64      `nstat:"IcmpInEchoReps"`
	OutMsgs            uint64      `nstat:"IcmpOutMsgs"`
	OutErrors          uint64      `nstat:"IcmpOutErrors"`          // not sent: no room to write them
	OutRateLimitGlobal uint64      `nstat:"IcmpOutRateLimitGlobal"` // errors held back by the rate limit
	OutDestUnreachs    uint64      `nstat:"IcmpOutDestUnreachs"`
	OutTimeExcds       uint64      `nstat:"IcmpOutTimeExcds"`
	OutEchoReps        uint64      `nstat:"IcmpOutEchoReps"`
	InType             [256]uint64 `nstat:"IcmpMsgInType"`
	OutType            [256]uint64 `nstat:"IcmpMsgOutType"`
}

// TCPCounters are TCP's counters of /proc/net/snmp (RFC 4022).
type TCPCounters struct {
	ActiveOpens  uint64 `nstat:"TcpActiveOpens"`  // connections dialled
	PassiveOpens uint64 `nstat:"TcpPassiveOpens"` // connections started by a listener
	AttemptFails uint64 `nstat:"TcpAttemptFails"` // SYN-SENT or SYN-RECEIVED connections that failed
	EstabResets  uint64 `nstat:"TcpEstabResets"`  // ESTABLISHED or CLOSE-WAIT connections reset
	InSegs       uint64 `nstat:"TcpInSegs"`
	OutSegs      uint64 `nstat:"TcpOutSegs"`
	RetransSegs  uint64 `nstat:"TcpRetransSegs"`
	InErrs       uint64 `nstat:"TcpInErrs"` // segments dropped as malformed, bad checksums included
	OutRsts      uint64 `nstat:"TcpOutRsts"`
	InCsumErrors uint64 `nstat:"TcpInCsumErrors"`
}

// UDPCounters are UDP's counters of /proc/net/snmp.
type UDPCounters struct {
	InDatagrams  uint64 `nstat:"UdpInDatagrams"` // datagrams queued to a socket (Linux counts them when read)
	NoPorts      uint64 `nstat:"UdpNoPorts"`     // datagrams to a port no socket takes
	InErrors     uint64 `nstat:"UdpInErrors"`    // dropped for any other reason: malformed, checksum, queue full
	OutDatagrams uint64 `nstat:"UdpOutDatagrams"`
	RcvbufErrors uint64 `nstat:"UdpRcvbufErrors"` // dropped: the receive queue was full
	SndbufErrors uint64 `nstat:"UdpSndbufErrors"` // writes refused: the send queue was full
	InCsumErrors uint64 `nstat:"UdpInCsumErrors"`
}

// TCPExtCounters are TCP's counters of /proc/net/netstat, named as
// there, and TCP's own that Linux has no counterpart for (Xdpnet…).
type TCPExtCounters struct {
	SyncookiesSent       uint64 `nstat:"TcpExtSyncookiesSent"`
	SyncookiesRecv       uint64 `nstat:"TcpExtSyncookiesRecv"`
	SyncookiesFailed     uint64 `nstat:"TcpExtSyncookiesFailed"`
	PAWSEstab            uint64 `nstat:"TcpExtPAWSEstab"`            // segments dropped as old duplicates by PAWS (RFC 7323 5)
	ListenOverflows      uint64 `nstat:"TcpExtListenOverflows"`      // SYNs or ACKs dropped: accept queue full
	ListenDrops          uint64 `nstat:"TcpExtListenDrops"`          // SYNs, ACKs or half-open connections dropped, overflows included
	TCPRenoRecovery      uint64 `nstat:"TcpExtTCPRenoRecovery"`      // fast recoveries by three duplicate ACKs, without SACK
	TCPSackRecovery      uint64 `nstat:"TcpExtTCPSackRecovery"`      // fast recoveries by SACK and RACK
	TCPSACKReneging      uint64 `nstat:"TcpExtTCPSACKReneging"`      // ACKs that showed the peer dropped data it had SACKed
	TCPSACKReorder       uint64 `nstat:"TcpExtTCPSACKReorder"`       // connections that saw reordering, once each
	TCPLostRetransmit    uint64 `nstat:"TcpExtTCPLostRetransmit"`    // retransmissions found lost again
	TCPTimeouts          uint64 `nstat:"TcpExtTCPTimeouts"`          // retransmission timeouts
	TCPLossProbes        uint64 `nstat:"TcpExtTCPLossProbes"`        // tail loss probes sent (RFC 8985 7)
	TCPLossProbeRecovery uint64 `nstat:"TcpExtTCPLossProbeRecovery"` // probes that repaired a loss
	TCPDSACKRecv         uint64 `nstat:"TcpExtTCPDSACKRecv"`
	TCPSACKDiscard       uint64 `nstat:"TcpExtTCPSACKDiscard"`  // SACK blocks outside what was sent, ignored
	TCPChallengeACK      uint64 `nstat:"TcpExtTCPChallengeACK"` // challenge ACKs sent (RFC 5961)
	TCPSYNChallenge      uint64 `nstat:"TcpExtTCPSYNChallenge"` // SYNs in a synchronized state answered by a challenge
	TCPOFODrop           uint64 `nstat:"TcpExtTCPOFODrop"`      // out-of-order segments dropped: too many ranges to keep
	// ACKs not sent because of their rate limits: in SYN-RECEIVED, for
	// PAWS rejects, for out-of-window segments, a connection's challenge
	// ACKs, in TIME-WAIT.
	TCPACKSkippedSynRecv   uint64 `nstat:"TcpExtTCPACKSkippedSynRecv"`
	TCPACKSkippedPAWS      uint64 `nstat:"TcpExtTCPACKSkippedPAWS"`
	TCPACKSkippedSeq       uint64 `nstat:"TcpExtTCPACKSkippedSeq"`
	TCPACKSkippedChallenge uint64 `nstat:"TcpExtTCPACKSkippedChallenge"`
	TCPACKSkippedTimeWait  uint64 `nstat:"TcpExtTCPACKSkippedTimeWait"`
	TCPRcvQDrop            uint64 `nstat:"TcpExtTCPRcvQDrop"`           // segments cut: the receive buffer was full though the window let them in
	TCPHystartDelayDetect  uint64 `nstat:"TcpExtTCPHystartDelayDetect"` // slow starts ended by HyStart++ on a rising RTT (RFC 9406)

	RSTDrops                uint64 `nstat:"XdpnetTcpRSTDrops"`                // resets not sent: too many replies pending
	TimeWaitRecycled        uint64 `nstat:"XdpnetTcpTimeWaitRecycled"`        // TIME-WAIT connections a new SYN took over (RFC 6191)
	FlagDrops               uint64 `nstat:"XdpnetTcpFlagDrops"`               // segments dropped for their flags (Linux's drop reason TCP_FLAGS)
	ICMPErrors              uint64 `nstat:"XdpnetTcpICMPErrors"`              // ICMP errors (and failed next hops) taken for a segment in flight
	SACKBlocksRecv          uint64 `nstat:"XdpnetTcpSACKBlocksRecv"`          // SACK blocks received, D-SACKs included
	DSACKsSent              uint64 `nstat:"XdpnetTcpDSACKsSent"`              // D-SACK blocks sent (Linux's TCPDSACKOldSent and TCPDSACKOfoSent together)
	SACKScoreboardOverflows uint64 `nstat:"XdpnetTcpSACKScoreboardOverflows"` // SACK blocks lost: the scoreboard was full
	Undo                    uint64 `nstat:"XdpnetTcpUndo"`                    // reductions undone (Linux's TCPFullUndo and TCPDSACKUndo together)
	HystartCSSResumes       uint64 `nstat:"XdpnetTcpHystartCSSResumes"`       // HyStart++'s returns from CSS to slow start
	BufferGrowths           uint64 `nstat:"XdpnetTcpBufferGrowths"`           // send or receive rings grown by auto-tuning
	BufferShrinks           uint64 `nstat:"XdpnetTcpBufferShrinks"`           // rings shrunk after idleness
	// BufferGrowthsRefused counts growths refused at Config.MemoryLimit
	// (Linux counts its entries into that state, TCPMemoryPressures).
	BufferGrowthsRefused uint64 `nstat:"XdpnetTcpBufferGrowthsRefused"`
}

// ARPCounters are the neighbour caches' counters, summed over the
// queues' caches; Entries and QueuedBytes are levels, not counts.
type ARPCounters struct {
	RequestsIn         uint64 `nstat:"XdpnetArpRequestsIn"`         // valid requests received, RFC 5227 probes included
	RepliesIn          uint64 `nstat:"XdpnetArpRepliesIn"`          // valid replies received
	Malformed          uint64 `nstat:"XdpnetArpMalformed"`          // dropped: malformed, or neither request nor reply
	BadSender          uint64 `nstat:"XdpnetArpBadSender"`          // ignored: sender MAC not unicast or ours, or sender IP no unicast address
	Conflicts          uint64 `nstat:"XdpnetArpConflicts"`          // ignored: sender IP is ours (RFC 5227 2.4)
	Gratuitous         uint64 `nstat:"XdpnetArpGratuitous"`         // gratuitous ARP received
	LockedOut          uint64 `nstat:"XdpnetArpLockedOut"`          // ignored: a new MAC too soon after the last update
	Unsolicited        uint64 `nstat:"XdpnetArpUnsolicited"`        // ignored: a new MAC from ARP that answered no request of ours
	RequestsOut        uint64 `nstat:"XdpnetArpRequestsOut"`        // requests sent to resolve or probe
	RepliesOut         uint64 `nstat:"XdpnetArpRepliesOut"`         // replies sent for our addresses
	Announcements      uint64 `nstat:"XdpnetArpAnnouncements"`      // gratuitous ARP sent (RFC 5227 2.3)
	RepliesDropped     uint64 `nstat:"XdpnetArpRepliesDropped"`     // replies not sent: too many waiting
	Failures           uint64 `nstat:"XdpnetArpFailures"`           // resolutions and probes that failed
	FailureNoticeDrops uint64 `nstat:"XdpnetArpFailureNoticeDrops"` // failures not reported to TCP: too many at once
	Evictions          uint64 `nstat:"XdpnetArpEvictions"`          // entries evicted for another
	TableFull          uint64 `nstat:"XdpnetArpTableFull"`          // entries not created: the table was full
	Queued             uint64 `nstat:"XdpnetArpQueued"`             // packets queued to wait for resolution
	Released           uint64 `nstat:"XdpnetArpReleased"`           // queued packets sent once resolved
	QueueDrops         uint64 `nstat:"XdpnetArpQueueDrops"`         // packets dropped for a queue bound or an evicted entry
	Unreachable        uint64 `nstat:"XdpnetArpUnreachable"`        // packets dropped: their neighbour failed, or is none
	Entries            uint64 `nstat:"XdpnetArpEntries"`            // entries in the tables
	QueuedBytes        uint64 `nstat:"XdpnetArpQueuedBytes"`        // bytes of packets waiting for resolution
}

// QueueCounters are one queue's own figures: its link's, its AF_XDP
// socket's rings' and its poller's.
type QueueCounters struct {
	Link   LinkCounters
	Ring   RingCounters
	Poller PollerCounters
}

// LinkCounters count the frames a queue's link moved.
type LinkCounters struct {
	RxFrames uint64 `nstat:"XdpnetLinkRxFrames"`
	RxBytes  uint64 `nstat:"XdpnetLinkRxBytes"`
	TxFrames uint64 `nstat:"XdpnetLinkTxFrames"`
	TxBytes  uint64 `nstat:"XdpnetLinkTxBytes"`
	// RxDropped counts frames the link dropped before the poller saw
	// them (on AF_XDP, RingCounters' RxDropped and RxRingFull), TxErrors
	// frames it took and could not send.
	RxDropped uint64 `nstat:"XdpnetLinkRxDropped"`
	TxErrors  uint64 `nstat:"XdpnetLinkTxErrors"`
	// TxBusy counts the times the link could not send all it was given
	// at once and kept the rest; TxDrops the times it dropped a frame it
	// had taken, for want of carrier or queue room.
	TxBusy  uint64 `nstat:"XdpnetLinkTxBusy"`
	TxDrops uint64 `nstat:"XdpnetLinkTxDrops"`
}

// RingCounters are the kernel's XDP_STATISTICS of a queue's AF_XDP
// socket; zero for a link of another kind.
type RingCounters struct {
	RxDropped      uint64 `nstat:"XdpnetRingRxDropped"`      // frames dropped for reasons other than invalid descriptors (too large)
	RxInvalidDescs uint64 `nstat:"XdpnetRingRxInvalidDescs"` // invalid descriptors on the fill ring
	TxInvalidDescs uint64 `nstat:"XdpnetRingTxInvalidDescs"` // invalid descriptors on the TX ring
	RxRingFull     uint64 `nstat:"XdpnetRingRxRingFull"`     // frames dropped: the RX ring was full
	RxFillEmpty    uint64 `nstat:"XdpnetRingRxFillEmpty"`    // times the kernel found the fill ring empty
	TxRingEmpty    uint64 `nstat:"XdpnetRingTxRingEmpty"`    // times the kernel found the TX ring empty
}

// PollerCounters count what a queue's poller did and saw below and
// between the protocols.
type PollerCounters struct {
	Rounds uint64 `nstat:"XdpnetPollerRounds"` // rounds of input, timers, app news and output
	Parks  uint64 `nstat:"XdpnetPollerParks"`  // sleeps until a frame, a timer or an app's wake
	// HandoversOut and HandoversIn count TCP segments passed to and taken
	// from the queue that owns their flow; HandoverDrops those not passed
	// because its ring was full.
	HandoversOut   uint64 `nstat:"XdpnetPollerHandoversOut"`
	HandoversIn    uint64 `nstat:"XdpnetPollerHandoversIn"`
	HandoverDrops  uint64 `nstat:"XdpnetPollerHandoverDrops"`
	RxFrames       uint64 `nstat:"XdpnetPollerRxFrames"`       // frames received
	RxBadFrames    uint64 `nstat:"XdpnetPollerRxBadFrames"`    // too short for Ethernet, or malformed ARP
	RxOtherHost    uint64 `nstat:"XdpnetPollerRxOtherHost"`    // unicast to another MAC
	RxOtherType    uint64 `nstat:"XdpnetPollerRxOtherType"`    // neither IPv4 nor ARP
	RxBroadcastTCP uint64 `nstat:"XdpnetPollerRxBroadcastTCP"` // TCP segments to a broadcast address, dropped
	TxFrames       uint64 `nstat:"XdpnetPollerTxFrames"`       // frames handed to the link
	TxNoBuffer     uint64 `nstat:"XdpnetPollerTxNoBuffer"`     // replies dropped: no transmit buffer free
	TxNoRoute      uint64 `nstat:"XdpnetPollerTxNoRoute"`      // packets dropped: no route
	TxUnresolved   uint64 `nstat:"XdpnetPollerTxUnresolved"`   // packets dropped: the next hop did not resolve
	TxErrors       uint64 `nstat:"XdpnetPollerTxErrors"`       // transmit errors from the link
	TxLinkDown     uint64 `nstat:"XdpnetPollerTxLinkDown"`     // frames handed to the link while it was down
	ARPShareDrops  uint64 `nstat:"XdpnetPollerARPShareDrops"`  // ARP replies not passed to another queue: its ring was full
	// LoopbackPackets counts packets to the stack itself (its address,
	// 127/8) delivered on its loopback path, without the link;
	// LoopbackDrops those dropped because the loopback queue was full.
	LoopbackPackets uint64 `nstat:"XdpnetPollerLoopbackPackets"`
	LoopbackDrops   uint64 `nstat:"XdpnetPollerLoopbackDrops"`
}

// Counter is one counter, by its name as nstat prints it.
type Counter struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// List returns every counter by name: those Linux has in nstat's order
// (Ip, Icmp, IcmpMsg, Tcp, Udp, TcpExt, IpExt), then xdpnet's own, the
// queues' figures summed over the queues. IcmpMsg's lists only the
// types seen, as the kernel does.
func (c Counters) List() []Counter {
	l := list(nil, reflect.ValueOf(c))
	var queues []Counter
	for _, q := range c.Queues {
		ql := q.List()
		if queues == nil {
			queues = ql
			continue
		}
		for i := range ql {
			queues[i].Value += ql[i].Value
		}
	}
	l = append(l, queues...)
	out := make([]Counter, 0, len(l))
	for _, own := range []bool{false, true} {
		for _, c := range l {
			if strings.HasPrefix(c.Name, "Xdpnet") == own {
				out = append(out, c)
			}
		}
	}
	return out
}

// List returns the queue's figures by name.
func (q QueueCounters) List() []Counter { return list(nil, reflect.ValueOf(q)) }

// list appends the counters of struct v to l, each named by its field's
// nstat tag: a struct's in order, and the elements of an array by type
// (IcmpMsg's) that are not zero, named by the tag and the index.
func list(l []Counter, v reflect.Value) []Counter {
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Tag.Get("nstat")
		switch f.Kind() {
		case reflect.Struct:
			l = list(l, f)
		case reflect.Array:
			for j, n := range f.Interface().([256]uint64) {
				if n != 0 {
					l = append(l, Counter{name + strconv.Itoa(j), n})
				}
			}
		case reflect.Uint64:
			l = append(l, Counter{name, f.Uint()})
		}
	}
	return l
}

// queueStats are a queue's counters as its poller and cores keep them,
// copied on the poller's goroutine.
type queueStats struct {
	link   nic.Stats
	ring   xdp.Statistics
	poller fastpath.Stats
	arp    arp.Stats
	ip     ip.Stats
	udp    udp.Stats
	tcp    tcp.Stats
}

// read copies p's counters; it runs on p's goroutine, or after p
// stopped.
func read(p *fastpath.Poller) queueStats {
	q := queueStats{link: p.Link().Stats(), poller: p.Stats(), arp: p.ARP().Stats(), ip: p.IP().Stats(),
		udp: p.UDP().Stats(), tcp: p.TCP().Stats()}
	if l, ok := p.Link().(*nic.XDPLink); ok {
		q.ring = l.RingStats()
	}
	return q
}

// add counts q's protocol counters into c and appends its queue's
// figures: the one place that names each core counter.
func (c *Counters) add(q queueStats) {
	i := &c.IP
	s := q.ip.IP
	i.InReceives += s.InReceives
	i.InHdrErrors += s.InHdrErrors
	i.InAddrErrors += s.InAddrErrors
	i.InUnknownProtos += s.InUnknownProtos
	i.InDelivers += s.InDelivers
	i.OutRequests += s.OutRequests
	i.OutNoRoutes += s.OutNoRoutes
	i.ReasmTimeout += s.ReasmTimeout
	i.ReasmReqds += s.ReasmReqds
	i.ReasmOKs += s.ReasmOKs
	i.ReasmFails += s.ReasmFails
	i.FragOKs += s.FragOKs
	i.FragCreates += s.FragCreates
	c.IPExt.InCsumErrors += s.InCsumErrors
	c.IPExt.ReasmOverlaps += s.ReasmOverlaps

	m := &c.ICMP
	cs := q.ip.ICMP
	m.InMsgs += cs.InMsgs
	m.InErrors += cs.InErrors
	m.InCsumErrors += cs.InCsumErrors
	m.InDestUnreachs += cs.InDestUnreachs
	m.InTimeExcds += cs.InTimeExcds
	m.InParmProbs += cs.InParmProbs
	m.InSrcQuenchs += cs.InSrcQuenchs
	m.InRedirects += cs.InRedirects
	m.InEchos += cs.InEchos
	m.InEchoReps += cs.InEchoReps
	m.OutMsgs += cs.OutMsgs
	m.OutErrors += cs.OutErrors
	m.OutRateLimitGlobal += cs.OutRateLimited
	m.OutDestUnreachs += cs.OutDestUnreachs
	m.OutTimeExcds += cs.OutTimeExcds
	m.OutEchoReps += cs.OutEchoReps
	for t := range m.InType {
		m.InType[t] += cs.InType[t]
		m.OutType[t] += cs.OutType[t]
	}

	u := &c.UDP
	us := q.udp
	u.InDatagrams += us.InDatagrams
	u.NoPorts += us.NoPorts
	u.InErrors += us.InErrors
	u.OutDatagrams += us.OutDatagrams
	u.RcvbufErrors += us.RcvbufErrors
	u.SndbufErrors += us.SndbufErrors
	u.InCsumErrors += us.InCsumErrors

	t, x := &c.TCP, &c.TCPExt
	ts := q.tcp
	t.ActiveOpens += ts.ActiveOpens
	t.PassiveOpens += ts.PassiveOpens
	t.AttemptFails += ts.AttemptFails
	t.EstabResets += ts.EstabResets
	t.InSegs += ts.InSegs
	t.OutSegs += ts.OutSegs
	t.RetransSegs += ts.RetransSegs
	t.InErrs += ts.InErrs
	t.OutRsts += ts.OutRsts
	t.InCsumErrors += ts.InCsumErrors
	x.SyncookiesSent += ts.SyncookiesSent
	x.SyncookiesRecv += ts.SyncookiesRecv
	x.SyncookiesFailed += ts.SyncookiesFailed
	x.PAWSEstab += ts.PAWSDrops
	x.ListenOverflows += ts.ListenOverflows
	x.ListenDrops += ts.ListenDrops
	x.TCPRenoRecovery += ts.RenoRecovery
	x.TCPSackRecovery += ts.SackRecovery
	x.TCPSACKReneging += ts.SACKReneging
	x.TCPSACKReorder += ts.SACKReorder
	x.TCPLostRetransmit += ts.LostRetransmit
	x.TCPTimeouts += ts.Timeouts
	x.TCPLossProbes += ts.TCPLossProbes
	x.TCPLossProbeRecovery += ts.TCPLossProbeRecovery
	x.TCPDSACKRecv += ts.DSACKsRecv
	x.TCPSACKDiscard += ts.SACKDiscards
	x.TCPChallengeACK += ts.ChallengeACKs
	x.TCPSYNChallenge += ts.SYNChallenges
	x.TCPOFODrop += ts.OfoDrops
	x.TCPACKSkippedSynRecv += ts.ACKSkippedSynRecv
	x.TCPACKSkippedPAWS += ts.ACKSkippedPAWS
	x.TCPACKSkippedSeq += ts.ACKSkippedSeq
	x.TCPACKSkippedChallenge += ts.ACKSkippedChallenge
	x.TCPACKSkippedTimeWait += ts.ACKSkippedTimeWait
	x.TCPRcvQDrop += ts.RcvQDrops
	x.TCPHystartDelayDetect += ts.HystartDelayDetect
	x.RSTDrops += ts.RSTDrops
	x.TimeWaitRecycled += ts.TimeWaitRecycled
	x.FlagDrops += ts.FlagDrops
	x.ICMPErrors += ts.ICMPErrors
	x.SACKBlocksRecv += ts.SACKBlocksRecv
	x.DSACKsSent += ts.DSACKsSent
	x.SACKScoreboardOverflows += ts.SACKScoreboardOverflows
	x.Undo += ts.Undo
	x.HystartCSSResumes += ts.HystartCSSResumes
	x.BufferGrowths += ts.BufferGrowths
	x.BufferShrinks += ts.BufferShrinks
	x.BufferGrowthsRefused += ts.MemoryPressures

	a := &c.ARP
	as := q.arp
	a.RequestsIn += as.RequestsIn
	a.RepliesIn += as.RepliesIn
	a.Malformed += as.Malformed
	a.BadSender += as.BadSender
	a.Conflicts += as.Conflicts
	a.Gratuitous += as.Gratuitous
	a.LockedOut += as.LockedOut
	a.Unsolicited += as.Unsolicited
	a.RequestsOut += as.RequestsOut
	a.RepliesOut += as.RepliesOut
	a.Announcements += as.Announcements
	a.RepliesDropped += as.RepliesDropped
	a.Failures += as.Failures
	a.FailureNoticeDrops += as.FailureNoticeDrops
	a.Evictions += as.Evictions
	a.TableFull += as.TableFull
	a.Queued += as.Queued
	a.Released += as.Released
	a.QueueDrops += as.QueueDrops
	a.Unreachable += as.Unreachable
	a.Entries += uint64(as.Entries)
	a.QueuedBytes += uint64(as.QueuedBytes)

	l, r, p := q.link, q.ring, q.poller
	c.Queues = append(c.Queues, QueueCounters{
		Link: LinkCounters{
			RxFrames: l.RxFrames, RxBytes: l.RxBytes, TxFrames: l.TxFrames, TxBytes: l.TxBytes,
			RxDropped: l.RxDropped, TxErrors: l.TxErrors, TxBusy: l.TxBusy, TxDrops: l.TxDrops,
		},
		Ring: RingCounters{
			RxDropped: r.RxDropped, RxInvalidDescs: r.RxInvalidDescs, TxInvalidDescs: r.TxInvalidDescs,
			RxRingFull: r.RxRingFull, RxFillEmpty: r.FillRingEmptyDescs, TxRingEmpty: r.TxRingEmptyDescs,
		},
		Poller: PollerCounters{
			Rounds: p.Rounds, Parks: p.Parks,
			HandoversOut: p.HandoversOut, HandoversIn: p.HandoversIn, HandoverDrops: p.HandoverDrops,
			RxFrames: p.RxFrames, RxBadFrames: p.RxBadFrames, RxOtherHost: p.RxOtherHost, RxOtherType: p.RxOtherType,
			RxBroadcastTCP: p.RxBroadcastTCP,
			TxFrames:       p.TxFrames, TxNoBuffer: p.TxNoBuffer, TxNoRoute: p.TxNoRoute, TxUnresolved: p.TxUnresolved,
			TxErrors: p.TxErrors, TxLinkDown: p.TxLinkDown, ARPShareDrops: p.ARPShareDrops,
			LoopbackPackets: p.LoopbackPackets, LoopbackDrops: p.LoopbackDrops,
		},
	})
}

// Counters returns a snapshot of the stack's counters. Each poller's
// are copied on its goroutine between its rounds (through its Do queue),
// so reading holds a poller no longer than the copy; the translation
// runs on the caller's goroutine. After Close they are the final ones.
func (s *Stack) Counters() Counters {
	c := Counters{Queues: make([]QueueCounters, 0, len(s.pollers))}
	for _, p := range s.pollers {
		var q queueStats
		s.snapshot(p, func() { q = read(p) })
		c.add(q)
	}
	return c
}

// snapshot runs take, a copy, on p's goroutine between its rounds (through its Do
// queue) and waits for it, so a reader holds the poller no longer than
// the copy; after Close, on the caller's, the poller's state being ours
// then.
func (s *Stack) snapshot(p *fastpath.Poller, take func()) {
	done := make(chan struct{})
	p.Do(func() { take(); close(done) })
	select {
	case <-done:
	case <-s.stopped:
		// The stack is closed: the poller ran the copy before it
		// stopped (done is closed) or never will.
		if !isClosed(done) {
			take()
		}
	}
}
