package tcp

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpnet/xdpnet/internal/wheel"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// checkInvariants reports the first broken invariant of c's state.
func (c *Conn) checkInvariants() error {
	switch {
	case c.state == Closed || c.state == Listen:
		return fmt.Errorf("%v connection in the table", c.state)
	case !c.sndUna.LessEq(c.sndNxt) || !c.sndNxt.LessEq(c.sndMax):
		return fmt.Errorf("SND.UNA %d, SND.NXT %d, SND.MAX %d out of order", c.sndUna, c.sndNxt, c.sndMax)
	case c.snd.Len() < 0 || c.snd.Len() > c.snd.Cap():
		return fmt.Errorf("send buffer holds %d of %d", c.snd.Len(), c.snd.Cap())
	case c.rcv.Len() < 0 || c.rcv.Len()+c.rcv.OutOfOrder() > c.rcv.Cap():
		return fmt.Errorf("receive buffer holds %d + %d out of order, of %d", c.rcv.Len(), c.rcv.OutOfOrder(), c.rcv.Cap())
	case c.rcv.ooo.n < 0 || c.rcv.ooo.n > maxOutOfOrder:
		return fmt.Errorf("%d out-of-order ranges", c.rcv.ooo.n)
	}
	// What is in flight is buffered: the data, and our SYN and FIN.
	inFlight := int(c.sndMax.Sub(c.sndUna))
	if !c.synAcked {
		if c.sndUna != c.iss || inFlight > 1 {
			return fmt.Errorf("before our SYN is acknowledged: SND.UNA %d (ISS %d), %d in flight", c.sndUna, c.iss, inFlight)
		}
	} else if c.state != TimeWait && inFlight > c.snd.Len()+1 {
		return fmt.Errorf("%d in flight, %d buffered", inFlight, c.snd.Len())
	}
	ooo := c.rcv.ooo.spans()
	for i, s := range ooo {
		if s.start >= s.end {
			return fmt.Errorf("out-of-order range %d empty: %v", i, s)
		}
		if i > 0 && ooo[i-1].end >= s.start {
			return fmt.Errorf("out-of-order ranges %v and %v not sorted and apart", ooo[i-1], s)
		}
	}
	if len(ooo) > 0 && ooo[len(ooo)-1].end-ooo[0].start > uint64(c.rcv.Cap()) {
		return fmt.Errorf("out-of-order ranges %v span more than the buffer", ooo)
	}
	// The SACK scoreboard: bounded, sorted and apart, strictly above
	// SND.UNA and within SND.MAX, and empty unless SACK is in use.
	sb := c.scoreboard.spans()
	if c.scoreboard.n < 0 || c.scoreboard.n > maxOutOfOrder || (!c.sack && len(sb) > 0) {
		return fmt.Errorf("%d scoreboard ranges, SACK %v", c.scoreboard.n, c.sack)
	}
	una := c.snd.head.Load()
	top := una + uint64(uint32(c.sndMax.Sub(c.sndUna)))
	for i, s := range sb {
		if s.start <= una || s.end > top || s.start >= s.end || (i > 0 && sb[i-1].end >= s.start) {
			return fmt.Errorf("scoreboard %v, SND.UNA at %d, SND.MAX at %d", sb, una, top)
		}
	}
	// The loss probe (tlp.go): its timer runs only while a probe may go,
	// never past the RTO it stands in for; a probe out lies within what
	// was sent, and an ACK past it decided its episode.
	if c.timerKind == timerLossProbe && (!c.mayProbe() || c.rtoAt < c.tm.When()) {
		return fmt.Errorf("probe timer at %v (RTO at %v) with no probe allowed", c.tm.When(), c.rtoAt)
	}
	// RACK's reorder timer (rack.go) stands in front of the RTO too:
	// only while data is in flight, and never past the RTO it holds.
	if c.timerKind == timerReorder && (c.sndUna == c.sndMax || c.rtoAt < c.tm.When()) {
		return fmt.Errorf("reorder timer at %v (RTO at %v), SND.UNA %d, SND.MAX %d", c.tm.When(), c.rtoAt, c.sndUna, c.sndMax)
	}
	if p := &c.tlp; p.out && (!p.start.LessThan(p.end) || c.sndMax.LessThan(p.end) || p.end.LessThan(c.sndUna)) {
		return fmt.Errorf("probe [%d, %d) out, SND.UNA %d, SND.MAX %d", p.start, p.end, c.sndUna, c.sndMax)
	}
	// Info's state (info.go, rate.go): the retransmissions' kinds add up,
	// the delivery rate records are bounded, sorted and apart, and none
	// lies below SND.UNA once the ACK is taken; the reordering is
	// within its bounds (pipe: checkRecords).
	if st := &c.stats; st.Retransmits != st.FastRetransmits+st.TLPRetransmits+st.RTORetransmits {
		return fmt.Errorf("%d retransmissions: %d fast, %d probes, %d after going back", st.Retransmits, st.FastRetransmits, st.TLPRetransmits, st.RTORetransmits)
	}
	r := &c.rate
	for i, rec := range r.recs[:r.n] {
		if rec.start >= rec.end || rec.start < una || (i > 0 && r.recs[i-1].end > rec.start) {
			return fmt.Errorf("rate record %d [%d, %d) of %d, SND.UNA at %d", i, rec.start, rec.end, r.n, una)
		}
	}
	if c.reordering < initialReordering || c.reordering > maxReordering {
		return fmt.Errorf("reordering %d", c.reordering)
	}
	if err := c.checkRecords(una, top); err != nil {
		return err
	}
	if c.state != SynSent {
		// RCV.ADV never falls behind RCV.NXT (RFC 9293 3.8.6: the window
		// does not shrink), but for a FIN right at its edge.
		slack := int32(0)
		if c.finReceived {
			slack = 1
		}
		if c.rcvNxt.Sub(c.rcvAdv) > slack {
			return fmt.Errorf("RCV.NXT %d right of RCV.ADV %d", c.rcvNxt, c.rcvAdv)
		}
		// RFC 7323 4.3's Last.ACK.sent is an RCV.NXT of the past.
		if c.rcvNxt.LessThan(c.lastAckSent) {
			return fmt.Errorf("Last.ACK.sent %d right of RCV.NXT %d", c.lastAckSent, c.rcvNxt)
		}
	}
	return nil
}

