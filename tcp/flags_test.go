package tcp_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// Flag combinations no TCP sends, to a listener, as Linux's
// tcp_rcv_state_process treats them: SYN+FIN, SYN+RST and segments with
// none of SYN, ACK, RST are dropped and counted; one with ACK draws a RST
// whatever else it carries.
func TestListenerInvalidFlags(t *testing.T) {
	s := newStack(t, tcp.Config{})
	_, p := listen(t, s, 16)
	for _, f := range []string{"SF", "SR", "SFR", "SFP", "F", "P", "", "FP"} {
		p.send(t, seg{flags: f, seq: peerISN, win: 65535, mss: 1460})
		s.expectNothing(t)
	}
	assert.Zero(t, s.tb.Len(), "no connection made")
	assert.Equal(t, uint64(8), s.tb.Stats().FlagDrops)
	p.send(t, seg{flags: "R", seq: peerISN})
	s.expectNothing(t)
	assert.Equal(t, uint64(8), s.tb.Stats().FlagDrops, "a plain RST is no invalid combination")
	p.send(t, seg{flags: "SF.", seq: peerISN, ack: 777, win: 65535})
	p.expect(t, seg{flags: "R", seq: 777})
	assert.Zero(t, s.tb.Stats().PassiveOpens)
}

// A synchronized connection drops segments with none of SYN, ACK, RST
// unanswered, even out of the window (Linux's tcp_rcv_established: no
// ACK for them); SYN+FIN is a SYN: a challenge ACK.
func TestEstablishedInvalidFlags(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1460)
	p.send(t, seg{flags: "", seq: peerISN + 1 + 1<<20})
	p.send(t, seg{flags: "F", seq: peerISN + 1})
	p.send(t, seg{flags: "P", seq: peerISN + 1, payload: data(0, 10)})
	s.expectNothing(t)
	assert.Equal(t, tcp.Established, c.State())
	assert.Zero(t, c.Readable())
	assert.Equal(t, uint64(3), s.tb.Stats().FlagDrops)

	p.send(t, seg{flags: "SF", seq: peerISN + 1, win: 65535})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	assert.Equal(t, tcp.Established, c.State())
	assert.Equal(t, uint64(1), s.tb.Stats().ChallengeACKs)
}

// SYN-SENT as Linux's tcp_rcv_synsent_state_process: a segment with none
// of SYN, ACK, RST is dropped; SYN+RST without an ACK is a RST without
// one, dropped.
func TestSynSentInvalidFlags(t *testing.T) {
	s := newStack(t, tcp.Config{})
	_, c, _ := dialSYN(t, s)
	p := s.peer(c.LocalAddr(), peerServer)
	for _, f := range []string{"", "F", "P", "SR"} {
		p.send(t, seg{flags: f, seq: peerISN})
		s.expectNothing(t)
	}
	require.Equal(t, tcp.SynSent, c.State())
}
