package tcp

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/xdpnet/xdpnet/internal/siphash"
	"github.com/xdpnet/xdpnet/internal/wheel"
	"github.com/xdpnet/xdpnet/internal/wire"
)

// tuple is a connection's 4-tuple, the key of the demux table: 12 bytes
// hash faster than two netip.AddrPorts.
type tuple struct {
	local, remote [4]byte
	lport, rport  uint16
}

func tupleOf(local, remote netip.AddrPort) tuple {
	return tuple{local.Addr().As4(), remote.Addr().As4(), local.Port(), remote.Port()}
}

// Table holds the TCP connections and listeners of one poller. Its owner
// drives it (see the package doc); it is not safe for concurrent use.
type Table struct {
	cfg   Config
	isns  *ISNs
	k0    uint64 // ephemeral port hash key
	k1    uint64
	now   time.Duration // the time of the call in progress
	conns map[tuple]*Conn
	// listeners by local address and port; the unspecified address
	// stands for every local address.
	listeners map[netip.AddrPort]*Listener
	// nextEphemeral is where the next ephemeral port search starts
	// (the counter of RFC 6056 algorithm 3, ephemeral below).
	nextEphemeral uint32

	txq            []*Conn // connections that may have segments to send
	txHead         int
	ready          []*Conn                   // connections with news for the app
	readyListeners []*Listener               // listeners with connections to accept
	replies        *[maxPendingReplies]reply // for segments with no connection: a ring
	replyHead      int
	nreplies       int
	cookieKeys     [2]cookieKey // by the counter's parity (cookie.go)
	wheel          *wheel.Wheel[*Conn]
	fire           func(*wheel.Timer[*Conn]) // t.fire, made once: a method value allocates
	stats          Stats
	mssSelf        int // the MSS we announce: MTU − 40
	rcvCap         int // the receive buffer's size
	pool           bufferPool
	mem            *Memory // the account of every buffer (autotune.go)
	visits         uint64  // see Visits
	// dialing holds the connections Dial opened, until NeighbourFailed
	// or a later Dial prunes those no longer opening (unreach.go);
	// dialingPruned is its length after the last pruning.
	dialing       []*Conn
	dialingPruned int
	// The challenge ACKs left this second (ratelimit.go).
	challengeLeft    int
	challengeEpoch   int64 // t.now in whole seconds when the count was drawn
	challengeStarted bool
}

// reply is a segment that goes out ahead of the connections' segments: a
// reset for a segment no connection took, a SYN,ACK that carries a SYN
// cookie (cookie.go), or the FIN of a connection aborted before it went
// out.
type reply struct {
	local, remote netip.AddrPort
	seq, ack      Seq
	flags         uint8
	wnd           uint16
	opts          wire.TCPOptions
}

// maxPendingReplies bounds the replies waiting for output: a flood of
// segments to closed ports, or of SYNs, costs bounded memory (and they
// are sent at the poller's pace).
const maxPendingReplies = 256

