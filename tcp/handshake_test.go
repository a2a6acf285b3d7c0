package tcp_test

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// The table as a server: the SYN,ACK carries our MSS and window scale
// (the peer offered one), the peer's MSS cuts our segments, and the
// peer's window scale applies from the first segment after the SYN.
func TestPassiveOpen(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1000)
	assert.Equal(t, clientAddr, c.RemoteAddr())
	assert.Equal(t, serverAddr, c.LocalAddr())
	assert.Equal(t, uint64(1), s.tb.Stats().PassiveOpens)
	_, ok := s.tb.NextReady()
	assert.False(t, ok, "an accepted connection is the listener's news, not NextReady's")

	// 2500 bytes leave in segments of the peer's MSS, PSH on the last.
	n, err := c.Write(data(0, 2500))
	require.NoError(t, err)
	require.Equal(t, 2500, n)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1000)})
	p.expect(t, seg{flags: ".", seq: iss + 1001, ack: peerISN + 1, win: fullWin, payload: data(1000, 1000)})
	p.expect(t, seg{flags: "P.", seq: iss + 2001, ack: peerISN + 1, win: fullWin, payload: data(2000, 500)})
	s.expectNothing(t)
	assert.Equal(t, 2500, c.Unacked())

	s.advance(10 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 2501, win: 512})
	s.expectNothing(t)
	assert.Equal(t, 0, c.Unacked())
	assert.Zero(t, s.tb.Timers(), "nothing in flight, no timer")
	srtt, _ := c.SRTT()
	assert.Equal(t, 10*ms, srtt, "RTT sample from the first data segment")
}

// A peer that offers neither MSS nor window scale: we send 536-byte
// segments (RFC 9293 3.7.1), offer no window scale in the SYN,ACK (RFC
// 7323 2.2) and announce unscaled windows.
func TestPassiveOpenNoOptions(t *testing.T) {
	s := newStack(t, tcp.Config{})
	l, p := listen(t, s, 1)
	iss := p.isn()
	p.send(t, seg{flags: "S", seq: peerISN, win: 8192})
	p.expect(t, seg{flags: "S.", seq: iss, ack: peerISN + 1, win: 65535, mss: 1460})
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 8192})
	c, err := l.Accept()
	require.NoError(t, err)

	_, err = c.Write(data(0, 600))
	require.NoError(t, err)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: 65535, payload: data(0, 536)})
	p.expect(t, seg{flags: "P.", seq: iss + 537, ack: peerISN + 1, win: 65535, payload: data(536, 64)})

	// The peer's window is not scaled either: 100 bytes is 100 bytes.
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 601, win: 100})
	_, err = c.Write(data(600, 150))
	require.NoError(t, err)
	// 100 of 150 bytes would be a silly small segment (RFC 9293
	// 3.8.6.2.1): less than an MSS and than half the largest window.
	s.expectNothing(t)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 601, win: 150})
	p.expect(t, seg{flags: "P.", seq: iss + 601, ack: peerISN + 1, win: 65535, payload: data(600, 150)})
	s.expectNothing(t)
}

// The table as a client: SYN with MSS and window scale, ACK of the
// SYN,ACK, segments of the peer's MSS.
func TestActiveOpen(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := clientConn(t, s, 1200)
	assert.Equal(t, uint64(1), s.tb.Stats().ActiveOpens)
	r, ok := s.tb.NextReady()
	require.True(t, ok, "the handshake's end is news")
	assert.Same(t, c, r)
	srtt, _ := c.SRTT()
	assert.Equal(t, 100*ms, srtt, "the SYN's round trip is a sample")

	_, err := c.Write(data(0, 1500))
	require.NoError(t, err)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1200)})
	p.expect(t, seg{flags: "P.", seq: iss + 1201, ack: peerISN + 1, win: fullWin, payload: data(1200, 300)})
	s.expectNothing(t)

	// Data from the peer is acknowledged, with our window scaled.
	p.send(t, seg{flags: "P.", seq: peerISN + 1, ack: iss + 1501, win: 1000, payload: data(0, 100)})
	p.expect(t, seg{flags: ".", seq: iss + 1501, ack: peerISN + 101, win: (131072 - 100) >> ourShift})
	assert.Equal(t, data(0, 100), readAll(t, c))
}

