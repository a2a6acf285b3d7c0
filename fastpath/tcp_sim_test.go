package fastpath_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/tcp"
)

// simNode is one stack of a two-stack simulation: a poller on one end of
// a pipe, behind a fault injector, in virtual time.
type simNode struct {
	*fastpath.Poller
	faulty *nic.Faulty
	pipe   *nic.Pipe
}

// sim is two stacks joined by a pipe, each end's egress impaired, run in
// virtual time: hours of lossy transfer take milliseconds.
type sim struct {
	a, b    *simNode
	now     time.Duration
	buffers int // each pipe end's transmit buffers
}

// simStep is the virtual time a round of polls takes while frames flow.
const simStep = 20 * time.Microsecond

// maxIdleStep bounds the step while delayed frames are held and nothing
// arrives.
const maxIdleStep = 160 * time.Microsecond

// simBuffers is each pipe end's transmit buffer pool (and receive queue),
// unless the injectors hold more frames (twice the most they hold).
const simBuffers = 4096

func newSim(t testing.TB, faults nic.FaultConfig, tcpCfg tcp.Config) *sim {
	return newSimPath(t, faults, faults, tcpCfg)
}

// newSimPath is newSim with each direction impaired its own way: up on
// the first stack's egress (a to b), down on the second's. up.Seed seeds
// both.
func newSimPath(t testing.TB, up, down nic.FaultConfig, tcpCfg tcp.Config) *sim {
	s := &sim{buffers: max(simBuffers, 2*up.MaxHeld, 2*down.MaxHeld)}
	pa, pb := nic.NewPipe(nic.PipeConfig{Buffers: s.buffers, QueueDepth: s.buffers})
	clock := func() time.Duration { return s.now }
	node := func(link *nic.Pipe, addr netip.Addr, f nic.FaultConfig, seed uint64) *simNode {
		f.Seed, f.Now, f.CorruptFrom = seed, clock, 14
		n := &simNode{faulty: nic.NewFaulty(link, f), pipe: link}
		cfg := tcpCfg
		cfg.Secret = [16]byte{byte(seed), byte(seed >> 8), 1}
		p, err := fastpath.New(fastpath.Config{Link: n.faulty, IP: ip.Config{Addr: netip.PrefixFrom(addr, 24)}, TCP: cfg})
		require.NoError(t, err)
		n.Poller = p
		return n
	}
	s.a = node(pa, stackAddr, up, up.Seed*2+1)
	s.b = node(pb, peerAddr, down, up.Seed*2+2)
	// Static neighbours: the simulation is about TCP, and ARP under loss
	// only adds start-up noise.
	require.NoError(t, s.a.ARP().AddStatic(0, peerAddr, pb.MAC()))
	require.NoError(t, s.b.ARP().AddStatic(0, stackAddr, pa.MAC()))
	return s
}

// held is the number of frames the fault injectors hold back.
func (s *sim) held() uint64 { return s.a.faulty.FaultStats().Held + s.b.faulty.FaultStats().Held }

// inFlight is the number of frames on the pipe: sent by one end and not
// yet received (nor dropped) by the other. An injector can release a
// held frame in the second poll of a round, after the receiver's turn.
func (s *sim) inFlight() uint64 {
	n := uint64(0)
	for _, d := range [][2]*simNode{{s.a, s.b}, {s.b, s.a}} {
		tx, rx := d[0].pipe.Stats(), d[1].pipe.Stats()
		n += tx.TxFrames - rx.RxFrames - rx.RxDropped
	}
	return n
}

// run polls both stacks until done reports true or the virtual time
// limit passes; while nothing moves it jumps to the next timer. It fails
// the test on the time limit.
func (s *sim) run(t testing.TB, limit time.Duration, done func() bool) {
	t.Helper()
	step := simStep
	for !done() {
		require.Less(t, s.now, limit, "simulation did not finish in %v of virtual time", limit)
		na, err := s.a.Poll(s.now)
		require.NoError(t, err)
		nb, err := s.b.Poll(s.now)
		require.NoError(t, err)
		switch {
		case na+nb > 0 || s.inFlight() > 0:
			step = simStep
		case s.held() > 0:
			// Only delayed frames are on their way: lengthen the step
			// while nothing arrives (a frame arrives at most
			// maxIdleStep late), or delay would cost a round of
			// polls every simStep.
			step = min(2*step, maxIdleStep)
		default:
			step = 0
		}
		if step > 0 {
			s.now += step
			continue
		}
		step = simStep
		// Idle: jump to the next timer (or a step, if none is set and the
		// apps may act).
		next := time.Duration(-1)
		for _, n := range []*simNode{s.a, s.b} {
			if d, ok := n.Deadline(); ok && (next < 0 || d < next) {
				next = d
			}
		}
		s.now = max(s.now+simStep, next)
	}
}

