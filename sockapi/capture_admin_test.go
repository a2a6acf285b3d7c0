package sockapi_test

import (
	"bufio"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/sockapi"
	"github.com/xdpnet/xdpnet/sockapi/admin"
)

// noCaptures waits until no capture runs on s: the admin op closed its
// capture.
func noCaptures(t *testing.T, s *sockapi.Stack) {
	t.Helper()
	require.Eventually(t, func() bool { return sockapi.CapturesRunning(s) == 0 }, 5*time.Second, time.Millisecond,
		"the capture of the admin op was closed")
}

// TestAdminCapture: the capture op streams a connection's frames in
// order with their counts; Stop ends it with the frames left and the
// final counts, then io.EOF; a bad filter is refused with the filter's
// error.
func TestAdminCapture(t *testing.T) {
	a, b, path := adminStacks(t, nil)
	c, err := admin.Dial(path)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Capture(sockapi.CaptureConfig{Filter: "tcp or udp"})
	require.ErrorContains(t, err, `capture filter "tcp or udp": unknown word "or"`)

	c, err = admin.Dial(path)
	require.NoError(t, err)
	defer c.Close()
	capt, err := c.Capture(sockapi.CaptureConfig{Filter: "tcp"})
	require.NoError(t, err)
	assert.Equal(t, a.Info().MTU+wire.EthernetLen, capt.SnapLen())
	ln, err := b.Listen("tcp", ":0")
	require.NoError(t, err)
	defer ln.Close()
	client, server := connPair(t, a, ln, addrPort(ln.Addr()))
	_, err = client.Write([]byte("ping"))
	require.NoError(t, err)
	_, err = io.ReadFull(server, make([]byte, 4))
	require.NoError(t, err)

	const syn, ack = wire.TCPFlagSYN, wire.TCPFlagACK
	for _, want := range []struct {
		dir   sockapi.Direction
		flags uint8
	}{{sockapi.Outbound, syn}, {sockapi.Inbound, syn | ack}, {sockapi.Outbound, ack}} {
		f, err := capt.Next()
		require.NoError(t, err)
		assert.Equal(t, want.dir, f.Dir)
		assert.Equal(t, want.flags, tcpOf(t, f).Flags())
		assert.Equal(t, len(f.Data), f.Len)
		assert.WithinDuration(t, time.Now(), f.Time, 10*time.Second)
	}
	require.NoError(t, capt.Stop())
	read := 3
	for {
		_, err := capt.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		read++
	}
	assert.GreaterOrEqual(t, read, 4, "the data segment at least")
	assert.Equal(t, sockapi.CaptureStats{Captured: uint64(read)}, capt.Stats(), "every frame captured was sent")
	noCaptures(t, a)
}

// TestAdminCaptureSlowClient: a client that reads nothing while a bulk
// transfer runs holds no poller: the transfer completes, the frames
// beyond the capture's buffer are dropped, and the client, reading at
// last, is told how many.
func TestAdminCaptureSlowClient(t *testing.T) {
	a, b, path := adminStacks(t, nil)
	c, err := admin.Dial(path)
	require.NoError(t, err)
	defer c.Close()
	capt, err := c.Capture(sockapi.CaptureConfig{Filter: "tcp", Buffer: 64})
	require.NoError(t, err)
	sendOver(t, a, b, 8<<20)

	require.NoError(t, capt.Stop())
	frames := 0
	for {
		_, err := capt.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		frames++
	}
	st := capt.Stats()
	t.Logf("%d frames read, %+v", frames, st)
	assert.Positive(t, st.Dropped, "drops counted and told")
	assert.Equal(t, st.Captured, uint64(frames))
	noCaptures(t, a)
}

// TestAdminCaptureEnds: a client that vanishes mid-capture ends the
// capture and leaves the stack serving; a stack that closes mid-capture
// ends the client's stream with ErrStackGone.
func TestAdminCaptureEnds(t *testing.T) {
	a, _, path := adminStacks(t, nil)
	c, err := admin.Dial(path)
	require.NoError(t, err)
	_, err = c.Capture(sockapi.CaptureConfig{})
	require.NoError(t, err)
	require.Equal(t, 1, sockapi.CapturesRunning(a))
	require.NoError(t, c.Close())
	noCaptures(t, a)
	requireAnswers(t, path)

	c, err = admin.Dial(path)
	require.NoError(t, err)
	defer c.Close()
	capt, err := c.Capture(sockapi.CaptureConfig{})
	require.NoError(t, err)
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := capt.Next(); err != nil {
				ended <- err
				return
			}
		}
	}()
	require.NoError(t, a.Close())
	require.ErrorIs(t, <-ended, admin.ErrStackGone)
}

// TestAdminCaptureHostileStream: the client takes nothing on trust from
// the socket: a message of an unknown kind, one longer than the snap
// length, or a stream cut mid-message is an error, never a panic nor an
// allocation of what the length claims.
func TestAdminCaptureHostileStream(t *testing.T) {
	for name, stream := range map[string][]byte{
		"kind":      {6, 0, 0, 0, 'x', 0, 0, 0, 0, 0},
		"oversize":  {0xff, 0xff, 0xff, 0x7f, 'f'},
		"short":     {4, 0, 0, 0, 'f', 0, 0, 0, 0},
		"cut":       {40, 0, 0, 0, 'f', 1, 2, 3},
		"bad stats": {5, 0, 0, 0, 's', 1, 2, 3, 4},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fake.sock")
			ln, err := net.Listen("unix", path)
			require.NoError(t, err)
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				bufio.NewReader(c).ReadString('\n')
				c.Write([]byte(`{"result":{"snaplen":100,"captured":0,"dropped":0}}` + "\n"))
				c.Write(stream)
			}()
			c, err := admin.Dial(path)
			require.NoError(t, err)
			defer c.Close()
			capt, err := c.Capture(sockapi.CaptureConfig{})
			require.NoError(t, err)
			assert.Equal(t, 100, capt.SnapLen())
			_, err = capt.Next()
			require.Error(t, err)
			if name == "cut" {
				assert.ErrorIs(t, err, admin.ErrStackGone)
			} else {
				assert.ErrorContains(t, err, "bad capture message")
			}
		})
	}
}