// The window of the SYN,ACK is not scaled; every later one is (RFC 7323
// 2.2): the peer's window field 4 with shift 7 is 512 bytes.
func TestActiveOpenPeerWindowScale(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := dialSYN(t, s)
	p.send(t, seg{flags: "S.", seq: peerISN, ack: iss + 1, win: 1000, mss: 1460, ws: wscale(peerShift)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})

	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 4})
	_, err := c.Write(data(0, 2000))
	require.NoError(t, err)
	// Cut to the peer's window, the segment is pushed (Linux's forced push).
	p.expect(t, seg{flags: "P.", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 512)})
	s.expectNothing(t)
}

// A peer whose SYN,ACK has no window scale turns ours off too: our
// windows go unscaled, capped at 65535.
func TestActiveOpenPeerWithoutWindowScale(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := dialSYN(t, s)
	p.send(t, seg{flags: "S.", seq: peerISN, ack: iss + 1, win: 300, mss: 1460})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: 65535})
	_, err := c.Write(data(0, 500))
	require.NoError(t, err)
	p.expect(t, seg{flags: "P.", seq: iss + 1, ack: peerISN + 1, win: 65535, payload: data(0, 300)})
	s.expectNothing(t)
}

// RFC 9293 3.5 figure 8: both ends send a SYN; each answers the other's
// with a SYN,ACK from its own ISS, and the SYN,ACK that arrives in
// SYN-RECEIVED establishes the connection.
func TestSimultaneousOpen(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := dialSYN(t, s)

	s.advance(20 * ms)
	p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1000, ws: wscale(peerShift)})
	p.expect(t, seg{flags: "S.", seq: iss, ack: peerISN + 1, win: synWin, mss: 1460, ws: wscale(ourShift)})
	assert.Equal(t, tcp.SynReceived, c.State())

	s.advance(20 * ms)
	p.send(t, seg{flags: "S.", seq: peerISN, ack: iss + 1, win: 65535, mss: 1000, ws: wscale(peerShift)})
	assert.Equal(t, tcp.Established, c.State())
	// Like Linux, acknowledge the duplicate SYN.
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	s.expectNothing(t)
	assert.Zero(t, s.tb.Timers(), "SYN acknowledged: no retransmission timer")

	// The peer's MSS and window scale hold.
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 12}) // 1536 bytes
	_, err := c.Write(data(0, 1500))
	require.NoError(t, err)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1000)})
	p.expect(t, seg{flags: "P.", seq: iss + 1001, ack: peerISN + 1, win: fullWin, payload: data(1000, 500)})
	s.expectNothing(t)
}

// Simultaneous open where the peer's SYN,ACK is lost and it sends a bare
// ACK: the ACK establishes the connection.
func TestSimultaneousOpenACK(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := dialSYN(t, s)
	p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1000})
	p.expect(t, seg{flags: "S.", seq: iss, ack: peerISN + 1, win: synWin, mss: 1460})
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 65535})
	assert.Equal(t, tcp.Established, c.State())
	s.expectNothing(t)
}

// The SYN is retransmitted with exponential backoff from the initial RTO
// of 1 s; after SynRetries retransmissions the connect fails with
// ETIMEDOUT, after 1+2+4+8 = 15 s with three retries.
func TestSYNRetransmitAndConnectTimeout(t *testing.T) {
	s := newStack(t, tcp.Config{SynRetries: 3})
	c, err := s.tb.Dial(s.now, netip.AddrPort{}, peerServer)
	require.NoError(t, err)
	p := s.peer(c.LocalAddr(), peerServer)
	iss := p.isn()
	p.expect(t, p.syn(iss))
	s.expectNothing(t)
	for _, rto := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		s.expectDeadline(t, s.now+rto)
		s.advance(rto - 1)
		s.expectNothing(t)
		s.advance(1)
		p.expect(t, p.syn(iss))
		s.expectNothing(t)
	}
	s.expectDeadline(t, s.now+8*time.Second)
	s.advance(8 * time.Second)
	s.expectNothing(t)
	assert.Equal(t, tcp.Closed, c.State())
	assert.True(t, errors.Is(c.Err(), syscall.ETIMEDOUT), "err %v", c.Err())
	assert.ErrorIs(t, c.Err(), tcp.ErrTimeout)
	r, ok := s.tb.NextReady()
	require.True(t, ok)
	assert.Same(t, c, r)
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, syscall.ETIMEDOUT)
	_, err = c.Write([]byte("x"))
	assert.ErrorIs(t, err, syscall.ETIMEDOUT)
	st := s.tb.Stats()
	assert.Equal(t, uint64(1), st.AttemptFails)
	assert.Equal(t, uint64(3), st.RetransSegs)
	assert.Equal(t, uint64(4), st.Timeouts)
	s.expectEmpty(t)
}