// Stats are the counters of /proc/net/snmp's Tcp line, and a few of
// /proc/net/netstat's TcpExt.
type Stats struct {
	ActiveOpens, PassiveOpens uint64 // connections started by Dial, by a listener
	AttemptFails              uint64 // SYN-SENT or SYN-RECEIVED connections that failed
	EstabResets               uint64 // ESTABLISHED or CLOSE-WAIT connections reset
	CurrEstab                 uint64 // connections in ESTABLISHED or CLOSE-WAIT now: a level, not a count
	InSegs, OutSegs           uint64
	RetransSegs               uint64
	InErrs                    uint64 // segments dropped as malformed (checksum included)
	InCsumErrors              uint64
	OutRsts                   uint64
	ListenOverflows           uint64 // SYNs or ACKs dropped: accept queue full (TcpExt)
	ListenDrops               uint64 // SYNs, ACKs or half-open connections dropped: overflows too
	SyncookiesSent            uint64 // SYN,ACKs that carried a SYN cookie (TcpExt)
	SyncookiesRecv            uint64 // ACKs with a valid SYN cookie
	SyncookiesFailed          uint64 // ACKs whose SYN cookie was not valid
	OfoDrops                  uint64 // out-of-order segments dropped: too many ranges
	RSTDrops                  uint64 // resets not sent: too many replies pending
	Timeouts                  uint64 // retransmission timeouts
	TimeWaitRecycled          uint64 // TIME-WAIT connections a new SYN took over (RFC 6191)
	PAWSDrops                 uint64 // segments dropped as old duplicates by PAWS (RFC 7323 5; TcpExt PAWSEstab)
	// RFC 5961 and its ACK throttling (ratelimit.go), as TcpExt names them.
	ChallengeACKs       uint64 // challenge ACKs sent (TCPChallengeACK)
	SYNChallenges       uint64 // SYNs in a synchronized state answered by a challenge (TCPSYNChallenge)
	ACKSkippedSynRecv   uint64 // ACKs (or SYN,ACKs) not sent in SYN-RECEIVED: rate limit (TCPACKSkippedSynRecv)
	ACKSkippedPAWS      uint64 // ACKs for PAWS rejects not sent: rate limit (TCPACKSkippedPAWS)
	ACKSkippedSeq       uint64 // ACKs for out-of-window segments not sent: rate limit (TCPACKSkippedSeq)
	ACKSkippedChallenge uint64 // challenge ACKs not sent: the connection's rate limit (TCPACKSkippedChallenge)
	ACKSkippedTimeWait  uint64 // ACKs in TIME-WAIT not sent: rate limit (TCPACKSkippedTimeWait)
	ICMPErrors          uint64 // ICMP errors (and failed next hops) taken for a connection's segment in flight
	FlagDrops           uint64 // segments dropped for their flags: SYN with FIN or RST to a listener, none of SYN, ACK, RST (Linux's drop reason TCP_FLAGS)
	// SACK (sack.go, RFC 2018, RFC 2883).
	SACKBlocksRecv          uint64 // SACK blocks received, D-SACKs included
	DSACKsRecv              uint64 // D-SACK blocks received (TCPDSACKRecv)
	DSACKsSent              uint64 // D-SACK blocks sent (TCPDSACKOldSent + TCPDSACKOfoSent)
	SACKDiscards            uint64 // SACK blocks outside SND.UNA–SND.MAX, ignored (TCPSACKDiscard)
	SACKScoreboardOverflows uint64 // SACK blocks lost: the scoreboard was full
	SACKReneging            uint64 // ACKs that showed the peer dropped data it had SACKed (TCPSACKReneging)
	// Tail loss probes (tlp.go, RFC 8985 7).
	TCPLossProbes        uint64 // probes sent
	TCPLossProbeRecovery uint64 // probes that repaired a loss
	// Buffer sizing (autotune.go): allocations that grew or shrank a
	// ring; growths refused because the Memory's limit was reached
	// (Linux counts its entries into that state as TCPMemoryPressures);
	// segments cut because the receive buffer was full though the window
	// let them in (a window offered before a smaller SetRecvBuffer, or
	// out-of-order data past the buffer: TCPRcvQDrop).
	BufferGrowths, BufferShrinks uint64
	MemoryPressures              uint64
	RcvQDrops                    uint64
	// HyStart++ (cc.go, RFC 9406).
	HystartDelayDetect uint64 // slow starts ended on a rising RTT (TCPHystartDelayDetect)
	HystartCSSResumes  uint64 // returns from CSS to slow start: the RTT fell back
	HystartTrainDetect uint64 // slow starts ended on an ACK train (Linux's rule, TCPHystartTrainDetect)
	// Loss recovery (recovery.go, rack.go).
	RenoRecovery   uint64 // fast recoveries entered by three duplicate ACKs, without SACK (TCPRenoRecovery)
	SackRecovery   uint64 // fast recoveries entered by SACK and RACK (TCPSackRecovery)
	LostRetransmit uint64 // retransmissions RACK found lost again (TCPLostRetransmit)
	SACKReorder    uint64 // connections that saw reordering: data delivered below what was delivered already (TCPSACKReorder, counted once a connection)
	Undo           uint64 // reductions undone: timestamps or D-SACKs showed the retransmissions needless (TCPFullUndo + TCPDSACKUndo)
}

