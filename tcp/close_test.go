package tcp_test

import (
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/tcp"
)

// The passive close: ESTABLISHED → CLOSE-WAIT on the peer's FIN, where
// reading ends with EOF while writing goes on; Close sends our FIN, LAST-ACK
// → CLOSED on its ACK, with nothing left behind.
func TestPassiveClose(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1460)

	p.send(t, seg{flags: "F.", seq: peerISN + 1, ack: iss + 1, win: 512})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 2, win: fullWin})
	assert.Equal(t, tcp.CloseWait, c.State())
	_, err := c.Read(make([]byte, 10))
	assert.Equal(t, io.EOF, err)

	// Half-closed by the peer: we still write.
	_, err = c.Write([]byte("hello"))
	require.NoError(t, err)
	p.expect(t, seg{flags: "P.", seq: iss + 1, ack: peerISN + 2, win: fullWin, payload: []byte("hello")})
	p.send(t, seg{flags: ".", seq: peerISN + 2, ack: iss + 6, win: 512})
	s.expectNothing(t)

	require.NoError(t, c.Close())
	assert.Equal(t, tcp.LastAck, c.State())
	fin := seg{flags: "F.", seq: iss + 6, ack: peerISN + 2, win: fullWin}
	p.expect(t, fin)
	s.expectNothing(t)
	// The FIN is retransmitted like data.
	s.advanceToDeadline(t)
	p.expect(t, fin)
	p.send(t, seg{flags: ".", seq: peerISN + 2, ack: iss + 7, win: 512})
	s.expectNothing(t)
	assert.Equal(t, tcp.Closed, c.State())
	assert.NoError(t, c.Err())
	s.expectEmpty(t)
}

// The active close: FIN-WAIT-1 → FIN-WAIT-2 on the ACK of our FIN, where
// the peer's data still arrives; its FIN → TIME-WAIT for 2×MSL, then
// CLOSED with no connection and no timer left.
func TestActiveCloseHalfClose(t *testing.T) {
	s := newStack(t, tcp.Config{MSL: 5 * time.Second})
	p, c, iss := clientConn(t, s, 1460)

	require.NoError(t, c.CloseWrite())
	assert.Equal(t, tcp.FinWait1, c.State())
	p.expect(t, seg{flags: "F.", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	_, err := c.Write([]byte("x"))
	assert.ErrorIs(t, err, syscall.EPIPE)
	assert.ErrorIs(t, err, tcp.ErrClosedWrite)

	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 2, win: 512})
	s.expectNothing(t)
	assert.Equal(t, tcp.FinWait2, c.State())
	assert.Zero(t, s.tb.Timers(), "a half-close waits for the peer as long as it takes")

	// The peer goes on sending; we read.
	p.send(t, seg{flags: "P.", seq: peerISN + 1, ack: iss + 2, win: 512, payload: data(0, 100)})
	p.expect(t, seg{flags: ".", seq: iss + 2, ack: peerISN + 101, win: (131072 - 100) >> ourShift})
	assert.Equal(t, data(0, 100), readAll(t, c))
	s.expectNothing(t) // 100 bytes freed: less than an MSS, no update

	// The FIN takes one number of the window, whose right edge stays.
	s.advance(time.Second)
	p.send(t, seg{flags: "F.", seq: peerISN + 101, ack: iss + 2, win: 512})
	p.expect(t, seg{flags: ".", seq: iss + 2, ack: peerISN + 102, win: keptWin(131072 - 101)})
	assert.Equal(t, tcp.TimeWait, c.State())
	_, err = c.Read(make([]byte, 10))
	assert.Equal(t, io.EOF, err)
	s.expectDeadline(t, s.now+10*time.Second)

	// A retransmitted FIN (our ACK was lost) is acknowledged again and
	// restarts the 2×MSL.
	s.advance(3 * time.Second)
	p.send(t, seg{flags: "F.", seq: peerISN + 101, ack: iss + 2, win: 512})
	p.expect(t, seg{flags: ".", seq: iss + 2, ack: peerISN + 102, win: keptWin(131072 - 101)})
	s.expectDeadline(t, s.now+10*time.Second)

	s.advance(10*time.Second - 1)
	assert.Equal(t, tcp.TimeWait, c.State())
	s.advance(1)
	assert.Equal(t, tcp.Closed, c.State())
	assert.NoError(t, c.Err())
	s.expectNothing(t)
	s.expectEmpty(t)
	require.NoError(t, c.Close())
	s.expectNothing(t)
}

