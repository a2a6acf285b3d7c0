package xdp_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/xdp"
)

// TestLinkWatchLab: what a socket and a LinkWatch see of their veth. A
// flap is no removal, and the watch says when the link is back; once the veth is deleted the watch says so at once,
// sendto says ENXIO, and a parker on the unbound socket is not woken (the
// socket's poll reports nothing), which is why the watch exists.
func TestLinkWatchLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	sock := smallSocketOn(t, l)
	var w *xdp.LinkWatch
	var ups atomic.Int32
	require.NoError(t, l.Local.Do(func() (err error) {
		w, err = xdp.WatchLink(l.Local.Ifindex, func() { ups.Add(1) })
		return err
	}))
	defer w.Close()

	// The peer's end down: ours loses its carrier, and the kernel
	// completes what it is given without sending it (EBUSY, no error).
	require.NoError(t, l.Peer.SetLinkUp(false))
	addr, _ := sock.Frames.Alloc(xdp.OwnerTX)
	idx, _ := sock.TX.Reserve(1)
	sock.TX.Set(idx, xdp.Desc{Addr: addr, Len: 60})
	sock.TX.Submit(1)
	reaped := uint32(0)
	for try := 0; reaped == 0 && try < 1000; try++ {
		require.NoError(t, sock.Kick(), "no carrier is no error")
		reaped = sock.Reap(1)
	}
	assert.EqualValues(t, 1, reaped, "the frame dropped for want of carrier came back")
	assert.NotZero(t, sock.KickDrops, "sendto said EBUSY for the frame it dropped")
	require.NoError(t, l.Peer.SetLinkUp(true))

	// Our end down and up: the watch says it is back. (Not asserted for
	// the peer's flap above: the kernel reports a carrier change later,
	// from its linkwatch work, and a flap that short may never show.)
	before := ups.Load()
	require.NoError(t, l.Local.SetLinkUp(false))
	require.NoError(t, l.Local.SetLinkUp(true))
	for deadline := time.Now().Add(5 * time.Second); ups.Load() == before && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, before+1, ups.Load(), "up is called once when the link comes back up")
	select {
	case <-w.Gone():
		t.Fatal("a flap is not a removal")
	default:
	}

	p := sock.NewParker()
	const park = 300 * time.Millisecond
	start := time.Now()
	require.NoError(t, p.Arm(start.Add(park)))
	parked := make(chan time.Duration, 1)
	go func() {
		p.Park()
		parked <- time.Since(start)
	}()
	require.NoError(t, l.Local.DeleteLink())
	deleted := time.Now()
	select {
	case <-w.Gone():
		t.Logf("the watch saw the interface go after %v", time.Since(deleted))
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not see the interface deleted")
	}
	assert.ErrorIs(t, sock.Kick(), xdp.ErrUnbound)
	assert.GreaterOrEqual(t, <-parked, park, "the removal did not wake the parker: only its deadline did")
	require.NoError(t, w.Close())

	// A watch on an interface that is already gone says so from its
	// first answer.
	var late *xdp.LinkWatch
	require.NoError(t, l.Local.Do(func() (err error) {
		late, err = xdp.WatchLink(l.Local.Ifindex, nil)
		return err
	}))
	defer late.Close()
	select {
	case <-late.Gone():
	case <-time.After(5 * time.Second):
		t.Fatal("a watch on a deleted interface never said it was gone")
	}
}
