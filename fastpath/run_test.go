package fastpath_test

import (
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
)

// starvedLink is a pipe end that lends no transmit buffer until fed is
// set, as a pipe whose peer holds every buffer does, and closes asked at
// the first Alloc it refuses.
type starvedLink struct {
	*nic.Pipe
	asked   chan struct{}
	fed     atomic.Bool
	refused int // Allocs refused; the poller's
}

func (l *starvedLink) Alloc(fs []nic.Frame) int {
	if !l.fed.Load() {
		if l.refused == 0 {
			close(l.asked)
		}
		l.refused++
		return 0
	}
	return l.Pipe.Alloc(fs)
}

// TestRunYieldsWhileOutOfTransmitBuffers: a poller whose output waits
// for a transmit buffer that only another goroutine can give back (the
// pipe's peer poller releasing the frames it received) yields between
// its rounds, so that goroutine runs even on the poller's own P. On one
// P the goroutine readied by the first refused Alloc runs when the
// poller yields; a poller that spun without yielding would have it wait
// for the runtime's preemption, 10 ms and tens of thousands of rounds.
// (Seen as a bulk transfer between two stacks over the pipe running at a
// tenth of its rate for seconds, the sender's poller spinning on
// TxNoBuffer while the receiver's, holding its buffers, waited.)
func TestRunYieldsWhileOutOfTransmitBuffers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	a, peer := nic.NewPipe(nic.PipeConfig{})
	l := &starvedLink{Pipe: a, asked: make(chan struct{})}
	p, err := fastpath.New(fastpath.Config{Link: l, IP: ip.Config{Addr: netip.PrefixFrom(stackAddr, 24)}})
	require.NoError(t, err)
	stop := p.Start() // its first output, the ARP announcement, needs a buffer
	<-l.asked
	l.fed.Store(true)
	// The announcement leaves once a buffer is free.
	require.NoError(t, peer.Arm(time.Now().Add(10*time.Second)))
	require.NoError(t, peer.Park())
	fs := make([]nic.Frame, 1)
	n, err := peer.Receive(fs)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the announcement, sent")
	peer.Release(fs)
	require.NoError(t, stop())
	p.Close()
	assert.Less(t, l.refused, 10, "rounds the poller ran before the goroutine it readied")
}
