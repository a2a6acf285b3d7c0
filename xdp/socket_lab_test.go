package xdp_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/xdp"
)

// TestSocketOnVeth binds real sockets on a lab veth and checks what the
// kernel put in force: lab facts in docs/DESIGN.md say veth is
// copy-mode only, RX never asks for a wakeup and 6.18 takes a TX budget.
func TestSocketOnVeth(t *testing.T) {
	l := lab.New(t, lab.Config{Queues: 2})
	var umem *xdp.Umem
	var sock *xdp.Socket
	require.NoError(t, l.Local.Do(func() (err error) {
		umem, err = xdp.NewUmem(xdp.UmemConfig{FrameCount: 1024, FrameSize: 2048})
		if err != nil {
			return err
		}
		_, err = xdp.NewSocket(umem, xdp.SocketConfig{Ifindex: l.Local.Ifindex, Mode: xdp.BindZeroCopy, Frames: 512})
		assert.ErrorIs(t, err, unix.EOPNOTSUPP, "veth has no zero-copy")
		sock, err = xdp.NewSocket(umem, xdp.SocketConfig{Ifindex: l.Local.Ifindex, Frames: 512})
		return err
	}))
	defer umem.Close()
	defer sock.Close()
	assert.False(t, sock.ZeroCopy(), "auto falls back to copy mode on veth")
	assert.True(t, sock.NeedWakeup())
	assert.Equal(t, 256, sock.TxBudget(), "XDP_MAX_TX_SKB_BUDGET raised to min(TX ring, 256)")
	assert.Equal(t, 256, sock.Frames.FreeCount(), "half the share went to the fill ring")
	assert.Equal(t, 512, umem.FreeFrames())

	t.Run("SharedUmemOnSecondQueue", func(t *testing.T) {
		var second *xdp.Socket
		require.NoError(t, l.Local.Do(func() (err error) {
			_, err = xdp.NewSocket(umem, xdp.SocketConfig{Ifindex: l.Local.Ifindex, Queue: 1, Frames: 4096})
			assert.ErrorContains(t, err, "frames left", "a share larger than what is left")
			second, err = xdp.NewSocket(umem, xdp.SocketConfig{Ifindex: l.Local.Ifindex, Queue: 1})
			return err
		}))
		defer second.Close()
		assert.Zero(t, umem.FreeFrames())
		a, _ := sock.Frames.Alloc(xdp.OwnerApp)
		b, _ := second.Frames.Alloc(xdp.OwnerApp)
		_, mine := second.Frames.Owner(a)
		assert.False(t, mine, "the shares are disjoint")
		assert.NotEqual(t, a, b)
		sock.Frames.Move(a, xdp.OwnerApp, xdp.OwnerFree)
		second.Frames.Move(b, xdp.OwnerApp, xdp.OwnerFree)
	})

	t.Run("TransmitAndComplete", func(t *testing.T) {
		const n = 100
		idx, got := sock.TX.Reserve(n)
		require.EqualValues(t, n, got)
		for i := range got {
			addr, ok := sock.Frames.Alloc(xdp.OwnerTX)
			require.True(t, ok)
			f := umem.Frame(addr)
			copy(f, l.Peer.MAC)
			copy(f[6:], l.Local.MAC)
			f[12], f[13] = 0x88, 0xb5 // local experimental ethertype: the peer drops it
			sock.TX.Set(idx+i, xdp.Desc{Addr: addr, Len: 60})
		}
		sock.TX.Submit(got)
		require.NoError(t, sock.Kick())
		reaped := 0
		for try := 0; reaped < n && try < 1000; try++ {
			reaped += int(sock.Reap(n))
			if reaped < n {
				require.NoError(t, sock.Kick())
			}
		}
		assert.Equal(t, n, reaped, "every sent frame came back on the completion ring")
		assert.Equal(t, 256, sock.Frames.FreeCount())
		st, err := sock.Stats()
		require.NoError(t, err)
		assert.Zero(t, st.TxInvalidDescs)
	})

	t.Run("InvalidDescriptorIsCounted", func(t *testing.T) {
		idx, _ := sock.TX.Reserve(1)
		sock.TX.Set(idx, xdp.Desc{Addr: 1 << 40, Len: 60}) // outside the UMEM
		sock.TX.Submit(1)
		require.NoError(t, sock.Kick())
		st, err := sock.Stats()
		require.NoError(t, err)
		assert.EqualValues(t, 1, st.TxInvalidDescs)
	})

	t.Run("KickOnDownLinkIsAnError", func(t *testing.T) {
		// Drain the completion ring first: this kernel completes even
		// the invalid descriptor of the subtest before.
		sock.Reap(uint32(sock.Completion.Size()))
		require.NoError(t, l.Local.SetLinkUp(false))
		addr, _ := sock.Frames.Alloc(xdp.OwnerTX)
		idx, _ := sock.TX.Reserve(1)
		sock.TX.Set(idx, xdp.Desc{Addr: addr, Len: 60})
		sock.TX.Submit(1)
		err := sock.Kick()
		require.Error(t, err)
		assert.ErrorIs(t, err, unix.ENETDOWN)
		var se *xdp.SyscallError
		assert.ErrorAs(t, err, &se)
		assert.Zero(t, sock.Reap(1), "a down link leaves the TX ring alone")

		// Up again, the same socket sends: the frame that waited on the
		// ring goes with the next Kick.
		require.NoError(t, l.Local.SetLinkUp(true))
		reaped := uint32(0)
		for try := 0; reaped == 0 && try < 1000; try++ {
			require.NoError(t, sock.Kick())
			reaped = sock.Reap(1)
		}
		assert.EqualValues(t, 1, reaped, "the frame kept on the ring was sent after the link came up")
	})
}