// checkRecords checks the sent-segment records (rack.go) against SND.UNA
// and SND.MAX at stream offsets una and top: none without SACK; within
// their bound, sorted, contiguous and covering [una, top) (a FIN one
// past), SACKed ones neither lost nor resent, those never resent in send
// time order (RACK's walk stops by it); the counts their flags'
// sums, and pipe between zero and what is out.
func (c *Conn) checkRecords(una, top uint64) error {
	r := &c.recs
	if !c.sackRecovery() || c.snd == noBuffer {
		if r.n != 0 && c.snd != noBuffer {
			return fmt.Errorf("%d segment records without SACK", r.n)
		}
		return nil
	}
	if r.n < 0 || r.n > len(r.r) || len(r.r) > roundPow2(c.recordLimit()) {
		return fmt.Errorf("%d segment records in a ring of %d, limit %d", r.n, len(r.r), c.recordLimit())
	}
	for i := range r.n {
		s := r.at(i)
		switch {
		case s.start >= s.end:
			return fmt.Errorf("record %d empty: %+v", i, *s)
		case i == 0 && s.start != una, i > 0 && s.start != r.at(i-1).end:
			return fmt.Errorf("record %d %+v not where the last ended (SND.UNA at %d)", i, *s, una)
		case s.flags&segSACKed != 0 && s.flags != segSACKed:
			return fmt.Errorf("record %d SACKed and flagged %#x", i, s.flags)
		case i > 0 && r.at(i-1).start >= r.resentEnd && s.at < r.at(i-1).at:
			return fmt.Errorf("record %d %+v, never resent, sent before record %d %+v", i, *s, i-1, *r.at(i - 1))
		}
	}
	if r.n > 0 {
		if end := r.at(r.n - 1).end; end != top && !(end == top+1 && c.finQueued) {
			return fmt.Errorf("records end at %d, SND.MAX at %d", end, top)
		}
	} else if una != top && !c.finQueued {
		return fmt.Errorf("no records, %d bytes out", top-una)
	}
	if want := r.recount(); want.sacked != r.sacked || want.lost != r.lost || want.retrans != r.retrans || want.lostNew != r.lostNew || want.nSacked != r.nSacked {
		return fmt.Errorf("record counts %+v, flags say %+v", *r, want)
	}
	if out := uint64(c.sndMax.Sub(c.sndUna)); r.sacked+r.lost > out || uint64(c.pipe()) > out+r.retrans {
		return fmt.Errorf("pipe %d: %d out, %d SACKed, %d lost, %d resent", c.pipe(), out, r.sacked, r.lost, r.retrans)
	}
	return nil
}

