package tcp_test

import (
	"fmt"
	"net/netip"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// An ICMP destination unreachable for the SYN ends the connect with the
// code's errno, whatever the code, as Linux's tcp_v4_err; one quoting a
// sequence number not in flight is ignored (RFC 5927 4.1).
func TestUnreachableEndsConnect(t *testing.T) {
	for _, c := range []struct {
		code  uint8
		errno syscall.Errno
	}{{0, syscall.ENETUNREACH}, {1, syscall.EHOSTUNREACH}, {2, syscall.ENOPROTOOPT}, {3, syscall.ECONNREFUSED},
		{7, syscall.EHOSTDOWN}, {10, syscall.EHOSTUNREACH}, {13, syscall.EHOSTUNREACH}} {
		t.Run(c.errno.Error(), func(t *testing.T) {
			s := newStack(t, tcp.Config{})
			_, conn, iss := dialSYN(t, s)
			s.tb.Unreachable(s.now, conn.LocalAddr(), peerServer, tcp.Seq(iss+1), c.code, false)
			s.tb.Unreachable(s.now, conn.LocalAddr(), peerServer, tcp.Seq(iss-1), c.code, false)
			require.Equal(t, tcp.SynSent, conn.State(), "a sequence number not in flight")
			s.tb.Unreachable(s.now, conn.LocalAddr(), peerServer, tcp.Seq(iss), c.code, false)
			assert.Equal(t, tcp.Closed, conn.State())
			assert.ErrorIs(t, conn.Err(), c.errno)
			assert.ErrorIs(t, conn.Status().Err, c.errno, "published to the app")
			r, ok := s.tb.NextReady()
			require.True(t, ok)
			assert.Same(t, conn, r)
			assert.Equal(t, uint64(1), s.tb.Stats().AttemptFails)
			assert.Equal(t, uint64(1), s.tb.Stats().ICMPErrors)
			s.expectNothing(t)
			s.expectEmpty(t)
		})
	}
}

// On a synchronized connection an ICMP error is soft (Linux, with
// IP_RECVERR off): the connection goes on, and if its retransmissions
// run out it reports that error instead of ETIMEDOUT, unless an ACK of
// new data came since (the path works).
func TestUnreachableSoftWhenEstablished(t *testing.T) {
	for _, acked := range []bool{false, true} {
		t.Run(fmt.Sprintf("acked=%v", acked), func(t *testing.T) {
			s := newStack(t, tcp.Config{Retries: 1, NoTLP: true})
			p, c, iss := clientConn(t, s, 1460)
			_, err := c.Write(data(0, 10))
			require.NoError(t, err)
			p.expect(t, seg{flags: "P.", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 10)})
			s.tb.Unreachable(s.now, c.LocalAddr(), peerServer, tcp.Seq(iss+1), 0, false)
			require.Equal(t, tcp.Established, c.State())
			next := iss + 1
			if acked {
				p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 11, win: 65535})
				_, err = c.Write(data(10, 10))
				require.NoError(t, err)
				p.expect(t, seg{flags: "P.", seq: iss + 11, ack: peerISN + 1, win: fullWin, payload: data(10, 10)})
				next = iss + 11
			}
			s.advanceToDeadline(t)
			p.expect(t, seg{flags: "P.", seq: next, ack: peerISN + 1, win: fullWin, payload: data(int(next-iss-1), 10)})
			s.advanceToDeadline(t)
			s.expectNothing(t)
			assert.Equal(t, tcp.Closed, c.State())
			if acked {
				assert.ErrorIs(t, c.Err(), syscall.ETIMEDOUT, "the ACK forgot the soft error")
			} else {
				assert.ErrorIs(t, c.Err(), syscall.ENETUNREACH, "the soft error, not ETIMEDOUT")
			}
			s.expectEmpty(t)
		})
	}
}

// A listener's half-open connection ends, silently, only on a code RFC
// 1122 4.2.3.9 makes hard.
func TestUnreachableHalfOpen(t *testing.T) {
	s := newStack(t, tcp.Config{})
	_, p := listen(t, s, 4)
	iss := p.isn()
	p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460, ws: wscale(peerShift)})
	p.expect(t, seg{flags: "S.", seq: iss, ack: peerISN + 1, win: s.synWin(), mss: 1460, ws: wscale(s.shift())})
	require.Equal(t, 1, s.tb.Len())
	s.tb.Unreachable(s.now, serverAddr, clientAddr, tcp.Seq(iss), 1, false) // host unreachable: soft
	require.Equal(t, 1, s.tb.Len())
	s.tb.Unreachable(s.now, serverAddr, clientAddr, tcp.Seq(iss), 13, false) // administratively prohibited: hard
	assert.Zero(t, s.tb.Len())
	_, ok := s.tb.NextReady()
	assert.False(t, ok, "the app never saw it")
}

// NeighbourFailed ends the dials whose next hop failed, with
// EHOSTUNREACH, and nothing else: not a dial to another host, not an
// established connection to the same one.
func TestNeighbourFailed(t *testing.T) {
	s := newStack(t, tcp.Config{})
	_, est, _ := clientConn(t, s, 1460)
	_, dial, _ := dialSYN(t, s)
	other, err := s.tb.Dial(s.now, netip.AddrPort{}, netip.MustParseAddrPort("198.18.9.9:80"))
	require.NoError(t, err)
	s.tb.NeighbourFailed(s.now, func(a netip.Addr) bool { return a == peerServer.Addr() })
	assert.Equal(t, tcp.Closed, dial.State())
	assert.ErrorIs(t, dial.Err(), syscall.EHOSTUNREACH)
	assert.Equal(t, tcp.Established, est.State())
	assert.Equal(t, tcp.SynSent, other.State())
}

// The list of dials NeighbourFailed visits stays bounded by the dials in
// progress however many connections were dialled.
func TestDialingListBounded(t *testing.T) {
	s := newStack(t, tcp.Config{})
	for i := range 1000 {
		c, err := s.tb.Dial(s.now, netip.AddrPort{}, netip.AddrPortFrom(peerServer.Addr(), uint16(1000+i)))
		require.NoError(t, err)
		c.Abort()
	}
	assert.LessOrEqual(t, s.tb.Dialing(), 32)
}