// New returns an empty table for cfg, or an error if cfg is invalid.
func New(cfg Config) (*Table, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	isns := NewISNs(cfg.Secret)
	t := &Table{
		cfg:       cfg,
		isns:      isns,
		k0:        isns.k0 ^ 0x9e3779b97f4a7c15,
		k1:        isns.k1,
		conns:     make(map[tuple]*Conn),
		listeners: make(map[netip.AddrPort]*Listener),
		mssSelf:   cfg.MTU - headersLen,
		rcvCap:    roundPow2(cfg.RecvBuffer),
		wheel:     wheel.New[*Conn](timerSlot, timerSlots),
	}
	t.fire = t.fireTimer
	t.mem = cfg.Memory
	if t.mem == nil {
		t.mem = NewMemory(cfg.MemoryLimit)
	}
	return t, nil
}

// Stats returns the counters.
func (t *Table) Stats() Stats { return t.stats }

// Len is the number of connections, in any state (TIME-WAIT included).
func (t *Table) Len() int { return len(t.conns) }

// Visits counts the times a connection was touched: given a segment,
// looked at for output, its timer fired, returned by NextReady, or called
// through the inline API (Read, Write, Readable, Writable), plus the
// timers the wheel looked at. It is a measure of work for tests: a round's
// must follow the connections with news or due timers, never the number
// of connections.
func (t *Table) Visits() uint64 { return t.visits + t.wheel.Visits() }

// Timers is the number of running timers (for leak checks).
func (t *Table) Timers() int { return t.wheel.Len() }

// Conns calls f for every connection, in every state (TIME-WAIT
// included), for the socket table; order is random. It allocates
// nothing. Like every Table method it is for the owner's goroutine, and f
// must not open or close connections.
func (t *Table) Conns(f func(*Conn)) {
	for _, c := range t.conns {
		f(c)
	}
}

// Listeners calls f for every open listener, for the socket table; order
// is random. It allocates nothing. It is for the owner's goroutine, and f
// must not open or close listeners.
func (t *Table) Listeners(f func(*Listener)) {
	for _, l := range t.listeners {
		f(l)
	}
}

func (t *Table) isLocal(a netip.Addr) bool {
	return slices.Contains(t.cfg.Addrs, a)
}

// Listener is a passive open (RFC 9293 LISTEN): it answers SYNs to its
// address and port and queues established connections for Accept.
type Listener struct {
	t       *Table
	addr    netip.AddrPort
	backlog int // accept queue limit
	// The SYN queue: the connections in SYN-RECEIVED from this listener,
	// oldest first, linked through their synPrev and synNext.
	synHead, synTail *Conn
	synLen           int
	acceptq          []*Conn
	closed           bool
	inReady          bool          // in the table's queue of listeners to accept from
	cookieSent       time.Duration // when a SYN cookie last went out, if cookies
	cookies          bool          // a SYN cookie went out (at cookieSent)
	// Owner is the app layer's handle on the listener, which the owner
	// of the table notifies when NextAcceptable returns it.
	Owner Notifier
	// Held, if set, is the number of connections the owner took from the
	// accept queue that its app has not accepted yet. They count against
	// the backlog: the limit holds in one place, however the owner hands
	// connections on.
	Held func() int
}

// Listen opens a listener on addr (the unspecified address listens on
// every local address). backlog bounds the accept queue, as listen(2)'s
// argument; the SYN queue is bounded by Config.SynBacklog.
func (t *Table) Listen(addr netip.AddrPort, backlog int) (*Listener, error) {
	a := addr.Addr().Unmap()
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
	}
	if !a.Is4() || (!a.IsUnspecified() && !t.isLocal(a)) {
		return nil, ErrAddrNotAvailable
	}
	addr = netip.AddrPortFrom(a, addr.Port())
	if addr.Port() == 0 {
		return nil, ErrInvalidAddr
	}
	if t.listeners[addr] != nil || (a.IsUnspecified() && t.listenedPort(addr.Port())) ||
		t.listeners[netip.AddrPortFrom(netip.IPv4Unspecified(), addr.Port())] != nil {
		return nil, ErrPortInUse
	}
	l := &Listener{t: t, addr: addr, backlog: max(backlog, 1)}
	t.listeners[addr] = l
	return l, nil
}

// listenedPort reports whether any listener uses port.
func (t *Table) listenedPort(port uint16) bool {
	for a := range t.listeners {
		if a.Port() == port {
			return true
		}
	}
	return false
}

// Addr is the listener's address.
func (l *Listener) Addr() netip.AddrPort { return l.addr }

