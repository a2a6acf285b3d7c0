package sockapi_test

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/sockapi"
)

// TestBufferLimits: with the receiver's buffer pinned at 4 KiB and the
// sender's at 4 KiB (SO_RCVBUF and SO_SNDBUF, not doubled), a writer
// whose reader does not read queues exactly 8 KiB before its deadline:
// the 4 KiB the receiver takes, though the window it offered at the
// handshake (64 KiB, unscaled in the SYN,ACK) is not taken back (RFC 9293
// 3.8.6), and the 4 KiB the send buffer holds unacknowledged. The reader
// then gets exactly those bytes.
func TestBufferLimits(t *testing.T) {
	client, server := pipeConns(t)
	require.NoError(t, server.(*sockapi.Conn).SetReadBuffer(4096))
	require.NoError(t, client.(*sockapi.Conn).SetWriteBuffer(4096))
	var e *net.OpError
	require.ErrorAs(t, client.(*sockapi.Conn).SetReadBuffer(0), &e)
	assert.ErrorIs(t, e, syscall.EINVAL)

	data := make([]byte, 256<<10)
	for i := range data {
		data[i] = byte(i * 31)
	}
	require.NoError(t, client.SetWriteDeadline(time.Now().Add(300*time.Millisecond)))
	n, err := client.Write(data)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Equal(t, 8<<10, n, "queued with 8 KiB of buffers")
	require.NoError(t, client.(*sockapi.Conn).CloseWrite())
	got, err := io.ReadAll(server)
	require.NoError(t, err)
	assert.Equal(t, data[:n], got)
}

// TestLinger: SetLinger(0) resets the connection on Close; a positive
// linger makes Close wait until the peer acknowledged everything.
func TestLinger(t *testing.T) {
	t.Run("Zero", func(t *testing.T) {
		client, server := pipeConns(t)
		require.NoError(t, client.(*sockapi.Conn).SetLinger(0))
		require.NoError(t, client.Close())
		server.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := server.Read(make([]byte, 10))
		assert.ErrorIs(t, err, syscall.ECONNRESET)
	})
	t.Run("Positive", func(t *testing.T) {
		client, server := pipeConns(t)
		require.NoError(t, client.(*sockapi.Conn).SetLinger(5))
		data := make([]byte, 100<<10)
		_, err := client.Write(data)
		require.NoError(t, err)
		read := make(chan int64, 1)
		go func() {
			n, _ := io.Copy(io.Discard, server)
			read <- n
		}()
		require.NoError(t, client.Close(), "the peer acknowledged everything within the linger")
		assert.EqualValues(t, len(data), <-read)
	})
}

// TestOptions: options on a closed connection fail with
// net.ErrClosed; bad values with EINVAL (an unknown congestion control
// with ENOENT, as Linux's TCP_CONGESTION); keepalive, no-delay and the
// congestion control apply.
func TestOptions(t *testing.T) {
	client, _ := pipeConns(t)
	c := client.(*sockapi.Conn)
	assert.NoError(t, c.SetNoDelay(false))
	assert.NoError(t, c.SetKeepAlive(true))
	assert.NoError(t, c.SetKeepAlivePeriod(time.Minute))
	assert.ErrorIs(t, c.SetKeepAlivePeriod(0), syscall.EINVAL)
	cc, err := c.CongestionControl()
	require.NoError(t, err)
	assert.Equal(t, sockapi.Cubic, cc)
	require.NoError(t, c.SetCongestionControl(sockapi.Reno))
	cc, err = c.CongestionControl()
	require.NoError(t, err)
	assert.Equal(t, sockapi.Reno, cc)
	assert.ErrorIs(t, c.SetCongestionControl("bbr"), syscall.ENOENT)
	require.NoError(t, c.Close())
	for _, err := range []error{c.SetNoDelay(true), c.SetKeepAlive(false), c.SetLinger(1), c.SetDeadline(time.Now()),
		c.SetCongestionControl(sockapi.Cubic), c.Close()} {
		assert.True(t, errors.Is(err, net.ErrClosed), "%v", err)
	}
}