// Karn's rule on the SYN, without timestamps: the SYN,ACK after a
// retransmitted SYN gives no RTT sample, so the RTO stays the backed-off
// initial one.
func TestSYNRetransmitKarn(t *testing.T) {
	s := newStack(t, tcp.Config{NoTimestamps: true})
	c, err := s.tb.Dial(s.now, netip.AddrPort{}, peerServer)
	require.NoError(t, err)
	p := s.peer(c.LocalAddr(), peerServer)
	iss := p.isn()
	p.expect(t, p.syn(iss))
	s.advance(time.Second)
	p.expect(t, p.syn(iss))
	s.advance(50 * ms)
	p.send(t, seg{flags: "S.", seq: peerISN, ack: iss + 1, win: 65535, mss: 1460})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: 65535})
	srtt, rto := c.SRTT()
	assert.Zero(t, srtt, "no sample")
	assert.Equal(t, 2*time.Second, rto)
}

// ConnectTimeout cuts the SYN retransmissions short.
func TestConnectTimeout(t *testing.T) {
	s := newStack(t, tcp.Config{ConnectTimeout: 2500 * ms, NoTimestamps: true})
	c, err := s.tb.Dial(s.now, netip.AddrPort{}, peerServer)
	require.NoError(t, err)
	p := s.peer(c.LocalAddr(), peerServer)
	iss := p.isn()
	p.expect(t, p.syn(iss))
	s.advance(time.Second)
	p.expect(t, p.syn(iss))
	s.expectDeadline(t, 2500*ms)
	s.advance(1500 * ms)
	s.expectNothing(t)
	assert.ErrorIs(t, c.Err(), syscall.ETIMEDOUT)
	s.expectEmpty(t)
}

// The SYN,ACK is retransmitted too, and a retransmitted SYN in
// SYN-RECEIVED is answered; with SACK in use as without (a half-open
// connection has no SACK state yet: its timeout goes back to the SYN).
func TestSYNACKRetransmit(t *testing.T) {
	for _, sack := range []bool{false, true} {
		t.Run(fmt.Sprintf("sack=%v", sack), func(t *testing.T) {
			s := newStack(t, tcp.Config{})
			l, p := listen(t, s, 1)
			iss := p.isn()
			syn := seg{flags: "S", seq: peerISN, win: 65535, mss: 1460, ws: wscale(peerShift), sackOK: sack}
			synack := seg{flags: "S.", seq: iss, ack: peerISN + 1, win: synWin, mss: 1460, ws: wscale(ourShift), sackOK: sack}
			p.send(t, syn)
			p.expect(t, synack)
			assert.Equal(t, time.Second, s.advanceToDeadline(t))
			p.expect(t, synack)
			assert.Equal(t, 2*time.Second, s.advanceToDeadline(t))
			p.expect(t, synack)
			s.expectNothing(t)
			// The peer's SYN again (its own retransmission): our SYN,ACK
			// again at once, not a bare ACK, as Linux answers.
			s.advance(time.Second)
			p.send(t, syn)
			p.expect(t, synack)
			s.expectNothing(t)
			p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512})
			c, err := l.Accept()
			require.NoError(t, err)
			assert.Equal(t, tcp.Established, c.State())
			assert.Equal(t, sack, c.SACK())
			s.expectNothing(t)
			assert.Zero(t, s.tb.Timers())
		})
	}
}