// Pending is the number of connections waiting in the accept queue.
func (l *Listener) Pending() int { return len(l.acceptq) }

// HalfOpen is the number of connections in the SYN queue (SYN-RECEIVED).
func (l *Listener) HalfOpen() int { return l.synLen }

// Backlog is the accept queue's limit, listen(2)'s argument (at least 1).
func (l *Listener) Backlog() int { return l.backlog }

// Queued is what counts against the backlog: the connections in the
// accept queue and those the owner holds (Held), Linux's accept queue
// length that netstat shows as a listener's Recv-Q.
func (l *Listener) Queued() int {
	n := len(l.acceptq)
	if l.Held != nil {
		n += l.Held()
	}
	return n
}

// acceptFull reports whether the accept queue is at its limit, with the
// connections the owner holds.
func (l *Listener) acceptFull() bool { return l.Queued() >= l.backlog }

// synPush puts a new half-open connection at the SYN queue's tail.
func (l *Listener) synPush(c *Conn) {
	c.listener, c.synPrev, c.synNext = l, l.synTail, nil
	if l.synTail != nil {
		l.synTail.synNext = c
	} else {
		l.synHead = c
	}
	l.synTail = c
	l.synLen++
}

// synUnlink takes c out of the SYN queue: it completed or ended.
func (l *Listener) synUnlink(c *Conn) {
	if c.synPrev != nil {
		c.synPrev.synNext = c.synNext
	} else {
		l.synHead = c.synNext
	}
	if c.synNext != nil {
		c.synNext.synPrev = c.synPrev
	} else {
		l.synTail = c.synPrev
	}
	c.synPrev, c.synNext = nil, nil
	l.synLen--
}

// Accept returns the oldest established connection, or ErrWouldBlock.
func (l *Listener) Accept() (*Conn, error) {
	if l.closed {
		return nil, ErrListenerClosed
	}
	if len(l.acceptq) == 0 {
		return nil, ErrWouldBlock
	}
	c := l.acceptq[0]
	l.acceptq[0] = nil
	l.acceptq = l.acceptq[1:]
	c.listener, c.queued = nil, false
	return c, nil
}

// Close stops listening and resets the connections not accepted yet, as
// Linux does.
func (l *Listener) Close() error {
	if l.closed {
		return nil
	}
	l.closed = true
	delete(l.t.listeners, l.addr)
	// Each leaves the queues as Abort removes it, unseen by NextReady.
	for len(l.acceptq) > 0 {
		l.acceptq[0].Abort()
	}
	for l.synHead != nil {
		l.synHead.Abort()
	}
	return nil
}

// lookupListener finds the listener for a segment to local: the one on
// its address, else the wildcard one.
func (t *Table) lookupListener(local netip.AddrPort) *Listener {
	if l := t.listeners[local]; l != nil {
		return l
	}
	return t.listeners[netip.AddrPortFrom(netip.IPv4Unspecified(), local.Port())]
}

// Dial starts an active open from local (its port 0 picks an ephemeral
// port; its address must be one of Config.Addrs, or unspecified for
// wire.SourceFor's choice: the first, or a loopback one for a loopback
// remote) to remote at time now. The connection is SYN-SENT; it turns
// ESTABLISHED (and ready) or ends with an error (ErrRefused, ErrTimeout).
func (t *Table) Dial(now time.Duration, local, remote netip.AddrPort) (*Conn, error) {
	t.now = now
	ra := remote.Addr().Unmap()
	if !ra.Is4() || ra.IsUnspecified() || ra.IsMulticast() || remote.Port() == 0 {
		return nil, ErrInvalidAddr
	}
	remote = netip.AddrPortFrom(ra, remote.Port())
	la := local.Addr().Unmap()
	if !la.IsValid() || la.IsUnspecified() {
		var ok bool
		if la, ok = wire.SourceFor(t.cfg.Addrs, ra); !ok {
			return nil, ErrAddrNotAvailable
		}
	} else if !t.isLocal(la) {
		return nil, ErrAddrNotAvailable
	}
	// 127/8 never leaves the host (RFC 1122 section 3.2.1.3 (g)): from
	// 127.0.0.1 only ourselves are reachable, as Linux's connect says
	// with EINVAL.
	if la.IsLoopback() && !ra.IsLoopback() && !t.isLocal(ra) {
		return nil, ErrInvalidAddr
	}
	local = netip.AddrPortFrom(la, local.Port())
	if local.Port() == 0 {
		port, ok := t.ephemeral(la, remote)
		if !ok {
			return nil, ErrNoPorts
		}
		local = netip.AddrPortFrom(la, port)
	} else if t.conns[tupleOf(local, remote)] != nil {
		return nil, ErrPortInUse
	}
	c := t.newConn(local, remote, t.isns.ISN(now, local, remote), true)
	c.setState(SynSent)
	c.pub.store(c) // the app sees SYN-SENT, not CLOSED, until news
	if t.cfg.ConnectTimeout > 0 {
		c.connectDeadline = now + t.cfg.ConnectTimeout
	}
	t.stats.ActiveOpens++
	t.addDialing(c)
	t.wantOutput(c)
	return c, nil
}

