package fastpath_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/product/services"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/tcp"
	"github.com/xdpnet/xdpnet/udp"
)

// idleSim is `xdpnet serve` over a clean pipe in virtual time: stack a
// runs serve's UDP and TCP services on its rounds (OnRound, as serve
// wires them), stack b holds idle TCP connections to a's echo and discard
// ports and is the client of one request/response at a time, by UDP
// (like a ping) or on one more TCP echo connection.
type idleSim struct {
	*sim
	tcpSvc services.TCPServices
	udpSvc services.EchoDiscard
	ep     *udp.Endpoint // b's UDP client
	conn   *tcp.Conn     // b's active TCP echo connection
	idle   []*tcp.Conn   // b's idle ones
	buf    []byte
}

// idleConfig gives each connection small fixed buffers (auto-tuning
// off), so 50,000 of them on each stack cost little memory (buffers are
// allocated per connection) and the services' streams move through
// 1 KiB windows, and b the whole port range, so one remote port takes
// 64,512 of them.
var idleConfig = tcp.Config{SendBuffer: 1024, RecvBuffer: 1024, RecvBufferMax: 1024, EphemeralLo: 1024, EphemeralHi: 65535}

// newIdleSim opens idle connections from b to a, with keepalive on if
// asked (a timer each, two hours out), and then the active ones.
func newIdleSim(t testing.TB, idle int, keepalive bool) *idleSim {
	s := &idleSim{sim: newSim(t, nic.FaultConfig{}, idleConfig), buf: make([]byte, 1024)}
	require.NoError(t, s.udpSvc.Bind(s.a.UDP()))
	require.NoError(t, s.tcpSvc.Listen(s.a.TCP()))
	s.a.OnRound(func(now time.Duration) {
		s.udpSvc.Serve(now)
		s.tcpSvc.Serve(now)
	})
	echo, discard := netip.AddrPortFrom(stackAddr, services.EchoPort), netip.AddrPortFrom(stackAddr, services.DiscardPort)
	// In batches a listener's queues take in stride: a round brings a
	// batch of SYNs and the ACKs of the last, and a poller takes 64
	// frames a round.
	for len(s.idle) < idle {
		for range min(32, idle-len(s.idle)) {
			to := echo
			if len(s.idle)%2 == 1 {
				to = discard
			}
			c, err := s.b.TCP().Dial(s.now, netip.AddrPort{}, to)
			require.NoError(t, err)
			c.SetKeepAlive(keepalive)
			s.idle = append(s.idle, c)
		}
		s.round(t)
	}
	var err error
	s.conn, err = s.b.TCP().Dial(s.now, netip.AddrPort{}, echo)
	require.NoError(t, err)
	s.ep, err = s.b.UDP().Bind(netip.AddrPortFrom(netip.Addr{}, 0))
	require.NoError(t, err)
	for i := 0; s.tcpSvc.Stats().Active < int64(idle+1); i++ {
		require.Less(t, i, 1000, "the connections did not all open: %d accepted; a %+v", s.tcpSvc.Stats().Active, s.a.TCP().Stats())
		s.round(t)
	}
	for _, c := range append(s.idle, s.conn) {
		require.Equal(t, tcp.Established, c.State())
	}
	require.Zero(t, s.a.TCP().Stats().ListenDrops, "no SYN dropped")
	if keepalive {
		require.GreaterOrEqual(t, s.b.TCP().Timers(), idle, "a keepalive timer each")
	}
	return s
}

// round polls both stacks, simStep later.
func (s *idleSim) round(t testing.TB) {
	s.poll(t, s.a)
	s.poll(t, s.b)
}

func (s *idleSim) poll(t testing.TB, n *simNode) {
	s.now += simStep
	if _, err := n.Poll(s.now); err != nil {
		t.Fatal(err)
	}
}

// exchange polls b (the request goes), a (the reply), b (it arrives), then
// asks both for their next deadline as a poller does before it parks.
func (s *idleSim) exchange(t testing.TB) {
	s.poll(t, s.b)
	s.poll(t, s.a)
	s.poll(t, s.b)
	s.a.Deadline()
	s.b.Deadline()
}

// udpEcho sends a datagram to a's UDP echo and reads the echo.
func (s *idleSim) udpEcho(t testing.TB) {
	if _, err := s.ep.WriteTo(s.buf[:32], netip.AddrPortFrom(stackAddr, services.EchoPort)); err != nil {
		t.Fatal(err)
	}
	s.exchange(t)
	if n, _, err := s.ep.ReadFrom(s.buf); err != nil || n != 32 {
		t.Fatalf("UDP echo: %d bytes, %v", n, err)
	}
}

// tcpEcho writes one byte on the active connection and reads its echo.
func (s *idleSim) tcpEcho(t testing.TB) {
	if _, err := s.conn.Write(s.buf[:1]); err != nil {
		t.Fatal(err)
	}
	s.exchange(t)
	if n, err := s.conn.Read(s.buf); err != nil || n != 1 {
		t.Fatalf("TCP echo: %d bytes, %v", n, err)
	}
}