// Close (not CloseWrite) of a connection whose FIN is acknowledged: an
// orphan does not wait forever in FIN-WAIT-2 (Linux's tcp_fin_timeout).
func TestFinWait2Timeout(t *testing.T) {
	s := newStack(t, tcp.Config{MSL: time.Second})
	p, c, iss := serverConn(t, s, 1460)
	require.NoError(t, c.Close())
	p.expect(t, seg{flags: "F.", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 2, win: 512})
	assert.Equal(t, tcp.FinWait2, c.State())
	s.expectDeadline(t, s.now+2*time.Second)
	s.advance(2 * time.Second)
	assert.Equal(t, tcp.Closed, c.State())
	s.expectNothing(t)
	s.expectEmpty(t)
}

// Simultaneous close: FIN-WAIT-1 → CLOSING on the peer's FIN that does
// not acknowledge ours, → TIME-WAIT on the ACK of ours (RFC 9293 3.6).
func TestSimultaneousClose(t *testing.T) {
	s := newStack(t, tcp.Config{MSL: time.Second})
	p, c, iss := clientConn(t, s, 1460)
	require.NoError(t, c.Close())
	p.expect(t, seg{flags: "F.", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	p.send(t, seg{flags: "F.", seq: peerISN + 1, ack: iss + 1, win: 512})
	assert.Equal(t, tcp.Closing, c.State())
	p.expect(t, seg{flags: ".", seq: iss + 2, ack: peerISN + 2, win: keptWin(131072 - 1)})
	s.expectNothing(t)
	p.send(t, seg{flags: ".", seq: peerISN + 2, ack: iss + 2, win: 512})
	assert.Equal(t, tcp.TimeWait, c.State())
	s.expectNothing(t)
	s.expectDeadline(t, s.now+2*time.Second)
	s.advance(2 * time.Second)
	s.expectEmpty(t)
}

// Both FINs in one segment each way: our FIN,ACK crosses with the peer's
// FIN that acknowledges it: FIN-WAIT-1 → TIME-WAIT directly.
func TestCloseFINAckedWithFIN(t *testing.T) {
	s := newStack(t, tcp.Config{MSL: time.Second})
	p, c, iss := clientConn(t, s, 1460)
	require.NoError(t, c.Close())
	p.expect(t, seg{flags: "F.", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	p.send(t, seg{flags: "F.", seq: peerISN + 1, ack: iss + 2, win: 512})
	assert.Equal(t, tcp.TimeWait, c.State())
	p.expect(t, seg{flags: ".", seq: iss + 2, ack: peerISN + 2, win: (131072 - 1) >> ourShift})
	s.advance(2 * time.Second)
	s.expectEmpty(t)
}

// Data and FIN in one segment each way.
func TestFINWithData(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1460)
	p.send(t, seg{flags: "FP.", seq: peerISN + 1, ack: iss + 1, win: 512, payload: data(0, 100)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 102, win: (131072 - 100) >> ourShift})
	assert.Equal(t, tcp.CloseWait, c.State())
	buf := make([]byte, 200)
	n, err := c.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, data(0, 100), buf[:n])
	_, err = c.Read(buf)
	assert.Equal(t, io.EOF, err)

	_, err = c.Write(data(0, 50))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	p.expect(t, seg{flags: "FP.", seq: iss + 1, ack: peerISN + 102, win: (131072 - 100) >> ourShift, payload: data(0, 50)})
	p.send(t, seg{flags: ".", seq: peerISN + 102, ack: iss + 52, win: 512})
	s.expectEmpty(t)
}

// A FIN that arrives before the data ahead of it is kept with its data
// and takes effect when the hole fills, as Linux does: the ACK covers it
// at once, no retransmission of the FIN needed.
func TestOutOfOrderFIN(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1460)
	p.send(t, seg{flags: "F.", seq: peerISN + 101, ack: iss + 1, win: 512, payload: data(100, 100)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	assert.Equal(t, tcp.Established, c.State())
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 512, payload: data(0, 100)})
	// Kept, but not rounded up: the buffer lacks the room (the FIN took a
	// number and no byte).
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 202, win: (131072 - 201) >> ourShift})
	assert.Equal(t, tcp.CloseWait, c.State())
	assert.Equal(t, data(0, 200), readAll(t, c))
	_, err := c.Read(make([]byte, 1))
	assert.Equal(t, io.EOF, err)
}

// Close with unread data aborts with a RST (RFC 1122 4.2.2.13, as Linux).
func TestCloseWithUnreadDataSendsRST(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1460)
	p.send(t, seg{flags: "P.", seq: peerISN + 1, ack: iss + 1, win: 512, payload: data(0, 100)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 101, win: (131072 - 100) >> ourShift})
	require.NoError(t, c.Close())
	p.expect(t, seg{flags: "R.", seq: iss + 1, ack: peerISN + 101})
	s.expectNothing(t)
	assert.Equal(t, tcp.Closed, c.State())
	assert.ErrorIs(t, c.Err(), syscall.ECONNABORTED)
	s.expectEmpty(t)
}