// TestWaitDoesNotAllocate: the poller waits on every idle spell.
// smallSocket binds a socket with 64-entry rings on a new lab's Local
// end, closed when the test ends.
func smallSocket(t *testing.T) *xdp.Socket {
	return smallSocketOn(t, lab.New(t, lab.Config{}))
}

// smallSocketOn is smallSocket on l's Local end.
func smallSocketOn(t *testing.T, l *lab.Lab) *xdp.Socket {
	var umem *xdp.Umem
	var sock *xdp.Socket
	require.NoError(t, l.Local.Do(func() (err error) {
		if umem, err = xdp.NewUmem(xdp.UmemConfig{FrameCount: 64, FrameSize: 2048}); err != nil {
			return err
		}
		sock, err = xdp.NewSocket(umem, xdp.SocketConfig{Ifindex: l.Local.Ifindex, RxSize: 64, TxSize: 64, FillSize: 64, CompletionSize: 64})
		return err
	}))
	t.Cleanup(func() {
		sock.Close()
		umem.Close()
	})
	return sock
}

func TestWaitDoesNotAllocate(t *testing.T) {
	sock := smallSocket(t)
	assert.Zero(t, testing.AllocsPerRun(100, func() { sock.Wait(0) }))
}

// TestParker: Park returns at its deadline, at once after a Wake, and when
// another goroutine wakes it; with no deadline it waits for the Wake.
func TestParker(t *testing.T) {
	sock := smallSocket(t)
	p := sock.NewParker()

	start := time.Now()
	require.NoError(t, p.Arm(start.Add(50*time.Millisecond)))
	require.NoError(t, p.Park())
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond, "returns at the deadline, not before")

	require.NoError(t, p.Arm(time.Time{}))
	p.Wake()
	require.NoError(t, p.Park(), "a Wake before Park is not lost")

	require.NoError(t, p.Arm(time.Time{}))
	go func() {
		time.Sleep(20 * time.Millisecond)
		p.Wake()
	}()
	start = time.Now()
	require.NoError(t, p.Park())
	assert.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond, "no deadline: it waited for the Wake")
}

// TestReadRSSOnVeth: veth has no RSS to read; ReadRSS says so with the
// driver's EOPNOTSUPP, which callers take as "use the default key".
func TestReadRSSOnVeth(t *testing.T) {
	l := lab.New(t, lab.Config{Queues: 2})
	require.NoError(t, l.Local.Do(func() error {
		_, _, err := xdp.ReadRSS(l.Local.Link)
		assert.ErrorIs(t, err, unix.EOPNOTSUPP)
		_, _, err = xdp.ReadRSS("xdpnet-no-such-if")
		assert.ErrorIs(t, err, unix.ENODEV)
		return nil
	}))
}

// TestQueuesOnVeth: Queues counts the queues ethtool -l shows, one and
// three here, and fails with ENODEV for no interface.
func TestQueuesOnVeth(t *testing.T) {
	for _, want := range []int{1, 3} {
		l := lab.New(t, lab.Config{Queues: want})
		require.NoError(t, l.Local.Do(func() error {
			n, err := xdp.Queues(l.Local.Link)
			assert.NoError(t, err)
			assert.Equal(t, want, n)
			_, err = xdp.Queues("xdpnet-no-such-if")
			assert.ErrorIs(t, err, unix.ENODEV)
			return nil
		}))
	}
}