// checkNoLeaks asserts that the simulation ended with nothing left over:
// no connection, no timer in either stack, no frame held by the fault
// injectors, and every transmit buffer of both pipe ends back in its pool
// (the pollers give theirs back first).
func (s *sim) checkNoLeaks(t testing.TB) {
	t.Helper()
	for _, n := range []*simNode{s.a, s.b} {
		assert.Zero(t, n.TCP().Len(), "connections left")
		assert.Zero(t, n.TCP().Timers(), "timers left")
		_, pending := n.Deadline()
		assert.False(t, pending, "a poller timer is left")
		assert.Zero(t, n.faulty.FaultStats().Held, "frames held by the injector")
	}
	// One more round each, so each side releases what the other sent last.
	for _, n := range []*simNode{s.a, s.b, s.a} {
		_, err := n.Poll(s.now)
		require.NoError(t, err)
	}
	for _, n := range []*simNode{s.a, s.b} {
		n.Close()
		fs := make([]nic.Frame, s.buffers+1)
		got := n.pipe.Alloc(fs)
		assert.Equal(t, s.buffers, got, "transmit buffers not back in the pool")
		n.pipe.Release(fs[:got])
		assert.Zero(t, n.pipe.BadFrames(), "frames released twice or not held")
	}
}

// stream is one direction of a transfer: the sender writes size bytes of
// a seeded pseudo-random stream, and the receiver hashes what it reads.
type stream struct {
	size            int
	sent, received  int
	rng             *rand.ChaCha8
	hashIn, hashOut hash.Hash
	buf             []byte
	eof             bool
}

func newStream(size int, seed uint64) *stream {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	return &stream{size: size, rng: rand.NewChaCha8(key), buf: make([]byte, 64<<10),
		hashIn: sha256.New(), hashOut: sha256.New()}
}

// write pushes as much of the rest of the stream into c as it takes.
func (s *stream) write(c *tcp.Conn) error {
	for s.sent < s.size {
		n := min(c.Writable(), s.size-s.sent, len(s.buf))
		if n == 0 {
			return nil
		}
		s.rng.Read(s.buf[:n])
		m, err := c.Write(s.buf[:n])
		if err != nil {
			return err
		}
		if m != n {
			return errors.New("short write with room announced")
		}
		s.hashOut.Write(s.buf[:n])
		s.sent += n
	}
	return nil
}

// written reports whether every byte of the stream went into the
// connection.
func (s *stream) written() bool { return s.sent == s.size }

// read drains c, and reports EOF.
func (s *stream) read(c *tcp.Conn) error {
	for !s.eof {
		n, err := c.Read(s.buf)
		s.hashIn.Write(s.buf[:n])
		s.received += n
		switch {
		case errors.Is(err, tcp.ErrWouldBlock):
			return nil
		case err == io.EOF:
			s.eof = true
		case err != nil:
			return err
		}
	}
	return nil
}

// check asserts that every byte arrived, once, in order.
func (s *stream) check(t testing.TB, name string) {
	t.Helper()
	assert.True(t, s.eof, "%s: no EOF", name)
	assert.Equal(t, s.size, s.sent, "%s: bytes written", name)
	assert.Equal(t, s.size, s.received, "%s: bytes read", name)
	assert.Equal(t, s.hashOut.Sum(nil), s.hashIn.Sum(nil), "%s: hash of the bytes read", name)
}

// closeOrder says which side of a connection sends its FIN first.
type closeOrder int

const (
	clientFirst closeOrder = iota
	serverFirst
	simultaneous
)

func (o closeOrder) String() string {
	return [...]string{"client-first", "server-first", "simultaneous"}[o]
}

// peerApp is one end's application: it writes its stream, reads the
// other, half-closes when its turn comes, and closes once both streams
// ended. It records every state it sees its connection in.
type peerApp struct {
	c       *tcp.Conn
	out, in *stream
	// first: this side's FIN goes first; else it waits for the peer's.
	first     bool
	finSent   bool // CloseWrite called
	closed    bool // Close called
	states    []tcp.State
	tw        time.Duration // when TIME-WAIT was first seen
	twLasted  time.Duration // how long it was seen
	lastState tcp.State     // the last state seen before CLOSED
}

