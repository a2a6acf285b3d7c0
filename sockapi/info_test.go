package sockapi_test

import (
	"io"
	"net"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/sockapi"
)

// TestConnInfo: Info snapshots taken from another goroutine while the
// connection moves 4 MiB (run it with -race: the snapshot is the
// poller's, taken on its goroutine) see the counters only grow; once
// the server's reply came, the client's snapshot counts every byte
// acknowledged and the server's every byte received. After Close, Info
// fails with net.ErrClosed.
func TestConnInfo(t *testing.T) {
	client, server := pipeConns(t)
	cc, sc := client.(*sockapi.Conn), server.(*sockapi.Conn)
	const total = 4 << 20
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, err := client.Write(make([]byte, total))
		assert.NoError(t, err)
	}()
	go func() {
		defer wg.Done()
		n, err := io.CopyN(io.Discard, server, total)
		assert.NoError(t, err)
		assert.EqualValues(t, total, n)
		_, err = server.Write([]byte("done"))
		assert.NoError(t, err)
	}()
	var snaps []sockapi.TCPInfo
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	for {
		info, err := cc.Info()
		require.NoError(t, err)
		snaps = append(snaps, info)
		select {
		case <-done:
		default:
			continue
		}
		break
	}
	for i := 1; i < len(snaps); i++ {
		require.GreaterOrEqual(t, snaps[i].BytesAcked, snaps[i-1].BytesAcked, "snapshot %d", i)
		require.GreaterOrEqual(t, snaps[i].SegsOut, snaps[i-1].SegsOut, "snapshot %d", i)
		require.GreaterOrEqual(t, snaps[i].Delivered, snaps[i-1].Delivered, "snapshot %d", i)
	}
	_, err := io.ReadFull(client, make([]byte, 4))
	require.NoError(t, err)
	info, err := cc.Info()
	require.NoError(t, err)
	assert.Equal(t, sockapi.TCPEstablished, info.State)
	assert.EqualValues(t, total, info.BytesAcked)
	assert.EqualValues(t, total, info.BytesSent-info.BytesRetrans)
	assert.EqualValues(t, 4, info.BytesReceived)
	assert.NotZero(t, info.RTT)
	assert.NotZero(t, info.DeliveryRate)
	sinfo, err := sc.Info()
	require.NoError(t, err)
	assert.EqualValues(t, total, sinfo.BytesReceived)
	assert.EqualValues(t, 4, sinfo.BytesSent)
	t.Logf("%d snapshots during the transfer; the client's at the end: %+v", len(snaps), info)

	require.NoError(t, client.Close())
	_, err = cc.Info()
	assert.ErrorIs(t, err, net.ErrClosed)
}