// recount is s's counts summed afresh from its records' flags.
func (s *sentRecords) recount() sentRecords {
	var want sentRecords
	for i := range s.n {
		want.account(s.at(i), 1)
	}
	return want
}

// checkSegment checks a segment c sent: every one but a RST carries
// timestamps if c uses them and none otherwise (RFC 7323 3.2), with
// TSecr zero unless it is an ACK; the payload fits the MSS less the
// options (RFC 6691).
func (c *Conn) checkSegment(s wire.TCP) error {
	opts, err := wire.ParseTCPOptions(s.Options())
	switch {
	case err != nil:
		return err
	case s.Flags()&wire.TCPFlagRST != 0:
		return nil
	case opts.HasTimestamps != c.ts:
		return fmt.Errorf("timestamps %v in a segment of a connection that uses them: %v", opts.HasTimestamps, c.ts)
	case opts.HasTimestamps && s.Flags()&wire.TCPFlagACK == 0 && opts.TSEcr != 0:
		return fmt.Errorf("TSecr %d without ACK", opts.TSEcr)
	case len(s.Payload()) > c.mss-c.optLen():
		return fmt.Errorf("%d bytes of payload, MSS %d, %d of options", len(s.Payload()), c.mss, c.optLen())
	case s.Flags()&wire.TCPFlagSYN == 0 && len(s.Payload())+len(s.Options()) > c.mss:
		return fmt.Errorf("%d bytes of payload and %d of options, MSS %d", len(s.Payload()), len(s.Options()), c.mss)
	case opts.NSACK > 0 && (!c.sack || opts.NSACK > c.sackRoom() || s.Flags()&wire.TCPFlagACK == 0):
		return fmt.Errorf("%d SACK blocks, SACK %v, flags %#x", opts.NSACK, c.sack, s.Flags())
	case s.Flags()&wire.TCPFlagSYN != 0 && (c.state == SynSent || c.state == SynReceived) && Seq(s.Seq()) == c.iss &&
		opts.SACKPermitted != c.sack:
		// Only c's own SYN: a SYN,ACK queued for the 4-tuple is a stateless
		// cookie reply, made by the options of the SYN it answers (one
		// the peer may have sent again with other options), and drained
		// after c came to be (a cookie's connection is born ESTABLISHED).
		return fmt.Errorf("SACK-permitted %v in a SYN of a connection with SACK %v", opts.SACKPermitted, c.sack)
	}
	for _, b := range opts.SACK[:opts.NSACK] {
		if !Seq(b.Left).LessThan(Seq(b.Right)) {
			return fmt.Errorf("empty SACK block %v", b)
		}
	}
	return nil
}

// checkTableInvariants checks every connection and the table's counts.
func (t *Table) checkTableInvariants() error {
	var err error
	n, timers := 0, 0
	t.Conns(func(c *Conn) {
		n++
		for _, tm := range []*wheel.Timer[*Conn]{&c.tm, &c.dackTm, &c.paceTm} {
			if tm.Active() {
				timers++
			}
		}
		if e := c.checkInvariants(); e != nil && err == nil {
			err = fmt.Errorf("%v→%v %v: %w", c.local, c.remote, c.state, e)
		}
	})
	if n != t.Len() {
		return fmt.Errorf("Conns visits %d of %d", n, t.Len())
	}
	if t.Timers() != timers {
		return fmt.Errorf("%d timers run, the %d connections own %d", t.Timers(), t.Len(), timers)
	}
	return err
}