// A listener answers an ACK that matches no connection with a RST whose
// sequence number is the ACK's acknowledgment (RFC 9293 3.10.7.2).
func TestListenerACKDrawsRST(t *testing.T) {
	s := newStack(t, tcp.Config{})
	_, p := listen(t, s, 1)
	p.send(t, seg{flags: ".", seq: 100, ack: 777, win: 100})
	p.expect(t, seg{flags: "R", seq: 777})
	p.send(t, seg{flags: "R", seq: 100})
	p.send(t, seg{flags: "F", seq: 100}) // neither SYN nor ACK: dropped
	s.expectNothing(t)
	assert.Zero(t, s.tb.Len())
}

// The handshake's last ACK must acknowledge our SYN exactly; another one
// draws a RST and leaves the half-open connection be.
func TestSynReceivedBadACK(t *testing.T) {
	s := newStack(t, tcp.Config{})
	l, p := listen(t, s, 1)
	iss := p.isn()
	p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	p.expect(t, seg{flags: "S.", seq: iss, ack: peerISN + 1, win: 65535, mss: 1460})
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 7, win: 100})
	p.expect(t, seg{flags: "R", seq: iss + 7})
	_, err := l.Accept()
	assert.ErrorIs(t, err, tcp.ErrWouldBlock)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 100})
	_, err = l.Accept()
	assert.NoError(t, err)
}

// Listen's backlog bounds the accept queue and Config.SynBacklog the
// half-open connections. Without SYN cookies, a SYN that finds the SYN
// queue full takes the place of the oldest half-open connection, which is
// dropped silently and counted as ListenDrops.
func TestListenSynQueueEvictsOldest(t *testing.T) {
	s := newStack(t, tcp.Config{SynBacklog: 2, NoSyncookies: true})
	l, err := s.tb.Listen(serverAddr, 8)
	require.NoError(t, err)
	var peers []*peer
	var isss []uint32
	for i := range 3 {
		p := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, uint16(40000+i)))
		peers, isss = append(peers, p), append(isss, p.isn())
		p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
		p.expect(t, seg{flags: "S.", seq: isss[i], ack: peerISN + 1, win: 65535, mss: 1460})
		s.advance(ms)
	}
	s.expectNothing(t)
	assert.Equal(t, 2, s.tb.Len())
	assert.Equal(t, 2, l.HalfOpen())
	st := s.tb.Stats()
	assert.Equal(t, uint64(1), st.ListenDrops)
	assert.Zero(t, st.ListenOverflows)
	assert.Equal(t, uint64(1), st.AttemptFails)

	// The first is gone: its ACK draws a reset. The other two complete.
	peers[0].send(t, seg{flags: ".", seq: peerISN + 1, ack: isss[0] + 1, win: 100})
	peers[0].expect(t, seg{flags: "R", seq: isss[0] + 1})
	for i, p := range peers[1:] {
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: isss[i+1] + 1, win: 100})
		c, err := l.Accept()
		require.NoError(t, err)
		assert.Equal(t, p.remote, c.RemoteAddr())
	}
	assert.Zero(t, l.HalfOpen())
}

func TestListenAcceptQueueLimit(t *testing.T) {
	s := newStack(t, tcp.Config{})
	l, err := s.tb.Listen(serverAddr, 1)
	require.NoError(t, err)
	p1 := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, 40001))
	p2 := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, 40002))
	p3 := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, 40003))
	iss1, iss2 := p1.isn(), p2.isn()
	p1.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	p1.expect(t, seg{flags: "S.", seq: iss1, ack: peerISN + 1, win: 65535, mss: 1460})
	p2.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	p2.expect(t, seg{flags: "S.", seq: iss2, ack: peerISN + 1, win: 65535, mss: 1460})

	// p1 fills the accept queue.
	p1.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss1 + 1, win: 100})
	assert.Equal(t, 1, l.Pending())
	// p2's ACK is dropped: it stays half-open (Linux), counted.
	p2.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss2 + 1, win: 100})
	s.expectNothing(t)
	assert.Equal(t, 1, l.Pending())
	assert.Equal(t, uint64(1), s.tb.Stats().ListenOverflows)
	// p3's SYN is dropped while the accept queue is full.
	p3.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	s.expectNothing(t)
	st := s.tb.Stats()
	assert.Equal(t, uint64(2), st.ListenOverflows)
	assert.Equal(t, uint64(2), st.ListenDrops) // each overflow is a drop too, as Linux counts

	assert.Equal(t, 2, s.tb.Len())

	// The app accepts p1; p2's SYN,ACK retransmission draws its ACK again,
	// which now gets in.
	c1, err := l.Accept()
	require.NoError(t, err)
	assert.Equal(t, p1.remote, c1.RemoteAddr())
	s.advance(time.Second)
	p2.expect(t, seg{flags: "S.", seq: iss2, ack: peerISN + 1, win: 65535, mss: 1460})
	p2.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss2 + 1, win: 100})
	c2, err := l.Accept()
	require.NoError(t, err)
	assert.Equal(t, p2.remote, c2.RemoteAddr())
	assert.Equal(t, tcp.Established, c2.State())
}