// visits is both TCP tables' work count (tcp.Table.Visits).
func (s *idleSim) visits() uint64 { return s.a.TCP().Visits() + s.b.TCP().Visits() }

// frames is the number of frames both stacks sent.
func (s *idleSim) frames() uint64 { return s.a.pipe.Stats().TxFrames + s.b.pipe.Stats().TxFrames }

// TestTCPServicesServeOnNews: serve's TCP services, which visit only the
// connections the poller told them had news, keep every stream moving
// through buffers much smaller than the data: echo gives back 64 KiB
// through 1 KiB windows (it waits for room, then hears of it), discard
// takes 64 KiB, chargen keeps sending as its data is acknowledged.
func TestTCPServicesServeOnNews(t *testing.T) {
	s := newIdleSim(t, 0, false)
	dial := func(port uint16) *tcp.Conn {
		c, err := s.b.TCP().Dial(s.now, netip.AddrPort{}, netip.AddrPortFrom(stackAddr, port))
		require.NoError(t, err)
		return c
	}
	echo, discard, chargen := dial(services.EchoPort), dial(services.DiscardPort), dial(services.ChargenPort)
	const size = 64 << 10
	sent, echoed, generated := 0, 0, 0
	out, in := make([]byte, 512), make([]byte, 4096)
	for i := 0; echoed < size || generated < size || s.tcpSvc.Stats().Discarded < size; i++ {
		require.Less(t, i, 100000, "echoed %d, generated %d, discarded %d", echoed, generated, s.tcpSvc.Stats().Discarded)
		if sent < 2*size {
			for _, c := range []*tcp.Conn{echo, discard} {
				if n, _ := c.Write(out[:min(len(out), 2*size-sent)]); c == echo {
					sent += n
				}
			}
		}
		n, _ := echo.Read(in)
		echoed += n
		n, _ = chargen.Read(in)
		generated += n
		s.round(t)
	}
	assert.EqualValues(t, 4, s.tcpSvc.Stats().Active, "the three and the idle sim's echo connection")
}

// TestIdleConnectionsCostNoWork: the work of a request/response, counted
// as the connections and timers the two stacks touched (tcp.Table.Visits),
// is the same with 10,000 idle connections open as with none, by UDP (the
// inline echo service) and on a TCP echo connection, with the idle ones'
// keepalive timers running (two hours out) or not. Walking every
// connection per round (serve's TCP services did, making a ping 13×
// slower at 20,000), or every far timer when the poller asks for its next
// deadline before it parks (the one-level timer wheel did), counts
// thousands per exchange.
func TestIdleConnectionsCostNoWork(t *testing.T) {
	const exchanges = 100
	perExchange := func(s *idleSim, f func(testing.TB)) float64 {
		f(t) // warm: the first one may carry the handshake's leftovers
		v := s.visits()
		for range exchanges {
			f(t)
		}
		return float64(s.visits()-v) / exchanges
	}
	for _, keepalive := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepalive=%v", keepalive), func(t *testing.T) {
			var udpWork, tcpWork [2]float64
			for i, idle := range []int{0, 10000} {
				s := newIdleSim(t, idle, keepalive)
				udpWork[i] = perExchange(s, s.udpEcho)
				tcpWork[i] = perExchange(s, s.tcpEcho)
				t.Logf("%d idle: %.1f visits per UDP echo, %.1f per TCP echo", idle, udpWork[i], tcpWork[i])
			}
			// Generous: twice the work, and a few visits more.
			assert.LessOrEqual(t, udpWork[1], 2*udpWork[0]+8, "UDP echo's work grows with idle connections")
			assert.LessOrEqual(t, tcpWork[1], 2*tcpWork[0]+8, "TCP echo's work grows with idle connections")
		})
	}
}

// BenchmarkIdleConnections measures a request/response between two
// stacks over the pipe, both pollers on one goroutine, with 0, 1k, 10k
// and 50k idle TCP connections open between them, with keepalive on (a
// timer each, two hours out) or off: ns/op is the round trip, ns/frame
// the cost of each frame sent and received, visits/op the connections
// and timers touched. Each stack holds every connection, so the server
// side (serve's services) and the client side both count.
func BenchmarkIdleConnections(b *testing.B) {
	for _, keepalive := range []bool{false, true} {
		for _, idle := range []int{0, 1000, 10000, 50000} {
			// A benchmark with sub-benchmarks runs once: the connections
			// open once per count, and only for the counts asked for.
			b.Run(fmt.Sprintf("keepalive=%v/idle=%d", keepalive, idle), func(b *testing.B) {
				s := newIdleSim(b, idle, keepalive)
				for _, rr := range []struct {
					name string
					f    func(testing.TB)
				}{{"udp-echo", s.udpEcho}, {"tcp-echo", s.tcpEcho}} {
					b.Run(rr.name, func(b *testing.B) {
						v, fr := s.visits(), s.frames()
						b.ReportAllocs()
						for b.Loop() {
							rr.f(b)
						}
						b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(s.frames()-fr), "ns/frame")
						b.ReportMetric(float64(s.visits()-v)/float64(b.N), "visits/op")
					})
				}
			})
		}
	}
}
