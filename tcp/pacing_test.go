package tcp_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// pacedConn is a passive connection with Config.Pacing, no timestamps
// (segments of 1460 bytes) and a 10 ms SRTT from the handshake, its app
// having written n segments; the first 10 (the initial window) are
// expected at once, unpaced, at 10 ms.
func pacedConn(t *testing.T, n int) (*stack, *peer, *tcp.Conn, uint32) {
	t.Helper()
	s := newStack(t, tcp.Config{Pacing: true, NoTimestamps: true})
	p, c, iss := serverConn(t, s, 1460)
	require.True(t, c.Pacing())
	w, err := c.Write(data(0, n*1460))
	require.NoError(t, err)
	require.Equal(t, n*1460, w)
	for i := range 10 {
		p.expect(t, pacedSeg(iss, i, 0))
	}
	s.expectNothing(t)
	return s, p, c, iss
}

// pacedSeg is the i-th full segment of pacedConn's stream, once the peer
// sent got bytes (unread, so the window shrinks by them). The 23rd
// carries PSH: it passes half the peer's 64 KiB window since the last
// (markPush's forced push).
func pacedSeg(iss uint32, i, got int) seg {
	flags := "."
	if i == 22 {
		flags = "P."
	}
	return seg{flags: flags, seq: iss + 1 + uint32(i*1460), ack: peerISN + 1 + uint32(got),
		win: uint16((128<<10 - got) >> ourShift), payload: data(i*1460, 1460)}
}

// A paced connection releases its data at the rate tcp_update_pacing_rate
// computes, in bursts of the quantum, each at its exact time: the
// initial window goes at once; once the peer acknowledges it (cwnd 20
// segments, SRTT 10 ms, slow start), the rate is 200 % × 29,200 B /
// 10 ms = 5.84 MB/s, a quantum is max(2 segments, 1 ms of data) =
// 5,840 B, 4 segments, and each segment takes 250 µs of it. The first
// burst begins late (the connection had nothing to send for 10 ms), so
// it keeps half a quantum as credit: bursts at 20, 20.5, 21.5 and 22.5
// ms, 4 segments each, until cwnd is full (20 segments in flight after
// the burst at 23.5 ms): 5.84 MB/s from the first burst's end. An ACK
// owed while data waits goes alone, at once.
func TestPacingReleasesAtRate(t *testing.T) {
	s, p, c, iss := pacedConn(t, 40)
	require.Equal(t, uint64(2*14600*100), c.Info().PacingRate, "200 %% of the initial window per 10 ms")

	s.advance(10 * ms) // 20 ms: the initial window acknowledged, an RTT of 10 ms
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + 10*1460, win: 512})
	i := c.Info()
	require.Equal(t, uint32(29200), i.Cwnd)
	require.Equal(t, 10*ms, i.RTT)
	require.Equal(t, uint64(5840000), i.PacingRate)

	next, got := 10, 0
	for _, at := range []time.Duration{20 * ms, 20500 * time.Microsecond, 21500 * time.Microsecond, 22500 * time.Microsecond, 23500 * time.Microsecond} {
		if at > s.now {
			s.expectDeadline(t, at)
			s.advanceToDeadline(t)
		}
		for range 4 {
			p.expect(t, pacedSeg(iss, next, got))
			next++
		}
		s.expectNothing(t)
		if at == 20*ms {
			// Data from the peer while ours waits: its ACK goes alone.
			s.advance(200 * time.Microsecond)
			p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + 10*1460, win: 512, payload: data(0, 100)})
			got = 100
			p.expect(t, seg{flags: ".", seq: iss + 1 + 14*1460, ack: peerISN + 1 + uint32(got), win: (128<<10 - 100) >> ourShift})
			s.expectNothing(t)
			s.expectDeadline(t, 20500*time.Microsecond)
		}
	}
	require.Equal(t, uint32(20*1460), c.Info().InFlight, "cwnd full")
	require.Equal(t, 30, next)
	d, ok := s.tb.Deadline()
	require.True(t, ok)
	require.Greater(t, d, 30*ms, "only the retransmission timer runs")
}

// Pacing turned off on a held connection releases it at once: the rest
// of cwnd (16 segments) goes in one burst, and no pacing timer is left.
func TestPacingOffReleases(t *testing.T) {
	s, p, c, iss := pacedConn(t, 40)
	s.advance(10 * ms)
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1 + 10*1460, win: 512})
	for i := 10; i < 14; i++ {
		p.expect(t, pacedSeg(iss, i, 0))
	}
	s.expectNothing(t)
	s.expectDeadline(t, 20500*time.Microsecond)

	c.SetPacing(false)
	require.False(t, c.Pacing())
	require.Zero(t, c.Info().PacingRate)
	for i := 14; i < 30; i++ {
		p.expect(t, pacedSeg(iss, i, 0))
	}
	s.expectNothing(t)
	d, ok := s.tb.Deadline()
	require.True(t, ok)
	require.Greater(t, d, 30*ms, "only the retransmission timer runs")
}