var (
	fzLocal  = netip.MustParseAddr("10.0.0.1")
	fzRemote = netip.MustParseAddr("10.0.0.2")
)

// fzPeer is the scripted far end of one connection.
type fzPeer struct {
	port     uint16 // its port
	lport    uint16 // our port
	seq      Seq    // its next sequence number
	ack      Seq    // the last ack it knows of us (our ISS+1 once seen)
	ts       bool   // it sends timestamps
	sack     bool   // it offers SACK, and sends SACK blocks
	tsval    uint32 // its timestamp clock
	c        *Conn
	wantName string // the state the script leaves it in
}

// fzHarness is a table with connections in every state and their peers.
type fzHarness struct {
	t     *Table
	l     *Listener // on port 80, its SYN queue full: SYNs draw cookies
	now   time.Duration
	peers []*fzPeer
	out   []byte
	err   error // the first bad segment drain saw
}

func (h *fzHarness) input(p *fzPeer, flags uint8, seq, ack Seq, wnd uint16, payload []byte, opts wire.TCPOptions) {
	b := make([]byte, wire.TCPMaxHeaderLen+len(payload))
	f := wire.TCPFields{SrcPort: p.port, DstPort: p.lport, Seq: uint32(seq), Ack: uint32(ack), Flags: flags, Window: wnd, Options: opts}
	hl := f.HeaderLen()
	copy(b[hl:], payload)
	f.Encode(b, len(payload), fzRemote, fzLocal)
	h.t.Input(h.now, fzRemote, fzLocal, b[:hl+len(payload)])
}

// drain collects every segment due, checks it (checkSegment: the first
// error stays in h.err), and records our sequence numbers in the peers.
func (h *fzHarness) drain() {
	for range 10000 {
		o, ok := h.t.Output(h.now, h.out)
		if !ok {
			return
		}
		s := wire.TCP(h.out[:o.Len])
		if c := h.t.conns[tupleOf(netip.AddrPortFrom(fzLocal, s.SrcPort()), netip.AddrPortFrom(o.Dst, s.DstPort()))]; c != nil && h.err == nil {
			if err := c.checkSegment(s); err != nil {
				h.err = fmt.Errorf("segment to %d: %w", s.DstPort(), err)
			}
		}
		for _, p := range h.peers {
			if p.port == s.DstPort() && p.lport == s.SrcPort() && s.Flags()&wire.TCPFlagSYN != 0 {
				p.ack = Seq(s.Seq()).Add(1)
			}
		}
	}
	panic("Output never ran dry")
}

// opts adds p's timestamps to o, if it sends them: its clock, which
// ticks once per segment, and an echo of nothing in particular.
func (p *fzPeer) opts(o wire.TCPOptions) wire.TCPOptions {
	if p.ts {
		p.tsval++
		o.HasTimestamps, o.TSVal, o.TSEcr = true, p.tsval, 1
	}
	return o
}

const fzAck = wire.TCPFlagACK

var fzNoOpts = wire.TCPOptions{WindowScale: -1}