// observe records c's state, once per change.
func (p *peerApp) observe(now time.Duration) {
	if p.c == nil {
		return
	}
	st := p.c.State()
	if len(p.states) == 0 || p.states[len(p.states)-1] != st {
		if len(p.states) > 0 {
			if prev := p.states[len(p.states)-1]; prev == tcp.TimeWait {
				p.twLasted = now - p.tw
			}
			if st == tcp.Closed {
				p.lastState = p.states[len(p.states)-1]
			}
		}
		if st == tcp.TimeWait {
			p.tw = now
		}
		p.states = append(p.states, st)
	}
}

// step is one round of the app: write, read, and close when due. mayFIN
// says whether a side that goes first may send its FIN now.
func (p *peerApp) step(t testing.TB, mayFIN bool) {
	t.Helper()
	if p.c == nil {
		return
	}
	require.NoError(t, p.out.write(p.c))
	require.NoError(t, p.in.read(p.c))
	if !p.finSent && p.out.written() && ((p.first && mayFIN) || (!p.first && p.in.eof)) {
		require.NoError(t, p.c.CloseWrite())
		p.finSent = true
	}
	if !p.closed && p.finSent && p.in.eof {
		require.NoError(t, p.c.Close())
		p.closed = true
	}
}

// checkPath asserts the connection closed cleanly, and by the path its
// role asks for: the side that sent the first FIN (both, when they
// crossed) through FIN-WAIT and TIME-WAIT, the other through CLOSE-WAIT
// and LAST-ACK (RFC 9293 3.6).
func (p *peerApp) checkPath(t testing.TB, name string, active bool, msl time.Duration) {
	t.Helper()
	require.NotNil(t, p.c, "%s: no connection", name)
	assert.NoError(t, p.c.Err(), "%s: error", name)
	assert.Equal(t, tcp.Closed, p.c.State(), "%s: state", name)
	seen := func(s tcp.State) bool { return slices.Contains(p.states, s) }
	path := fmt.Sprint(p.states)
	if active {
		assert.True(t, seen(tcp.TimeWait), "%s: active close never in TIME-WAIT: %s", name, path)
		assert.Equal(t, tcp.TimeWait, p.lastState, "%s: ended from %v: %s", name, p.lastState, path)
		assert.False(t, seen(tcp.CloseWait) || seen(tcp.LastAck), "%s: active close in a passive state: %s", name, path)
		// TIME-WAIT lasts its 2×MSL (a step of polling may add to it);
		// a shorter one was cut by a segment.
		assert.GreaterOrEqual(t, p.twLasted, 2*msl, "%s: TIME-WAIT cut short: %s", name, path)
	} else {
		assert.True(t, seen(tcp.CloseWait) || seen(tcp.LastAck), "%s: passive close never in CLOSE-WAIT or LAST-ACK: %s", name, path)
		assert.Equal(t, tcp.LastAck, p.lastState, "%s: ended from %v: %s", name, p.lastState, path)
		assert.False(t, seen(tcp.FinWait1) || seen(tcp.FinWait2) || seen(tcp.Closing) || seen(tcp.TimeWait),
			"%s: passive close in an active state: %s", name, path)
	}
}

// TestTCPTransferOverPipe moves data both ways between two stacks over a
// clean pipe, and both ends close and forget the connection.
func TestTCPTransferOverPipe(t *testing.T) {
	transfer(t, simCase{size: [2]int{1 << 20, 1 << 20}, order: clientFirst})
}

func TestTCPTransferFaulty(t *testing.T) {
	transfer(t, simCase{seed: 1, size: [2]int{1 << 20, 1 << 20}, order: serverFirst,
		faults: nic.FaultConfig{Loss: 0.05, Duplicate: 0.02, Reorder: 0.05, Corrupt: 0.02}})
}

// simCase is one transfer of the simulation matrix.
type simCase struct {
	seed   uint64
	size   [2]int // bytes client to server, server to client
	faults nic.FaultConfig
	order  closeOrder
}

func (c simCase) String() string {
	f := c.faults
	return fmt.Sprintf("seed %d: %d B up, %d B down, loss %.1f%% dup %.1f%% reorder %.1f%% corrupt %.1f%%, delay %v+%v, %v",
		c.seed, c.size[0], c.size[1], 100*f.Loss, 100*f.Duplicate, 100*f.Reorder, 100*f.Corrupt, f.Delay, f.Jitter, c.order)
}

