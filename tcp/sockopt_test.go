package tcp_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// TCP_USER_TIMEOUT: data unacknowledged for the user timeout ends the
// connection then, the last retransmission timer cut short to fire on
// time, although Retries would allow many more.
func TestUserTimeoutRetransmissions(t *testing.T) {
	s := newStack(t, tcp.Config{NoTLP: true})
	p, c, iss := clientConn(t, s, 1460)
	c.SetUserTimeout(time.Second)
	_, err := c.Write(data(0, 10))
	require.NoError(t, err)
	sent := s.now
	p.expect(t, seg{flags: "P.", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 10)})
	resend := seg{flags: "P.", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 10)}
	assert.Equal(t, 300*ms, s.advanceToDeadline(t)) // RTO 300 ms: one sample of 100 ms
	p.expect(t, resend)
	assert.Equal(t, 600*ms, s.advanceToDeadline(t))
	p.expect(t, resend)
	assert.Equal(t, 100*ms, s.advanceToDeadline(t), "cut to the user timeout")
	assert.Equal(t, sent+time.Second, s.now)
	s.expectNothing(t)
	assert.Equal(t, tcp.Closed, c.State())
	assert.ErrorIs(t, c.Err(), syscall.ETIMEDOUT)
	s.expectEmpty(t)
}

// An ACK of new data restarts the user timeout's count.
func TestUserTimeoutCountsFromProgress(t *testing.T) {
	s := newStack(t, tcp.Config{NoTLP: true})
	p, c, iss := clientConn(t, s, 1460)
	c.SetUserTimeout(time.Second)
	_, err := c.Write(data(0, 20))
	require.NoError(t, err)
	p.expect(t, seg{flags: "P.", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 20)})
	s.advance(900 * ms)
	p.expect(t, seg{flags: "P.", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 20)})
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 11, win: 65535}) // half of it, at 900 ms
	progress := s.now
	for c.State() != tcp.Closed {
		s.advanceToDeadline(t)
		require.LessOrEqual(t, s.now, progress+time.Second)
	}
	assert.Equal(t, progress+time.Second, s.now, "a second after the ACK, not after the send")
}

// The user timeout bounds zero-window probing too: probes the peer
// answers with a closed window keep the connection alive without it,
// and end it after the user timeout with it.
func TestUserTimeoutZeroWindow(t *testing.T) {
	for _, ut := range []time.Duration{0, 5 * time.Second} {
		s := newStack(t, tcp.Config{NoTLP: true})
		p, c, iss := clientConn(t, s, 1460)
		c.SetUserTimeout(ut)
		p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 0})
		_, err := c.Write(data(0, 10))
		require.NoError(t, err)
		s.expectNothing(t) // the window is closed: the persist timer starts
		start := s.now
		for s.now < start+30*time.Second && c.State() != tcp.Closed {
			s.advanceToDeadline(t)
			for out, _, _, ok := s.next(t); ok; out, _, _, ok = s.next(t) {
				if len(out.payload) > 0 { // a probe: answered, the window still closed
					p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 0})
				}
			}
		}
		if ut == 0 {
			assert.Equal(t, tcp.Established, c.State(), "answered probes go on")
		} else {
			assert.Equal(t, tcp.Closed, c.State())
			assert.ErrorIs(t, c.Err(), syscall.ETIMEDOUT)
			assert.GreaterOrEqual(t, s.now, start+ut)
			assert.Less(t, s.now, start+ut+5*time.Second, "within a probe interval of the bound")
		}
	}
}

// TCP_LINGER2: an orphaned FIN-WAIT-2 lasts what SetFinWait2Timeout says.
func TestFinWait2TimeoutOption(t *testing.T) {
	s := newStack(t, tcp.Config{MSL: time.Minute})
	p, c, iss := serverConn(t, s, 1460)
	c.SetFinWait2Timeout(3 * time.Second)
	require.NoError(t, c.Close())
	p.expect(t, seg{flags: "F.", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 2, win: 512})
	require.Equal(t, tcp.FinWait2, c.State())
	s.expectDeadline(t, s.now+3*time.Second)
	s.advance(3 * time.Second)
	assert.Equal(t, tcp.Closed, c.State())
	s.expectEmpty(t)
}

// TCP_CORK: partial segments wait while corked; full ones go; uncorking
// sends the rest at once, and a partial segment held 200 ms goes anyway.
func TestCork(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := clientConn(t, s, 1000)
	c.SetCork(true)
	_, err := c.Write(data(0, 600))
	require.NoError(t, err)
	s.expectNothing(t)
	_, err = c.Write(data(600, 600))
	require.NoError(t, err)
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin, payload: data(0, 1000)})
	s.expectNothing(t)
	c.SetCork(false)
	p.expect(t, seg{flags: "P.", seq: iss + 1001, ack: peerISN + 1, win: fullWin, payload: data(1000, 200)})
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1201, win: 65535})

	c.SetCork(true)
	_, err = c.Write(data(1200, 10))
	require.NoError(t, err)
	s.expectNothing(t)
	s.expectDeadline(t, s.now+200*ms)
	s.advance(200*ms - 1)
	s.expectNothing(t)
	s.advance(1)
	p.expect(t, seg{flags: "P.", seq: iss + 1201, ack: peerISN + 1, win: fullWin, payload: data(1200, 10)})
}

// With a user timeout, unanswered keepalive probes end the connection
// once one is out and nothing came for the user timeout, however many
// TCP_KEEPCNT allows, as Linux's tcp_keepalive_timer.
func TestUserTimeoutKeepalive(t *testing.T) {
	for _, ut := range []time.Duration{0, 2500 * ms} {
		s := newStack(t, tcp.Config{})
		_, c, _ := clientConn(t, s, 1460)
		c.SetKeepAlive(true)
		c.SetKeepAlivePeriod(time.Second, time.Second)
		c.SetUserTimeout(ut)
		idleFrom := s.now
		for c.State() != tcp.Closed {
			require.Less(t, s.now, idleFrom+time.Minute, "the probes never ended it")
			s.advanceToDeadline(t)
			for _, _, _, ok := s.next(t); ok; _, _, _, ok = s.next(t) {
			}
		}
		if ut == 0 {
			assert.Equal(t, idleFrom+10*time.Second, s.now, "9 probes a second apart after 1 s idle")
		} else {
			assert.Equal(t, idleFrom+3*time.Second, s.now, "the first probe round past 2.5 s")
		}
		assert.ErrorIs(t, c.Err(), syscall.ETIMEDOUT)
	}
}