// newFzHarness scripts a connection into each state.
func newFzHarness() (*fzHarness, error) {
	t, err := New(Config{Addrs: []netip.Addr{fzLocal}, Secret: [16]byte{1}, MSL: time.Second,
		SendBuffer: 8 << 10, RecvBuffer: 8 << 10, SynBacklog: 1})
	if err != nil {
		return nil, err
	}
	h := &fzHarness{t: t, out: make([]byte, 1500)}
	if h.l, err = t.Listen(netip.AddrPortFrom(fzLocal, 80), 4); err != nil {
		return nil, err
	}
	// An active open per peer port, the handshake completed unless SYN-SENT.
	active := func(port uint16, established, ts bool) (*fzPeer, error) {
		c, err := t.Dial(h.now, netip.AddrPort{}, netip.AddrPortFrom(fzRemote, port))
		if err != nil {
			return nil, err
		}
		// Half the peers speak SACK; a different half of the
		// connections are paced.
		p := &fzPeer{port: port, lport: c.LocalAddr().Port(), seq: Seq(port) << 16, c: c, ts: ts, tsval: uint32(port) << 20, sack: port%2 == 0}
		c.SetPacing(port%4 < 2)
		h.peers = append(h.peers, p)
		h.drain()
		if established {
			h.input(p, wire.TCPFlagSYN|fzAck, p.seq, p.ack, 8192, nil, p.opts(wire.TCPOptions{MSS: 1000, WindowScale: 0, SACKPermitted: p.sack}))
			p.seq = p.seq.Add(1)
			h.drain()
		}
		return p, nil
	}
	want := func(p *fzPeer, s State) error {
		if p.c.State() != s {
			return fmt.Errorf("peer %d: %v, want %v", p.port, p.c.State(), s)
		}
		p.wantName = s.String()
		return nil
	}
	p, err := active(1001, false, false)
	if err != nil {
		return nil, err
	}
	if err := want(p, SynSent); err != nil {
		return nil, err
	}
	// ESTABLISHED with data in flight both ways and a hole in what we
	// received.
	if p, err = active(1002, true, true); err != nil {
		return nil, err
	}
	p.c.Write(make([]byte, 3000))
	h.drain()
	h.input(p, fzAck, p.seq.Add(500), p.ack, 8192, make([]byte, 300), p.opts(fzNoOpts))
	h.input(p, fzAck, p.seq.Add(1200), p.ack, 8192, make([]byte, 100), p.opts(fzNoOpts))
	h.drain()
	if err := want(p, Established); err != nil {
		return nil, err
	}
	// A passive open, accepted.
	{
		p := &fzPeer{port: 2001, lport: 80, seq: 7 << 20, ts: true, tsval: 1 << 31, sack: true}
		h.peers = append(h.peers, p)
		h.input(p, wire.TCPFlagSYN, p.seq, 0, 8192, nil, p.opts(wire.TCPOptions{MSS: 1200, WindowScale: 2, SACKPermitted: true}))
		p.seq = p.seq.Add(1)
		h.drain()
		h.input(p, fzAck, p.seq, p.ack, 8192, []byte("hello"), p.opts(fzNoOpts))
		p.seq = p.seq.Add(5)
		h.drain()
		l := t.lookupListener(netip.AddrPortFrom(fzLocal, 80))
		if p.c, err = l.Accept(); err != nil {
			return nil, err
		}
		if err := want(p, Established); err != nil {
			return nil, err
		}
	}
	// SYN-RECEIVED: a passive open that fills the SYN queue, and a SYN
	// after it that draws a cookie. Their peers' segments reach the
	// listener's SYN queue and its cookie check.
	for _, port := range []uint16{2002, 2003} {
		p := &fzPeer{port: port, lport: 80, seq: Seq(port) << 20, ts: port == 2003, tsval: uint32(port) << 20, sack: true}
		h.peers = append(h.peers, p)
		h.input(p, wire.TCPFlagSYN, p.seq, 0, 8192, nil, p.opts(wire.TCPOptions{MSS: 1400, WindowScale: 3, SACKPermitted: true}))
		p.seq = p.seq.Add(1)
		h.drain()
		p.wantName = map[uint16]string{2002: "SYN-RECEIVED", 2003: "cookie"}[port]
	}
	if h.l.HalfOpen() != 1 || t.stats.SyncookiesSent != 1 {
		return nil, fmt.Errorf("%d half-open, %d cookies sent: want 1 and 1", h.l.HalfOpen(), t.stats.SyncookiesSent)
	}
	// FIN-WAIT-1: our FIN unacknowledged.
	if p, err = active(1003, true, false); err != nil {
		return nil, err
	}
	p.c.Write([]byte("bye"))
	p.c.CloseWrite()
	h.drain()
	if err := want(p, FinWait1); err != nil {
		return nil, err
	}
	// FIN-WAIT-2: our FIN acknowledged.
	if p, err = active(1004, true, true); err != nil {
		return nil, err
	}
	p.c.CloseWrite()
	h.drain()
	h.input(p, fzAck, p.seq, p.ack.Add(1), 8192, nil, p.opts(fzNoOpts))
	h.drain()
	if err := want(p, FinWait2); err != nil {
		return nil, err
	}
	// TIME-WAIT: then the peer's FIN.
	if p, err = active(1005, true, true); err != nil {
		return nil, err
	}
	p.c.CloseWrite()
	h.drain()
	h.input(p, fzAck|wire.TCPFlagFIN, p.seq, p.ack.Add(1), 8192, nil, p.opts(fzNoOpts))
	p.seq = p.seq.Add(1)
	h.drain()
	if err := want(p, TimeWait); err != nil {
		return nil, err
	}
	// CLOSING: FINs crossing.
	if p, err = active(1006, true, false); err != nil {
		return nil, err
	}
	p.c.CloseWrite()
	h.drain()
	h.input(p, fzAck|wire.TCPFlagFIN, p.seq, p.ack, 8192, nil, p.opts(fzNoOpts))
	p.seq = p.seq.Add(1)
	h.drain()
	if err := want(p, Closing); err != nil {
		return nil, err
	}
	// CLOSE-WAIT: the peer's FIN, with data unread.
	if p, err = active(1007, true, true); err != nil {
		return nil, err
	}
	h.input(p, fzAck|wire.TCPFlagFIN, p.seq, p.ack, 8192, []byte("data"), p.opts(fzNoOpts))
	p.seq = p.seq.Add(5)
	h.drain()
	if err := want(p, CloseWait); err != nil {
		return nil, err
	}
	// LAST-ACK: then our FIN.
	if p, err = active(1008, true, false); err != nil {
		return nil, err
	}
	h.input(p, fzAck|wire.TCPFlagFIN, p.seq, p.ack, 8192, nil, p.opts(fzNoOpts))
	p.seq = p.seq.Add(1)
	h.drain()
	p.c.Write([]byte("last words"))
	p.c.CloseWrite()
	h.drain()
	if err := want(p, LastAck); err != nil {
		return nil, err
	}
	if h.err != nil {
		return nil, h.err
	}
	return h, h.t.checkTableInvariants()
}

