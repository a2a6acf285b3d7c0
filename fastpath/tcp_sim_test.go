package fastpath_test

import (
	"crypto/sha256"
	"errors"
	"hash"
	"io"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

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
}

// sim is two stacks joined by a pipe, each end's egress impaired, run in
// virtual time: hours of lossy transfer take milliseconds.
type sim struct {
	a, b *simNode
	now  time.Duration
}

// simStep is the virtual time a round of polls takes while frames flow.
const simStep = 20 * time.Microsecond

func newSim(t testing.TB, faults nic.FaultConfig, tcpCfg tcp.Config) *sim {
	s := &sim{}
	pa, pb := nic.NewPipe(nic.PipeConfig{Buffers: 4096, QueueDepth: 4096})
	clock := func() time.Duration { return s.now }
	node := func(link *nic.Pipe, addr netip.Addr, seed uint64) *simNode {
		f := faults
		f.Seed, f.Now, f.CorruptFrom = seed, clock, 14
		n := &simNode{faulty: nic.NewFaulty(link, f)}
		cfg := tcpCfg
		cfg.Secret = [16]byte{byte(seed), byte(seed >> 8), 1}
		p, err := fastpath.New(fastpath.Config{Link: n.faulty, IP: ip.Config{Addr: netip.PrefixFrom(addr, 24)}, TCP: cfg})
		require.NoError(t, err)
		n.Poller = p
		return n
	}
	s.a = node(pa, stackAddr, faults.Seed*2+1)
	s.b = node(pb, peerAddr, faults.Seed*2+2)
	// Static neighbours: the simulation is about TCP, and ARP under loss
	// only adds start-up noise.
	require.NoError(t, s.a.ARP().AddStatic(0, peerAddr, pb.MAC()))
	require.NoError(t, s.b.ARP().AddStatic(0, stackAddr, pa.MAC()))
	return s
}

// run polls both stacks until done reports true or the virtual time
// limit passes; while nothing moves it jumps to the next timer. It fails
// the test on the time limit.
func (s *sim) run(t testing.TB, limit time.Duration, done func() bool) {
	t.Helper()
	for !done() {
		require.Less(t, s.now, limit, "simulation did not finish in %v of virtual time", limit)
		na, err := s.a.Poll(s.now)
		require.NoError(t, err)
		nb, err := s.b.Poll(s.now)
		require.NoError(t, err)
		if na+nb > 0 || s.a.faulty.FaultStats().Held+s.b.faulty.FaultStats().Held > 0 {
			s.now += simStep
			continue
		}
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
	key[0], key[1] = byte(seed), byte(seed>>8)
	return &stream{size: size, rng: rand.NewChaCha8(key), buf: make([]byte, 64<<10),
		hashIn: sha256.New(), hashOut: sha256.New()}
}

// write pushes as much of the stream into c as it takes, and closes the
// write side at the end.
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
	return c.CloseWrite()
}

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

// TestTCPTransferOverPipe moves data both ways between two stacks over a
// clean pipe, and both ends close and forget the connection.
func TestTCPTransferOverPipe(t *testing.T) {
	transfer(t, nic.FaultConfig{}, 1<<20)
}

func TestTCPTransferFaulty(t *testing.T) {
	transfer(t, nic.FaultConfig{Seed: 1, Loss: 0.05, Duplicate: 0.02, Reorder: 0.05, Corrupt: 0.02}, 1<<20)
}

func transfer(t *testing.T, faults nic.FaultConfig, size int) {
	s := newSim(t, faults, tcp.Config{MSL: time.Second})
	ln, err := s.b.TCP().Listen(netip.AddrPortFrom(netip.Addr{}, 5001), 8)
	require.NoError(t, err)
	client, err := s.a.TCP().Dial(s.now, netip.AddrPort{}, netip.AddrPortFrom(peerAddr, 5001))
	require.NoError(t, err)
	var server *tcp.Conn
	up, down := newStream(size, 1), newStream(size, 2)
	s.run(t, time.Hour, func() bool {
		if server == nil {
			server, _ = ln.Accept()
		}
		if client.State() == tcp.Established || client.State() == tcp.FinWait1 || client.State() == tcp.CloseWait {
			require.NoError(t, up.write(client))
		}
		require.NoError(t, down.read(client))
		if server != nil {
			require.NoError(t, up.read(server))
			require.NoError(t, down.write(server))
		}
		return up.eof && down.eof
	})
	t.Logf("virtual %v, a %+v, b %+v, faults %+v", s.now, s.a.TCP().Stats(), s.b.TCP().Stats(), s.a.faulty.FaultStats())
	require.Equal(t, up.size, up.received)
	require.Equal(t, down.size, down.received)
	require.Equal(t, up.hashOut.Sum(nil), up.hashIn.Sum(nil))
	require.Equal(t, down.hashOut.Sum(nil), down.hashIn.Sum(nil))
	require.NoError(t, client.Close())
	require.NoError(t, server.Close())
	s.run(t, s.now+time.Minute, func() bool { return s.a.TCP().Len()+s.b.TCP().Len() == 0 })
	require.Zero(t, s.a.TCP().Timers()+s.b.TCP().Timers())
}
