package httpsvc

import (
	"fmt"
	"io"

	"github.com/xdpnet/xdpnet/sockapi"
)

// StackStatus writes s's part of the status page: its address, and the
// counters of each queue.
func StackStatus(s *sockapi.Stack) func(w io.Writer) {
	return func(w io.Writer) {
		qs := s.Stats()
		fmt.Fprintf(w, "stack: %s, %d queue(s)\n", s.Addr(), len(qs))
		for q, st := range qs {
			fmt.Fprintf(w, "queue %d: frames in %d, out %d, rx dropped %d; TCP: %d active, %d passive opens, segments in %d, out %d, retransmitted %d; UDP: datagrams in %d, out %d\n",
				q, st.Link.RxFrames, st.Link.TxFrames, st.Link.RxDropped,
				st.TCP.ActiveOpens, st.TCP.PassiveOpens, st.TCP.InSegs, st.TCP.OutSegs, st.TCP.RetransSegs,
				st.UDP.InDatagrams, st.UDP.OutDatagrams)
			a := st.ARP
			fmt.Fprintf(w, "queue %d ARP: %d entries; requests in %d, out %d; replies in %d, out %d; new MACs refused: %d locked out, %d unsolicited; %d conflicts\n",
				q, a.Entries, a.RequestsIn, a.RequestsOut, a.RepliesIn, a.RepliesOut, a.LockedOut, a.Unsolicited, a.Conflicts)
			fmt.Fprintf(w, "queue %d: TCP %s\n", q, st.TCP.ListenSummary())
		}
	}
}