// TestFuzzHarnessStates: the scripted handshakes reach every state, with
// timestamps where the peer sends them, and the invariants hold there.
func TestFuzzHarnessStates(t *testing.T) {
	h, err := newFzHarness()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range h.peers {
		names = append(names, p.wantName)
		if p.c != nil && p.c.ts != p.ts && p.c.State() != SynSent {
			t.Errorf("peer %d: timestamps %v, peer sends them: %v", p.port, p.c.ts, p.ts)
		}
	}
	t.Log(names)
}

// FuzzSegment feeds a table with a connection in every state a sequence
// of operations decoded from the input: raw bytes as a segment,
// well-formed segments (valid checksum) with fuzzed flags, sequence and
// acknowledgment numbers near the expected ones, windows and payloads,
// timer ticks, output, and the app's reads, writes and closes. Nothing
// may panic, and the invariants must hold after every step.
func FuzzSegment(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0x10, 0, 0, 0, 0, 0x20, 0, 10, 3})
	f.Add([]byte{1, 2, 0x11, 0, 5, 0, 1, 0x20, 0, 4, 3, 2, 200, 3})
	f.Add([]byte{0, 20, 0, 80, 0x7d, 0x1, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0x20, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 3, 0x04, 0, 0, 0, 0, 0, 0, 0, 2, 250, 2, 250, 3})
	f.Add([]byte{4, 1, 7, 4, 2, 1, 5, 3, 1, 0x18, 0xff, 0x80, 0, 0, 0x10, 0, 200, 2, 100, 3})
	// The cookie's peer (the fifth) completes the handshake with a data
	// segment that carries the cookie back; then time passes.
	f.Add([]byte{1, 4, 0x18, 0, 0, 0, 0, 0x20, 1, 1, 3, 2, 100, 5, 0})
	// The ESTABLISHED peer (the second, which speaks SACK) SACKs data we
	// sent, in one block, then time passes and the timeout resends.
	f.Add([]byte{1, 1, 0x10, 0, 0, 0, 0, 0x20, 0, 2, 10, 16, 40, 16, 3, 1, 2, 50, 5, 0, 3, 1})
	f.Fuzz(runFz)
}