// ephemeral picks a local port for a connection to remote: RFC 6056's
// algorithm 3 (a keyed hash of the addresses as the starting point, then
// a counter), skipping ports that have a listener or that carry a
// connection (TIME-WAIT included) to the same remote.
func (t *Table) ephemeral(la netip.Addr, remote netip.AddrPort) (uint16, bool) {
	var m [10]byte
	l, r := la.As4(), remote.Addr().As4()
	copy(m[:4], l[:])
	copy(m[4:8], r[:])
	binary.BigEndian.PutUint16(m[8:], remote.Port())
	lo, n := uint32(t.cfg.EphemeralLo), uint32(t.cfg.EphemeralHi)-uint32(t.cfg.EphemeralLo)+1
	off := uint32(siphash.Sum64(t.k0, t.k1, m[:]))
	for i := range n {
		port := uint16(lo + (off+t.nextEphemeral+i)%n)
		local := netip.AddrPortFrom(la, port)
		if t.conns[tupleOf(local, remote)] != nil || t.lookupListener(local) != nil ||
			(t.cfg.PortFilter != nil && !t.cfg.PortFilter(local, remote)) {
			continue
		}
		t.nextEphemeral += i + 1
		return port, true
	}
	return 0, false
}

// newConn makes a connection and puts it in the table. An active one
// gets its buffers now (the app may write before the handshake ends); a
// passive one when it is established, so a flood of SYNs costs the
// half-open queue no buffer memory.
func (t *Table) newConn(local, remote netip.AddrPort, iss Seq, active bool) *Conn {
	c := &Conn{
		t: t, local: local, remote: remote, key: tupleOf(local, remote),
		iss: iss, sndUna: iss, sndNxt: iss, sndMax: iss,
		progressAt: t.now, // the SYN's flight, for the user timeout
		snd:        noBuffer, rcv: noRecvBuffer,
		mss:   defaultMSS,
		nagle: t.cfg.Nagle,
		pace:  paceState{on: t.cfg.Pacing},
		ts:    !t.cfg.NoTimestamps, // offered; takeTS keeps it if the peer's SYN agrees
		sack:  !t.cfg.NoSACK,       // the same, in takeSYN
		tsOff: t.isns.TSOffset(local, remote),
		rto:   *NewRTOEstimator(t.cfg.MinRTO, t.cfg.InitialRTO, t.cfg.MaxRTO),

		reordering:   initialReordering,
		lastDataSent: t.now, lastDataRecv: t.now, lastAckRecv: t.now,
	}
	if active {
		c.allocBuffers()
	}
	c.SetCongestionControl(t.cfg.CongestionControl) // checked by withDefaults
	c.rcvShift = t.windowShift()
	c.tm.Owner, c.dackTm.Owner, c.paceTm.Owner = c, c, c
	t.conns[c.key] = c
	return c
}

// remove ends c: it leaves the table, its timer stops, its memory goes,
// and the app hears of it.
func (t *Table) remove(c *Conn) {
	if c.state == Closed {
		return
	}
	switch c.state {
	case SynSent, SynReceived:
		t.stats.AttemptFails++
	}
	c.setState(Closed)
	delete(t.conns, c.key)
	t.stopTimer(c)
	t.wheel.Stop(&c.dackTm)
	t.wheel.Stop(&c.paceTm)
	// A connection still in a listener's queues never reached the app,
	// which hears nothing of its end.
	unseen := c.listener != nil
	if l := c.listener; l != nil {
		if c.queued {
			l.acceptq = slices.DeleteFunc(l.acceptq, func(q *Conn) bool { return q == c })
		} else {
			l.synUnlink(c)
		}
		c.listener, c.queued = nil, false
	}
	// The app may still read what arrived before the end; the buffers
	// go with the app's Close, or with the connection if it has none.
	if unseen {
		c.appClosed = true
	}
	c.freeBuffers()
	if !unseen {
		t.notify(c)
	}
}

