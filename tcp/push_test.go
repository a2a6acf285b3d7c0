package tcp_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// A segment cut short by the peer's window with data behind it carries
// PSH (Linux's tcp_write_wakeup), though the data since the last PSH is
// far from half the peer's largest window (forced push): the persist
// timer's probe into a window too small for the sender's silly window
// avoidance.
func TestPushOnWindowCut(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := clientConn(t, s, 1460) // the peer's largest window: 65535
	_, err := c.Write(data(0, 1000))
	require.NoError(t, err)
	p.expect(t, seg{flags: "P.", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1000)})
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1001, win: 1}) // 128 bytes
	_, err = c.Write(data(1000, 1000))
	require.NoError(t, err)
	s.expectNothing(t) // 128 bytes: silly (RFC 9293 3.8.6.2.1)
	s.advanceToDeadline(t)
	p.expect(t, seg{flags: "P.", seq: iss + 1001, ack: peerISN + 1, win: fullWin, payload: data(1000, 128)})
	s.expectNothing(t)
}

// A segment cut to cwnd is full-size and carries no PSH (Linux leaves it
// on the part that waits); the last of the write does. Past half the
// largest window the peer offered since the last PSH, a segment is
// pushed anyway (Linux's forced_push).
func TestPushLastAndForced(t *testing.T) {
	t.Run("cwnd", func(t *testing.T) {
		s := newStack(t, tcp.Config{})
		p, c, iss := clientConn(t, s, 1460)
		_, err := c.Write(data(0, 20000))
		require.NoError(t, err)
		for i := range 10 { // the initial window
			p.expect(t, seg{flags: ".", seq: iss + 1 + uint32(1460*i), ack: peerISN + 1, win: fullWin, payload: data(1460*i, 1460)})
		}
		s.expectNothing(t)
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + 14600, win: 512})
		for i := 10; i < 13; i++ {
			p.expect(t, seg{flags: ".", seq: iss + 1 + uint32(1460*i), ack: peerISN + 1, win: fullWin, payload: data(1460*i, 1460)})
		}
		p.expect(t, seg{flags: "P.", seq: iss + 1 + 18980, ack: peerISN + 1, win: fullWin, payload: data(18980, 1020)})
		s.expectNothing(t)
	})
	t.Run("forced", func(t *testing.T) {
		// The peer's largest window is 8192: a PSH at least every 4096.
		s := newStack(t, tcp.Config{})
		p, c, iss := dialSYN(t, s)
		s.advance(100 * ms)
		p.send(t, seg{flags: "S.", seq: peerISN, ack: iss + 1, win: 8192, mss: 1460, ws: wscale(peerShift)})
		p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
		_, err := c.Write(data(0, 20000))
		require.NoError(t, err)
		for i, flags := range []string{".", ".", "P.", ".", "."} {
			p.expect(t, seg{flags: flags, seq: iss + 1 + uint32(1460*i), ack: peerISN + 1, win: fullWin, payload: data(1460*i, 1460)})
		}
		// 892 bytes of window left: a silly small segment (RFC 9293
		// 3.8.6.2.1), not sent.
		s.expectNothing(t)
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + 7300, win: 8192 >> peerShift})
		for i, flags := range []string{"P.", ".", ".", "P.", "."} {
			at := 7300 + 1460*i
			p.expect(t, seg{flags: flags, seq: iss + 1 + uint32(at), ack: peerISN + 1, win: fullWin, payload: data(at, 1460)})
		}
		s.expectNothing(t)
	})
}
