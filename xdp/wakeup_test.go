package xdp

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"golang.org/x/sys/unix"
)

// TestWakeupDecisions checks when Kick and WakeRx make a syscall. The
// socket's fd is -1, so a syscall shows up as EBADF and its absence as nil.
func TestWakeupDecisions(t *testing.T) {
	txMem, fillMem := newSharedRing[Desc](8, 0), newSharedRing[uint64](8, 0)
	tx, _ := txMem.pair()
	fill, _ := fillMem.pair()
	s := &Socket{fd: -1, TX: tx, Fill: fill}

	for _, c := range []struct {
		name        string
		needWakeup  bool
		flag        uint32
		wantSyscall bool
	}{
		{"need_wakeup on, flag clear: no syscall", true, 0, false},
		{"need_wakeup on, flag set: syscall", true, ringNeedWakeup, true},
		{"need_wakeup off: Kick always syscalls", false, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.needWakeup = c.needWakeup
			txMem.flags = c.flag
			err := s.Kick()
			if c.wantSyscall {
				assert.ErrorIs(t, err, unix.EBADF)
				assert.EqualError(t, err, "xdp: sendto: bad file descriptor")
			} else {
				assert.NoError(t, err)
			}
		})
	}

	s.needWakeup = true
	fillMem.flags = 0
	assert.NoError(t, s.WakeRx(), "the fill ring does not ask")
	fillMem.flags = ringNeedWakeup
	assert.ErrorIs(t, s.WakeRx(), unix.EBADF, "the fill ring asks: recvfrom")
	s.needWakeup = false
	assert.NoError(t, s.WakeRx(), "without need_wakeup the kernel polls the fill ring itself")
}