// A RST to a half-open passive connection sends it back to LISTEN
// silently (RFC 9293 3.10.7.4): the app never hears of it.
func TestSynReceivedRST(t *testing.T) {
	s := newStack(t, tcp.Config{SynBacklog: 1})
	l, p := listen(t, s, 1)
	iss := p.isn()
	p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	p.expect(t, seg{flags: "S.", seq: iss, ack: peerISN + 1, win: 65535, mss: 1460})
	p.send(t, seg{flags: "R", seq: peerISN + 1})
	s.expectNothing(t)
	s.expectEmpty(t)
	_, ok := s.tb.NextReady()
	assert.False(t, ok)
	_, err := l.Accept()
	assert.ErrorIs(t, err, tcp.ErrWouldBlock)
	// Its place in the SYN queue is free again.
	p2 := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, 40009))
	iss2 := p2.isn()
	p2.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	p2.expect(t, seg{flags: "S.", seq: iss2, ack: peerISN + 1, win: 65535, mss: 1460})
}

// A SYN in SYN-RECEIVED within the window sends the passive connection
// back to LISTEN (RFC 9293 3.10.7.4, fourth).
func TestSynReceivedSYNInWindow(t *testing.T) {
	s := newStack(t, tcp.Config{})
	_, p := listen(t, s, 1)
	iss := p.isn()
	p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	p.expect(t, seg{flags: "S.", seq: iss, ack: peerISN + 1, win: 65535, mss: 1460})
	p.send(t, seg{flags: "S", seq: peerISN + 10, win: 65535, mss: 1460})
	s.expectNothing(t)
	assert.Zero(t, s.tb.Len())
}

// Dial's ephemeral ports skip those that carry a connection to the same
// peer or a listener.
func TestEphemeralPortAvoidsPortsInUse(t *testing.T) {
	// With the same secret, two tables start their search at the same port.
	first := func() uint16 {
		s := newStack(t, tcp.Config{})
		c, err := s.tb.Dial(0, netip.AddrPort{}, peerServer)
		require.NoError(t, err)
		return c.LocalAddr().Port()
	}
	port := first()
	assert.GreaterOrEqual(t, port, uint16(32768))
	assert.LessOrEqual(t, port, uint16(60999))
	assert.Equal(t, port, first(), "deterministic with a fixed secret")

	// A listener on that port: skipped.
	s := newStack(t, tcp.Config{})
	_, err := s.tb.Listen(netip.AddrPortFrom(netip.IPv4Unspecified(), port), 1)
	require.NoError(t, err)
	c, err := s.tb.Dial(0, netip.AddrPort{}, peerServer)
	require.NoError(t, err)
	assert.NotEqual(t, port, c.LocalAddr().Port())

	// A connection to the same peer on that port: skipped; one to
	// another peer does not matter.
	s = newStack(t, tcp.Config{})
	_, err = s.tb.Dial(0, netip.AddrPortFrom(localAddr, port), netip.AddrPortFrom(remoteAddr, 81))
	require.NoError(t, err)
	c1, err := s.tb.Dial(0, netip.AddrPortFrom(localAddr, port), peerServer)
	require.NoError(t, err)
	_, err = s.tb.Dial(0, netip.AddrPortFrom(localAddr, port), peerServer)
	assert.ErrorIs(t, err, syscall.EADDRINUSE)
	c2, err := s.tb.Dial(0, netip.AddrPort{}, peerServer)
	require.NoError(t, err)
	assert.NotEqual(t, c1.LocalAddr().Port(), c2.LocalAddr().Port())

	// A range of one port in use: no port left.
	s = newStack(t, tcp.Config{EphemeralLo: 40000, EphemeralHi: 40000})
	c, err = s.tb.Dial(0, netip.AddrPort{}, peerServer)
	require.NoError(t, err)
	assert.Equal(t, uint16(40000), c.LocalAddr().Port())
	_, err = s.tb.Dial(0, netip.AddrPort{}, peerServer)
	assert.ErrorIs(t, err, syscall.EADDRNOTAVAIL)
	c, err = s.tb.Dial(0, netip.AddrPort{}, netip.AddrPortFrom(remoteAddr, 81))
	require.NoError(t, err, "another peer may share the port")
	assert.Equal(t, uint16(40000), c.LocalAddr().Port())
}

