package tcp_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// TestKeepalive: after the idle time with nothing in flight, a probe one
// byte before the peer's expectation; an answer restarts the idle spell,
// and unanswered probes every interval end the connection with ETIMEDOUT
// after nine.
func TestKeepalive(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := clientConn(t, s, 1460)
	c.SetKeepAlivePeriod(10*time.Second, time.Second)
	c.SetKeepAlive(true)
	assert.Equal(t, 10*time.Second, s.advanceToDeadline(t))
	probe := seg{flags: ".", seq: iss, ack: peerISN + 1, win: fullWin}
	p.expect(t, probe)
	s.expectNothing(t)

	s.advance(100 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: fullWin})
	s.expectNothing(t)
	// Alive: the next probe comes an idle spell after that answer.
	s.advance(10*time.Second - 1)
	s.expectNothing(t)
	s.advance(1)
	p.expect(t, probe)
	for i := range 8 {
		assert.Equal(t, time.Second, s.advanceToDeadline(t), "probe %d", i+2)
		p.expect(t, probe)
	}
	s.advanceToDeadline(t)
	s.expectNothing(t)
	require.ErrorIs(t, c.Err(), syscall.ETIMEDOUT)
	assert.Equal(t, tcp.Closed, c.State())
	s.expectEmpty(t)
}

// TestKeepaliveCount: SetKeepAliveCount(3) ends an unanswered
// connection after three probes, not nine; a period of zero leaves the
// interval already set.
func TestKeepaliveCount(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := clientConn(t, s, 1460)
	c.SetKeepAlivePeriod(10*time.Second, time.Second)
	c.SetKeepAlivePeriod(5*time.Second, 0)
	c.SetKeepAliveCount(3)
	c.SetKeepAliveCount(0)
	c.SetKeepAlive(true)
	assert.Equal(t, 5*time.Second, s.advanceToDeadline(t))
	probe := seg{flags: ".", seq: iss, ack: peerISN + 1, win: fullWin}
	p.expect(t, probe)
	for i := range 2 {
		assert.Equal(t, time.Second, s.advanceToDeadline(t), "probe %d", i+2)
		p.expect(t, probe)
	}
	s.advanceToDeadline(t)
	s.expectNothing(t)
	require.ErrorIs(t, c.Err(), syscall.ETIMEDOUT)
	s.expectEmpty(t)
}
