package nic_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// TestXDPLinkDownAndUp: while the interface is down Transmit says
// ErrLinkDown and the frames wait on the TX ring; once it is back up the
// device's watch has the link kick them out at its next Receive, with no
// further Transmit, and they come back to the allocator; a removal closes
// Gone.
func TestXDPLinkDownAndUp(t *testing.T) {
	l := lab.New(t, lab.Config{})
	dev := openLabDevice(t, l, steer.Native, 1)
	link := dev.Links()[0]
	sock := link.Socket()
	free := sock.Frames.FreeCount()

	require.NoError(t, l.Local.SetLinkUp(false))
	fs := make([]nic.Frame, 4)
	require.Equal(t, len(fs), link.Alloc(fs))
	for i := range fs {
		fs[i].Data = fs[i].Data[:60]
		copy(fs[i].Data, l.Peer.MAC)
		copy(fs[i].Data[6:], l.Local.MAC)
		fs[i].Data[12], fs[i].Data[13] = 0x88, 0xb5 // local experimental ethertype: the peer drops it
	}
	n, err := link.Transmit(fs)
	require.Equal(t, len(fs), n)
	require.True(t, errors.Is(err, nic.ErrLinkDown), "Transmit on a down link: %v", err)
	assert.Zero(t, sock.Reap(uint32(len(fs))), "nothing sent while down")
	// A flap costs no allocation per batch (the errors are made once).
	one := make([]nic.Frame, 1)
	queued := len(fs)
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		if link.Alloc(one) == 1 {
			one[0].Data = one[0].Data[:60]
			copy(one[0].Data, fs[0].Data)
			n, _ := link.Transmit(one)
			queued += n
		}
	}), "allocations per Transmit on a down link")

	require.NoError(t, l.Local.SetLinkUp(true))
	reaped := 0
	rx := make([]nic.Frame, 8)
	for deadline := time.Now().Add(5 * time.Second); reaped < queued && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		got, err := link.Receive(rx)
		require.NoError(t, err)
		link.Release(rx[:got])
		reaped += int(sock.Reap(uint32(queued)))
	}
	assert.Equal(t, queued, reaped, "the frames kept on the ring went out once the link was up")
	assert.Equal(t, free, sock.Frames.FreeCount(), "every frame back in the allocator")

	select {
	case <-dev.Gone():
		t.Fatal("a flap is not a removal")
	default:
	}
	require.NoError(t, l.Local.DeleteLink())
	select {
	case <-dev.Gone():
	case <-time.After(5 * time.Second):
		t.Fatal("the device did not see its interface removed")
	}
	n, err = link.Transmit(nil)
	assert.True(t, errors.Is(err, nic.ErrLinkDown), "Transmit on an unbound socket: %d, %v", n, err)
}