// simMSL is the simulations' MSL: TIME-WAIT lasts 2 s of virtual time.
const simMSL = time.Second

// transfer runs one connection: both directions at once, a close in the
// case's order, TIME-WAIT to its end. It checks every byte, the close
// path, and that nothing leaked; it returns the virtual time taken.
func transfer(t testing.TB, c simCase) time.Duration {
	v, _ := transferStats(t, c)
	return v
}

// transferStats is transfer, and returns the client's and the server's
// counters too.
func transferStats(t testing.TB, c simCase) (time.Duration, [2]tcp.Stats) {
	c.faults.Seed = c.seed
	s := newSim(t, c.faults, tcp.Config{MSL: simMSL})
	ln, err := s.b.TCP().Listen(netip.AddrPortFrom(netip.Addr{}, 5001), 8)
	require.NoError(t, err)
	conn, err := s.a.TCP().Dial(s.now, netip.AddrPort{}, netip.AddrPortFrom(peerAddr, 5001))
	require.NoError(t, err)
	up, down := newStream(c.size[0], c.seed*2+1), newStream(c.size[1], c.seed*2+2)
	client := &peerApp{c: conn, out: up, in: down, first: c.order != serverFirst}
	server := &peerApp{out: down, in: up, first: c.order != clientFirst}
	apps := func() {
		if server.c == nil {
			if sc, err := ln.Accept(); err == nil {
				server.c = sc
			}
		}
		// Crossing FINs: both wait until every byte is across, then both
		// close in the same round, so each FIN is on its way before the
		// other arrives.
		mayFIN := c.order != simultaneous || (server.c != nil && up.received == up.size &&
			down.received == down.size && conn.Unacked() == 0 && server.c.Unacked() == 0)
		client.step(t, mayFIN)
		server.step(t, mayFIN)
		client.observe(s.now)
		server.observe(s.now)
	}
	// Go-back-N without congestion control, SACK or timestamps is slow at
	// 10 % loss each of loss and corruption: the RTO backs off (Karn) and
	// rarely gets a clean sample to come down. The matrix's worst case
	// took 8 min of virtual time per MiB (3 h for 23 MiB at 8 % loss and
	// 7 % corruption); this allows 15.
	limit := time.Duration(float64(c.size[0]+c.size[1])/(1<<20)*float64(15*time.Minute)) + 10*time.Minute
	s.run(t, limit, func() bool {
		apps()
		return s.a.TCP().Len()+s.b.TCP().Len() == 0 && s.held() == 0
	})
	t.Logf("%v: virtual %v; client %+v; server %+v; faults a %+v b %+v", c, s.now,
		s.a.TCP().Stats(), s.b.TCP().Stats(), s.a.faulty.FaultStats(), s.b.faulty.FaultStats())
	up.check(t, "client to server")
	down.check(t, "server to client")
	client.checkPath(t, "client", c.order != serverFirst, simMSL)
	server.checkPath(t, "server", c.order != clientFirst, simMSL)
	for _, n := range []*simNode{s.a, s.b} {
		st := n.TCP().Stats()
		assert.Zero(t, st.EstabResets, "connections reset")
		assert.Zero(t, st.AttemptFails, "failed opens")
	}
	s.checkNoLeaks(t)
	return s.now, [2]tcp.Stats{s.a.TCP().Stats(), s.b.TCP().Stats()}
}

// TestTCPLossyEchoNoRSTs is issue 9's lossy echo in simulation: the
// client sends, the server echoes, the client half-closes first and the
// server closes after its EOF, over links that lose 1–3 % of frames but
// keep their order. transferStats checks that no connection was reset
// and that the client's TIME-WAIT ran its whole 2×MSL. One RST an echo
// is justified, as from Linux (RFC 9293 3.10.7.1): a retransmission that
// crossed the ACK of the server's FIN (seed 111 at the 4 MiB default:
// the server in LAST-ACK resent a segment 1.5 ms before that ACK
// arrived and closed it), which the client's TIME-WAIT acknowledges and
// the closed connection answers with a RST that TIME-WAIT ignores
// (RFC 1337). The defect of issue 9 sent tens. (The RSTs issue 9 saw against the kernel
// need a peer that acknowledges every duplicate segment, as Linux does
// and this stack does not: tcp's TestLastAckTimeoutSendsNoBurst and the
// lab's TestServeLossyEchoRSTs cover them.)
func TestTCPLossyEchoNoRSTs(t *testing.T) {
	var rsts, timeouts uint64
	for seed := range uint64(12) {
		c := simCase{seed: 100 + seed, size: [2]int{2 << 20, 2 << 20}, order: clientFirst,
			faults: nic.FaultConfig{Loss: 0.01 + 0.01*float64(seed%3), Delay: time.Duration(seed%4) * time.Millisecond}}
		_, st := transferStats(t, c)
		assert.LessOrEqual(t, st[0].OutRsts+st[1].OutRsts, uint64(1), "%v: RSTs sent", c)
		rsts += st[0].OutRsts + st[1].OutRsts
		timeouts += st[0].Timeouts + st[1].Timeouts
	}
	t.Logf("%d RSTs, %d retransmission timeouts", rsts, timeouts)
}

