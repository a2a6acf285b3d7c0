package sockapi_test

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/sockapi"
)

// SetUserTimeout ends a connection whose peer keeps its window closed
// (its app reads nothing) once no data was acknowledged for the user
// timeout: the blocked Write fails with ETIMEDOUT, as on Linux, instead
// of probing for ever.
func TestUserTimeoutEndsZeroWindowStall(t *testing.T) {
	a, b := pipeStacks(t)
	ln, err := b.Listen("tcp", addrB.String()+":7200")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	d := &sockapi.Dialer{Stack: a, Control: func(_, _ string, o *sockapi.SocketOptions) error {
		return o.SetUserTimeout(500 * time.Millisecond)
	}}
	c, err := d.Dial("tcp", addrB.String()+":7200")
	require.NoError(t, err)
	defer c.Close()
	var server net.Conn
	select {
	case server = <-accepted:
		require.NotNil(t, server)
	case <-time.After(10 * time.Second):
		t.Fatal("no accept")
	}
	defer server.Close()
	require.NoError(t, server.(*sockapi.Conn).SetReadBuffer(4096))
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(30*time.Second))) // bounds a regression
	start := time.Now()
	buf := make([]byte, 64<<10)
	var werr error
	for werr == nil {
		_, werr = c.Write(buf)
	}
	require.ErrorIs(t, werr, syscall.ETIMEDOUT)
	t.Logf("write failed after %v: %v", time.Since(start), werr)
	assert.Contains(t, werr.Error(), "write: connection timed out")
}

// The options reach the connection: a Conn's setters and a Control
// hook's alike, and negative durations are refused.
func TestSocketOptionSetters(t *testing.T) {
	client, _ := pipeConns(t)
	c := client.(*sockapi.Conn)
	require.NoError(t, c.SetUserTimeout(time.Second))
	require.NoError(t, c.SetFinWait2Timeout(time.Second))
	require.NoError(t, c.SetCork(true))
	require.NoError(t, c.SetCork(false))
	require.NoError(t, c.SetPacing(true))
	assert.ErrorIs(t, c.SetUserTimeout(-1), syscall.EINVAL)
	assert.ErrorIs(t, c.SetFinWait2Timeout(-1), syscall.EINVAL)
	var o sockapi.SocketOptions
	assert.ErrorIs(t, o.SetUserTimeout(-1), syscall.EINVAL)
	assert.NoError(t, o.SetCork(true))
}