// Closing a listener resets the connections it had not handed out, and
// the app hears nothing of them.
func TestListenerCloseResetsQueued(t *testing.T) {
	s := newStack(t, tcp.Config{})
	l, err := s.tb.Listen(serverAddr, 4)
	require.NoError(t, err)
	p1 := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, 40001))
	p2 := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, 40002))
	iss1, iss2 := p1.isn(), p2.isn()
	p1.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	p1.expect(t, seg{flags: "S.", seq: iss1, ack: peerISN + 1, win: 65535, mss: 1460})
	p1.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss1 + 1, win: 100}) // accept queue
	p2.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	p2.expect(t, seg{flags: "S.", seq: iss2, ack: peerISN + 1, win: 65535, mss: 1460}) // SYN queue
	require.NoError(t, l.Close())
	p1.expect(t, seg{flags: "R.", seq: iss1 + 1, ack: peerISN + 1})
	p2.expect(t, seg{flags: "R.", seq: iss2 + 1, ack: peerISN + 1})
	s.expectNothing(t)
	s.expectEmpty(t)
	_, ok := s.tb.NextReady()
	assert.False(t, ok)
	_, err = l.Accept()
	assert.ErrorIs(t, err, tcp.ErrListenerClosed)
	// The port is free and closed: a SYN draws a RST.
	p1.send(t, seg{flags: "S", seq: 9000, win: 65535})
	p1.expect(t, seg{flags: "R.", seq: 0, ack: 9001})
}

// Listeners and Conns walk the table for a socket table, allocating
// nothing: a listener with its queue and backlog (netstat's Recv-Q and
// Send-Q for LISTEN), its half-open and established connections.
func TestTableWalk(t *testing.T) {
	s := newStack(t, tcp.Config{})
	l, err := s.tb.Listen(serverAddr, 4)
	require.NoError(t, err)
	l.Held = func() int { return 2 }
	p1 := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, 40001))
	p2 := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, 40002))
	iss1 := p1.isn()
	p1.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	p1.expect(t, seg{flags: "S.", seq: iss1, ack: peerISN + 1, win: 65535, mss: 1460})
	p1.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss1 + 1, win: 100})
	p2.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	p2.expect(t, seg{flags: "S.", seq: p2.isn(), ack: peerISN + 1, win: 65535, mss: 1460})

	var ls []*tcp.Listener
	s.tb.Listeners(func(l *tcp.Listener) { ls = append(ls, l) })
	require.Equal(t, []*tcp.Listener{l}, ls)
	assert.Equal(t, 3, l.Queued(), "one in the accept queue, two held")
	assert.Equal(t, 4, l.Backlog())
	states := map[netip.AddrPort]tcp.State{}
	s.tb.Conns(func(c *tcp.Conn) { states[c.RemoteAddr()] = c.State() })
	assert.Equal(t, map[netip.AddrPort]tcp.State{p1.remote: tcp.Established, p2.remote: tcp.SynReceived}, states)
	assert.Zero(t, testing.AllocsPerRun(10, func() {
		s.tb.Listeners(func(*tcp.Listener) {})
		s.tb.Conns(func(*tcp.Conn) {})
	}))
	require.NoError(t, l.Close())
	ls = nil
	s.tb.Listeners(func(l *tcp.Listener) { ls = append(ls, l) })
	assert.Empty(t, ls)
}