// matrixCase derives seed's case: sizes spread over 1–16 MiB each way,
// each fault 0–10 %, a delay and jitter on some, and a close order.
func matrixCase(seed uint64) simCase {
	r := rand.New(rand.NewPCG(seed, 0x73696d))
	const mib = 1 << 20
	size := func() int { return mib + r.IntN(15*mib+1) }
	c := simCase{seed: seed, size: [2]int{size(), size()}, order: closeOrder(seed % 3)}
	rate := func() float64 { return r.Float64() * 0.10 }
	if seed%10 != 0 { // every tenth case runs over a clean link
		c.faults = nic.FaultConfig{Loss: rate(), Duplicate: rate(), Reorder: rate(), Corrupt: rate()}
	}
	if r.IntN(2) == 0 {
		c.faults.Delay = time.Duration(r.IntN(5000)) * time.Microsecond
		c.faults.Jitter = time.Duration(r.IntN(1000)) * time.Microsecond
	}
	return c
}

// TestTCPSimMatrix is the simulation matrix: 100 seeds, each a
// two-way transfer of 1–16 MiB per direction over a link with 0–10 %
// loss, duplication, reordering and corruption (and a delay on half),
// closed in one of the three orders. Every byte is checked by hash, both
// ends close by their proper path, and nothing leaks.
func TestTCPSimMatrix(t *testing.T) {
	seeds := uint64(100)
	if testing.Short() {
		seeds = 10
	}
	var (
		mu      sync.Mutex
		virtual []time.Duration
		bytes   int
		start   = time.Now()
	)
	t.Cleanup(func() { // after every parallel subtest
		slices.Sort(virtual)
		if n := len(virtual); n > 0 {
			t.Logf("%d transfers, %d MiB: virtual time median %v, p90 %v, max %v; wall %v",
				n, bytes>>20, virtual[n/2], virtual[n*9/10], virtual[n-1], time.Since(start).Round(time.Millisecond))
		}
	})
	for seed := range seeds {
		c := matrixCase(seed)
		t.Run(fmt.Sprintf("seed%03d", seed), func(t *testing.T) {
			t.Parallel()
			v := transfer(t, c)
			mu.Lock()
			defer mu.Unlock()
			virtual = append(virtual, v)
			bytes += c.size[0] + c.size[1]
		})
	}
}

// goodput moves size bytes one way over a link with loss and a one-way
// delay, and returns bytes per second of virtual time from the dial to
// the last byte read. The receive buffer is a fixed 128 KiB (auto-tuning
// off), so a clean link's goodput is window/RTT.
func goodput(t testing.TB, seed uint64, loss float64, delay time.Duration, size int) float64 {
	s := newSim(t, nic.FaultConfig{Seed: seed, Loss: loss, Delay: delay}, tcp.Config{MSL: simMSL, RecvBufferMax: 128 << 10})
	ln, err := s.b.TCP().Listen(netip.AddrPortFrom(netip.Addr{}, 5001), 8)
	require.NoError(t, err)
	conn, err := s.a.TCP().Dial(s.now, netip.AddrPort{}, netip.AddrPortFrom(peerAddr, 5001))
	require.NoError(t, err)
	st := newStream(size, seed)
	var server *tcp.Conn
	s.run(t, time.Hour, func() bool {
		if server == nil {
			server, _ = ln.Accept()
		}
		require.NoError(t, st.write(conn))
		if st.written() && conn.State() == tcp.Established {
			require.NoError(t, conn.CloseWrite())
		}
		if server != nil {
			require.NoError(t, st.read(server))
		}
		return st.eof
	})
	st.check(t, "goodput")
	return float64(size) / s.now.Seconds()
}