// After Close, new data from the peer is answered with a RST: the app
// will never read it (RFC 1122 4.2.2.13). A retransmission of data that
// came before is not new, and gets the ACK it lacked.
func TestDataAfterCloseDrawsRST(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := serverConn(t, s, 1460)
	p.send(t, seg{flags: "P.", seq: peerISN + 1, ack: iss + 1, win: 512, payload: data(0, 100)})
	p.expect(t, seg{flags: ".", seq: iss + 1, ack: peerISN + 101, win: (131072 - 100) >> ourShift})
	assert.Equal(t, data(0, 100), readAll(t, c))
	require.NoError(t, c.Close())
	p.expect(t, seg{flags: "F.", seq: iss + 1, ack: peerISN + 101, win: (131072 - 100) >> ourShift})
	p.send(t, seg{flags: ".", seq: peerISN + 101, ack: iss + 2, win: 512})
	assert.Equal(t, tcp.FinWait2, c.State())

	p.send(t, seg{flags: "P.", seq: peerISN + 1, ack: iss + 2, win: 512, payload: data(0, 100)})
	p.expect(t, seg{flags: ".", seq: iss + 2, ack: peerISN + 101, win: (131072 - 100) >> ourShift})
	assert.Equal(t, tcp.FinWait2, c.State())

	p.send(t, seg{flags: "P.", seq: peerISN + 101, ack: iss + 2, win: 512, payload: data(100, 50)})
	p.expect(t, seg{flags: "R.", seq: iss + 2, ack: peerISN + 151})
	assert.Equal(t, tcp.Closed, c.State())
	s.expectNothing(t)
	s.expectEmpty(t)
}

// A SYN in TIME-WAIT beyond the old connection's sequence space opens a
// new one (RFC 6191 without timestamps, as Linux), with an ISN beyond the
// old SND.NXT; one with an old sequence number only gets an ACK.
func TestSYNInTimeWait(t *testing.T) {
	s := newStack(t, tcp.Config{})
	l, p := listen(t, s, 4)
	iss := p.isn()
	p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	p.expect(t, seg{flags: "S.", seq: iss, ack: peerISN + 1, win: 65535, mss: 1460})
	p.send(t, seg{flags: ".", seq: peerISN + 1, ack: iss + 1, win: 65535})
	c, err := l.Accept()
	require.NoError(t, err)
	_, err = c.Write(data(0, 1000))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	p.expect(t, seg{flags: "FP.", seq: iss + 1, ack: peerISN + 1, win: 65535, payload: data(0, 1000)})
	p.send(t, seg{flags: "F.", seq: peerISN + 1, ack: iss + 1002, win: 65535})
	p.expect(t, seg{flags: ".", seq: iss + 1002, ack: peerISN + 2, win: 65534})
	require.Equal(t, tcp.TimeWait, c.State())

	// An old SYN: an ACK of where we are, TIME-WAIT goes on.
	p.send(t, seg{flags: "S", seq: peerISN, win: 65535, mss: 1460})
	p.expect(t, seg{flags: ".", seq: iss + 1002, ack: peerISN + 2, win: 65534})
	s.expectNothing(t)
	assert.Equal(t, tcp.TimeWait, c.State())

	// A new one: a new connection whose ISN is past the old SND.NXT.
	s.advance(time.Second)
	p.send(t, seg{flags: "S", seq: peerISN + 100000, win: 65535, mss: 1460})
	newISS := iss + 1002 + 65537
	p.expect(t, seg{flags: "S.", seq: newISS, ack: peerISN + 100001, win: 65535, mss: 1460})
	s.expectNothing(t)
	assert.Equal(t, tcp.Closed, c.State())
	assert.Equal(t, uint64(1), s.tb.Stats().TimeWaitRecycled)
	p.send(t, seg{flags: ".", seq: peerISN + 100001, ack: newISS + 1, win: 65535})
	c2, err := l.Accept()
	require.NoError(t, err)
	assert.Equal(t, tcp.Established, c2.State())
	assert.Equal(t, 1, s.tb.Len())
}

// Without a listener, a SYN in TIME-WAIT is only acknowledged.
func TestSYNInTimeWaitNoListener(t *testing.T) {
	s := newStack(t, tcp.Config{})
	p, c, iss := clientConn(t, s, 1460)
	require.NoError(t, c.Close())
	p.expect(t, seg{flags: "F.", seq: iss + 1, ack: peerISN + 1, win: fullWin})
	p.send(t, seg{flags: "F.", seq: peerISN + 1, ack: iss + 2, win: 512})
	p.expect(t, seg{flags: ".", seq: iss + 2, ack: peerISN + 2, win: (131072 - 1) >> ourShift})
	p.send(t, seg{flags: "S", seq: peerISN + 100000, win: 65535, mss: 1460})
	p.expect(t, seg{flags: ".", seq: iss + 2, ack: peerISN + 2, win: (131072 - 1) >> ourShift})
	assert.Equal(t, tcp.TimeWait, c.State())
}
