package httpsvc

import (
	"fmt"
	"io"

	"github.com/xdpnet/xdpnet/sockapi"
)

// StackStatus writes s's part of the status page: its address, and its
// counters as Summary puts them.
func StackStatus(s *sockapi.Stack) func(w io.Writer) {
	return func(w io.Writer) {
		c := s.Counters()
		fmt.Fprintf(w, "stack: %s, %d queue(s)\n", s.Addr(), len(c.Queues))
		for _, line := range Summary(c) {
			fmt.Fprintln(w, line)
		}
	}
}

// Summary puts a stack's counters in a few lines for people: the
// protocols', then one line for each queue. The status page and the exit
// of `xdpnet serve` show them.
func Summary(c sockapi.Counters) []string {
	ip, icmp, udp, t, x, a := c.IP, c.ICMP, c.UDP, c.TCP, c.TCPExt, c.ARP
	lines := []string{
		fmt.Sprintf("IP: %d packet(s) in, %d delivered, %d out; %d echo request(s), %d ping(s) answered; UDP: %d datagram(s) in, %d out, %d to no port",
			ip.InReceives, ip.InDelivers, ip.OutRequests, icmp.InEchos, icmp.OutEchoReps, udp.InDatagrams, udp.OutDatagrams, udp.NoPorts),
		fmt.Sprintf("TCP: %d connection(s) accepted, %d segments in, %d out, %d retransmitted; %d connection(s) dialled, %d reset(s) sent",
			t.PassiveOpens, t.InSegs, t.OutSegs, t.RetransSegs, t.ActiveOpens, t.OutRsts),
		fmt.Sprintf("TCP SYN cookies: %d sent, %d received, %d failed; listen overflows %d, drops %d",
			x.SyncookiesSent, x.SyncookiesRecv, x.SyncookiesFailed, x.ListenOverflows, x.ListenDrops),
		fmt.Sprintf("TCP SACK: %d block(s) received (%d D-SACK), %d discarded, %d lost to a full scoreboard, %d reneging; %d D-SACK(s) sent",
			x.SACKBlocksRecv, x.TCPDSACKRecv, x.TCPSACKDiscard, x.SACKScoreboardOverflows, x.TCPSACKReneging, x.DSACKsSent),
		fmt.Sprintf("TCP buffers: %d growth(s), %d shrink(s), %d refused by the memory limit; %d segment(s) cut by a full receive buffer",
			x.BufferGrowths, x.BufferShrinks, x.BufferGrowthsRefused, x.TCPRcvQDrop),
		fmt.Sprintf("ARP: %d entries; requests in %d, out %d; replies in %d, out %d; new MACs refused: %d locked out, %d unsolicited; %d conflicts",
			a.Entries, a.RequestsIn, a.RequestsOut, a.RepliesIn, a.RepliesOut, a.LockedOut, a.Unsolicited, a.Conflicts),
	}
	for q, st := range c.Queues {
		l, r, p := st.Link, st.Ring, st.Poller
		lines = append(lines, fmt.Sprintf("queue %d: frames in %d, out %d, rx dropped %d (%d for a full ring); %d round(s), %d park(s); handovers %d out, %d in, %d dropped",
			q, l.RxFrames, l.TxFrames, l.RxDropped, r.RxRingFull, p.Rounds, p.Parks, p.HandoversOut, p.HandoversIn, p.HandoverDrops))
	}
	return lines
}
