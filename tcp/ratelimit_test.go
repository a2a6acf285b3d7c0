package tcp_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// Out-of-window segments without data are acknowledged at most once per
// 500 ms (RFC 5961 7, Linux's tcp_invalid_ratelimit); ones with data or a
// FIN every time, as Linux's tcp_oow_rate_limited exempts them.
func TestOutOfWindowACKRateLimit(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, _, iss := serverConn(t, s, 1460)
	ack := seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin}
	beyond := uint32(peerISN + 1 + 1<<20)

	p.send(t, seg{flags: ".", seq: beyond, ack: iss + 1, win: 512})
	p.expect(t, ack)
	p.send(t, seg{flags: ".", seq: beyond, ack: iss + 1, win: 512})
	s.expectNothing(t)
	s.advance(499 * ms)
	p.send(t, seg{flags: "S.", seq: beyond, ack: iss + 1, win: 512})
	s.expectNothing(t)
	for range 3 { // exempt: they do not count either
		p.send(t, seg{flags: "P.", seq: beyond, ack: iss + 1, win: 512, payload: data(0, 10)})
		p.expect(t, ack)
		p.send(t, seg{flags: "F.", seq: beyond, ack: iss + 1, win: 512})
		p.expect(t, ack)
	}
	s.advance(1 * ms)
	p.send(t, seg{flags: ".", seq: beyond, ack: iss + 1, win: 512})
	p.expect(t, ack)
	st := s.tb.Stats()
	assert.Equal(t, uint64(1), st.ACKSkippedSeq)
	assert.Equal(t, uint64(1), st.SYNChallenges, "the SYN,ACK out of the window")
	assert.Equal(t, uint64(1), st.ACKSkippedChallenge)

	// A negative limit turns the throttle off.
	s = newStack(t, tcp.Config{InvalidRateLimit: -1})
	p, _, iss = serverConn(t, s, 1460)
	for range 3 {
		p.send(t, seg{flags: ".", seq: beyond, ack: iss + 1, win: 512})
		p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	}
}

// Challenge ACKs (an in-window RST, an in-window SYN, an ACK of data
// never sent) share the connection's 500 ms limit.
func TestChallengeACKRateLimit(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1460)
	ack := seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin}

	p.send(t, seg{flags: "R", seq: peerISN + 100})
	p.expect(t, ack)
	p.send(t, seg{flags: "R", seq: peerISN + 200})
	p.send(t, seg{flags: "S", seq: peerISN + 100, win: 65535})
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1000, win: 512})
	p.send(t, seg{flags: "SF", seq: peerISN + 100, win: 65535})
	s.expectNothing(t)
	s.advance(500 * ms)
	p.send(t, seg{flags: "S", seq: peerISN + 100, win: 65535})
	p.expect(t, ack)
	s.expectNothing(t)
	assert.Equal(t, tcp.Established, c.State())
	st := s.tb.Stats()
	assert.Equal(t, uint64(2), st.ChallengeACKs)
	assert.Equal(t, uint64(4), st.ACKSkippedChallenge)
	assert.Equal(t, uint64(3), st.SYNChallenges)
}

// The table's challenge ACKs per second are bounded across connections:
// with a limit of 10, each second allows between 5 and 14 (Linux draws
// from [limit/2, limit/2 + limit)), a count that changes from second to
// second.
func TestChallengeACKBudget(t *testing.T) {
	const limit, conns = 10, 40
	s := newStack(t, tcp.Config{ChallengeACKLimit: limit})
	l, err := s.tb.Listen(serverAddr, conns)
	require.NoError(t, err)
	var peers []*peer
	var isses []uint32
	for i := range conns {
		p := s.peer(serverAddr, netip.AddrPortFrom(remoteAddr, uint16(40000+i)))
		iss := p.isn()
		p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
		p.expect(t, seg{flags: "S.", seq: iss, ack: peerISN + 1, win: synWin, mss: 1460})
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 65535})
		_, err := l.Accept()
		require.NoError(t, err)
		peers, isses = append(peers, p), append(isses, iss)
	}
	counts := map[int]bool{}
	for sec := range 8 {
		s.advance(time.Second) // a new second, and past every connection's limit
		sent := 0
		for i, p := range peers {
			p.send(t, seg{flags: "R", seq: peerISN + 100})
			if got, _, _, ok := s.next(t); ok {
				require.Equal(t, seg{flags: ".", seq: isses[i] + 1, ack: peerISN + 1, win: 65535}.String(), got.String())
				sent++
			}
		}
		s.expectNothing(t)
		assert.GreaterOrEqual(t, sent, limit/2, "second %d", sec)
		assert.Less(t, sent, limit/2+limit, "second %d", sec)
		counts[sent] = true
	}
	assert.Greater(t, len(counts), 1, "the budget is drawn afresh each second")
	assert.Zero(t, s.tb.Stats().ACKSkippedChallenge, "each connection sent one per second")

	// A negative limit sets no bound.
	s = newStack(t, tcp.Config{ChallengeACKLimit: -1})
	p, _, iss := serverConn(t, s, 1460)
	for range 3 {
		s.advance(time.Second)
		p.send(t, seg{flags: "R", seq: peerISN + 100})
		p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	}
}

// In SYN-RECEIVED the peer's SYN again draws our SYN,ACK again, at most
// once per 500 ms (Linux's tcp_check_req, TCPACKSkippedSynRecv).
func TestSynRecvSYNRateLimit(t *testing.T) {
	s := newStack(t, tcp.Config{})
	_, p := listen(t, s, 1)
	iss := p.isn()
	syn := seg{flags: "S", seq: peerISN, win: 65535, mss: 1460}
	synack := seg{flags: "S.", seq: iss, ack: peerISN + 1, win: synWin, mss: 1460}
	p.send(t, syn)
	p.expect(t, synack)
	p.send(t, syn)
	p.expect(t, synack)
	for range 5 {
		p.send(t, syn)
	}
	s.expectNothing(t)
	s.advance(500 * ms)
	p.send(t, syn)
	p.expect(t, synack)
	assert.Equal(t, uint64(5), s.tb.Stats().ACKSkippedSynRecv)
}

// TIME-WAIT acknowledges a retransmitted FIN every time, and other
// unacceptable segments at most once per 500 ms (TCPACKSkippedTimeWait).
func TestTimeWaitACKRateLimit(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := clientConn(t, s, 1460)
	require.NoError(t, c.Close())
	p.expect(t, seg{flags: "F.", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	p.send(t, seg{flags: "F.", seq: peerISN + 1, ack: iss + 2, win: 512})
	ack := seg{flags: ".", seq: iss + 2, ack: peerISN + 2, win: (131072 - 1) >> ourShift}
	p.expect(t, ack)
	require.Equal(t, tcp.TimeWait, c.State())
	for range 3 {
		p.send(t, seg{flags: "F.", seq: peerISN + 1, ack: iss + 2, win: 512})
		p.expect(t, ack)
	}
	p.send(t, seg{flags: ".", seq: peerISN + 1<<20, ack: iss + 2, win: 512})
	p.expect(t, ack)
	p.send(t, seg{flags: ".", seq: peerISN + 1<<20, ack: iss + 2, win: 512})
	p.send(t, seg{flags: "S", seq: peerISN + 2, win: 512}) // in the window, no listener to reopen
	s.expectNothing(t)
	assert.Equal(t, uint64(2), s.tb.Stats().ACKSkippedTimeWait)
	assert.Zero(t, s.tb.Stats().ChallengeACKs)
}