func runFz(t *testing.T, in []byte) {
	{
		h, err := newFzHarness()
		if err != nil {
			t.Fatal(err)
		}
		next := func() byte {
			if len(in) == 0 {
				return 0
			}
			b := in[0]
			in = in[1:]
			return b
		}
		buf := make([]byte, 4096)
		for step := 0; len(in) > 0 && step < 1000; step++ {
			op := next()
			p := h.peers[int(next())%len(h.peers)]
			switch op % 6 {
			case 0: // raw bytes, checksum and all
				n := int(next())
				n = min(n, len(in))
				h.t.Input(h.now, fzRemote, fzLocal, in[:n])
				in = in[n:]
			case 1: // a well-formed segment near the expected numbers
				flags := next()
				dseq := int16(uint16(next())<<8 | uint16(next()))
				dack := int16(uint16(next())<<8 | uint16(next()))
				wnd := uint16(next()) << 8
				n := int(next()) * 8
				var opts wire.TCPOptions
				opts.WindowScale = -1
				if flags&wire.TCPFlagSYN != 0 {
					opts.MSS, opts.WindowScale = 536, int8(next()%16)
				}
				if p.ts {
					// A TSval near the peer's clock (older ones test
					// PAWS), and an echo of one of ours from the last
					// 255 ms (an RTT sample).
					d := int8(next())
					opts.HasTimestamps, opts.TSVal = true, p.tsval+uint32(int32(d))
					if d > 0 {
						p.tsval += uint32(d)
					}
					if p.c != nil {
						opts.TSEcr = p.c.tsOff + uint32(h.now/tsTick) - uint32(next())
					}
				}
				seq, ack := p.seq.Add(uint32(int32(dseq))), p.ack.Add(uint32(int32(dack)))
				if p.c != nil {
					ack = p.c.sndNxt.Add(uint32(int32(dack)))
				}
				if p.sack && p.c != nil {
					// SACK blocks near SND.UNA: some valid, some
					// D-SACKs, some out of range or empty.
					opts.NSACK = int(next()) % (wire.MaxSACKBlocks + 1)
					for i := range opts.NSACK {
						l := p.c.sndUna.Add(uint32(int32(int8(next())) * 64))
						opts.SACK[i] = wire.SACKBlock{Left: uint32(l), Right: uint32(l.Add(uint32(next()) * 16))}
					}
				}
				h.input(p, flags, seq, ack, wnd, make([]byte, n), opts)
				if flags&wire.TCPFlagRST == 0 && dseq == 0 {
					p.seq = p.seq.Add(uint32(n))
				}
			case 2: // time passes
				h.now += time.Duration(next()) * 10 * time.Millisecond
				h.t.runTimers(h.now)
			case 3:
				h.drain()
			case 4: // the app
				if p.c == nil {
					break
				}
				switch next() % 5 {
				case 0:
					p.c.Read(buf[:int(next())*16])
				case 1:
					p.c.Write(buf[:int(next())*16])
				case 2:
					p.c.CloseWrite()
				case 3:
					p.c.Close()
				case 4:
					p.c.Abort()
				}
			case 5: // jump to the next deadline
				if d, ok := h.t.Deadline(); ok {
					h.now = max(h.now, d)
					h.t.runTimers(h.now)
				}
			}
			if err := h.t.checkTableInvariants(); err != nil {
				t.Fatalf("step %d (op %d, peer %d): %v", step, op%6, p.port, err)
			}
			if h.err != nil {
				t.Fatalf("step %d (op %d, peer %d): %v", step, op%6, p.port, h.err)
			}
		}
		// Run out the clock: everything ends, and nothing is left.
		for range 10000 {
			h.drain()
			d, ok := h.t.Deadline()
			if !ok {
				break
			}
			h.now = max(h.now, d)
			h.t.runTimers(h.now)
			if err := h.t.checkTableInvariants(); err != nil {
				t.Fatalf("running out: %v", err)
			}
			if h.err != nil {
				t.Fatalf("running out: %v", h.err)
			}
		}
		for _, p := range h.peers {
			if p.c != nil && p.c.State() != Closed {
				p.c.Abort()
			}
		}
		h.l.Close() // and the connections the app never accepted
		h.drain()
		if h.t.Len() != 0 || h.t.Timers() != 0 {
			t.Fatalf("after every connection ended: %d connections, %d timers", h.t.Len(), h.t.Timers())
		}
	}
}