// TestSimGoodputTable logs the goodput of one 4 MiB transfer over a link
// of 5 ms one-way delay at 0–10 % loss, in virtual time, averaged over
// seeds, and checks it against testdata/TestSimGoodputTable.golden. On a clean link slow start soon reaches the peer's fixed 128 KiB
// window, which then bounds the flight, so it gives about window/RTT;
// loss costs congestion window reductions (CUBIC, NewReno recovery, no
// SACK yet) and retransmission timeouts.
func TestSimGoodputTable(t *testing.T) {
	const (
		size  = 4 << 20
		delay = 5 * time.Millisecond
		seeds = 3
	)
	var table strings.Builder
	fmt.Fprintf(&table, "\n| loss | goodput (MB/s, virtual) |\n|---|---|\n")
	prev := 0.0
	golden := newGoldenTable(t, fmt.Sprintf("One 4 MiB transfer each way of %v delay, both ways lossy, mean of seeds 1-%d.", delay, seeds))
	for i, loss := range []float64{0, 0.01, 0.02, 0.05, 0.10} {
		sum := 0.0
		for seed := range uint64(seeds) {
			sum += goodput(t, seed+1, loss, delay, size)
		}
		g := sum / seeds
		fmt.Fprintf(&table, "| %4.0f %% | %6.2f |\n", 100*loss, g/1e6)
		golden.add(fmt.Sprintf("loss %g %%", 100*loss), "goodput (MB/s)", g/1e6, goodputMargin)
		if i == 0 {
			// window/RTT bounds a clean link: 128 KiB per 10 ms.
			bound := float64(128<<10) / (2 * delay).Seconds()
			assert.InDelta(t, bound, g, bound*0.2, "clean-link goodput against window/RTT")
		} else {
			assert.Less(t, g, prev*1.05, "goodput rose with loss")
		}
		prev = g
	}
	t.Log(table.String())
	golden.check(t, false)
}

// TestTCPManyConnections runs 50 connections at once over a lossy link,
// each moving data both ways and closing in its own order; all end
// cleanly and nothing leaks.
func TestTCPManyConnections(t *testing.T) {
	const conns = 50
	s := newSim(t, nic.FaultConfig{Seed: 7, Loss: 0.03, Duplicate: 0.02, Reorder: 0.03, Corrupt: 0.01,
		Delay: time.Millisecond, Jitter: 200 * time.Microsecond}, tcp.Config{MSL: simMSL})
	ln, err := s.b.TCP().Listen(netip.AddrPortFrom(netip.Addr{}, 5001), conns)
	require.NoError(t, err)
	clients := make([]*peerApp, conns)
	servers := map[netip.AddrPort]*peerApp{} // by the client's address
	r := rand.New(rand.NewPCG(7, 7))
	for i := range conns {
		c, err := s.a.TCP().Dial(s.now, netip.AddrPort{}, netip.AddrPortFrom(peerAddr, 5001))
		require.NoError(t, err)
		up, down := newStream(64<<10+r.IntN(256<<10), uint64(2*i+1)), newStream(64<<10+r.IntN(256<<10), uint64(2*i+2))
		order := closeOrder(i % 2) // crossing FINs need both apps in step: TestTCPSimMatrix has them
		clients[i] = &peerApp{c: c, out: up, in: down, first: order == clientFirst}
		servers[c.LocalAddr()] = &peerApp{out: down, in: up, first: order == serverFirst}
	}
	s.run(t, time.Hour, func() bool {
		for {
			c, err := ln.Accept()
			if err != nil {
				break
			}
			sa := servers[c.RemoteAddr()]
			require.NotNil(t, sa, "accepted an unknown connection from %v", c.RemoteAddr())
			require.Nil(t, sa.c, "accepted twice")
			sa.c = c
		}
		for _, ca := range clients {
			ca.step(t, true)
			ca.observe(s.now)
		}
		for _, sa := range servers {
			sa.step(t, true)
			sa.observe(s.now)
		}
		return s.a.TCP().Len()+s.b.TCP().Len() == 0 && s.held() == 0
	})
	t.Logf("virtual %v; client %+v; server %+v", s.now, s.a.TCP().Stats(), s.b.TCP().Stats())
	for i, ca := range clients {
		name := fmt.Sprintf("conn %d", i)
		sa := servers[ca.c.LocalAddr()]
		ca.out.check(t, name+" up")
		ca.in.check(t, name+" down")
		ca.checkPath(t, name+" client", ca.first, simMSL)
		sa.checkPath(t, name+" server", sa.first, simMSL)
	}
	s.checkNoLeaks(t)
}