// windowShift is the window scale we ask for: the smallest shift that
// lets the 16-bit field cover the largest the receive buffer may grow to
// (RFC 7323 2.2), as Linux chooses it for tcp_rmem[2]. It is chosen in the
// SYN and never changes, so it covers the maximum, not the initial size.
func (t *Table) windowShift() uint8 { return windowShift(t.cfg.RecvBufferMax) }

// windowShift is the smallest shift that lets 16 bits cover n.
func windowShift(n int) uint8 {
	var shift uint8
	for n>>shift > 0xffff {
		shift++
	}
	return min(shift, wire.MaxWindowScale)
}

// wantOutput queues c for Output.
func (t *Table) wantOutput(c *Conn) {
	if !c.inTx {
		c.inTx = true
		t.txq = append(t.txq, c)
	}
}

// notify publishes c's status and queues c for NextReady.
func (t *Table) notify(c *Conn) {
	c.pub.store(c)
	if c.inReady || c.listener != nil {
		return
	}
	if len(t.ready) > 2*len(t.conns)+1024 {
		// Nobody drains NextReady: forget the connections that ended, so
		// the queue stays bounded by the live ones.
		t.ready = slices.DeleteFunc(t.ready, func(q *Conn) bool {
			q.inReady = q.state != Closed
			return !q.inReady
		})
	}
	c.inReady = true
	t.ready = append(t.ready, c)
}

// NextReady returns a connection with news for the app since it was last
// returned: the handshake completed, data or a FIN arrived, send buffer
// room freed, or the connection ended. Connections still in a listener's
// queues are not reported; Accept hands them out.
func (t *Table) NextReady() (*Conn, bool) {
	if len(t.ready) == 0 {
		return nil, false
	}
	c := t.ready[len(t.ready)-1]
	t.ready[len(t.ready)-1] = nil
	t.ready = t.ready[:len(t.ready)-1]
	c.inReady = false
	t.visits++
	return c, true
}

// queueRST queues a reset from local to remote.
func (t *Table) queueRST(local, remote netip.AddrPort, seq, ack Seq, withAck bool) {
	// No options: the zero TCPOptions has a window scale of 0.
	r := reply{local: local, remote: remote, seq: seq, flags: wire.TCPFlagRST, opts: wire.TCPOptions{WindowScale: -1}}
	if withAck {
		r.ack, r.flags = ack, wire.TCPFlagRST|wire.TCPFlagACK
	}
	if !t.queueCtl(r) {
		t.stats.RSTDrops++
	}
}

// queueCtl queues r for Output, ahead of the connections' segments, or
// reports that too many wait.
func (t *Table) queueCtl(r reply) bool {
	if t.nreplies == maxPendingReplies {
		return false
	}
	if t.replies == nil {
		t.replies = new([maxPendingReplies]reply)
	}
	t.replies[(t.replyHead+t.nreplies)%maxPendingReplies] = r
	t.nreplies++
	return true
}

// FragmentationNeeded takes an ICMP "fragmentation needed" about a
// segment from local to remote that carried sequence number seq, with
// the path MTU now in effect (RFC 1191). It is believed only if seq is
// in flight (RFC 5927 4.1); then segments shrink to fit, and what is in
// flight is sent again at the new size (the too-big ones were dropped).
func (t *Table) FragmentationNeeded(local, remote netip.AddrPort, seq Seq, mtu int) {
	c := t.conns[tupleOf(local, remote)]
	if c == nil || !seq.InWindow(c.sndUna, uint32(c.sndMax.Sub(c.sndUna))) {
		return
	}
	mss := max(mtu-headersLen, minMSS)
	if mss >= c.mss {
		return
	}
	c.mss = mss
	if c.synAcked {
		c.sndNxt = c.sndUna
		c.rttTiming = false
		t.wantOutput(c)
	}
}
