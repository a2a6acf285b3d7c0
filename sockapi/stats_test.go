package sockapi

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/nic"
)

// TestCountersAfterClose reads the pollers' counters while they run
// (through their Do queues: the race detector watches) and after Close
// (directly).
func TestCountersAfterClose(t *testing.T) {
	la, lb := nic.NewPipe(nic.PipeConfig{Buffers: 256, QueueDepth: 256})
	a, err := New(Config{Addr: netip.MustParsePrefix("198.18.0.2/24")}, la)
	require.NoError(t, err)
	b, err := New(Config{Addr: netip.MustParsePrefix("198.18.0.3/24")}, lb)
	require.NoError(t, err)
	defer b.Close()
	ln, err := b.Listen("tcp", ":80")
	require.NoError(t, err)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := a.Dial("tcp", "198.18.0.3:80")
	require.NoError(t, err)
	st := a.Counters()
	require.Len(t, st.Queues, 1)
	assert.Equal(t, uint64(1), st.TCP.ActiveOpens)
	assert.NotZero(t, st.Queues[0].Link.TxFrames)
	c.Close()
	require.NoError(t, a.Close())
	final := a.Counters()
	assert.GreaterOrEqual(t, final.TCP.OutSegs, st.TCP.OutSegs+1, "the FIN went out")
}

// TestDeadlineReuse moves one deadline the way net/http does on every
// request (far, past, none) and checks each setting still takes effect
// with the one timer, a wall-clock deadline included.
func TestDeadlineReuse(t *testing.T) {
	d := newDeadline()
	for range 100 {
		d.set(time.Now().Add(time.Hour))
		assert.False(t, isClosed(d.wait()))
		d.set(time.Unix(1, 0))
		assert.True(t, isClosed(d.wait()))
		d.set(time.Time{})
		assert.False(t, isClosed(d.wait()))
	}
	for _, at := range []time.Time{time.Now().Add(20 * time.Millisecond), time.Now().Add(20 * time.Millisecond).Round(0)} {
		d.set(at)
		select {
		case <-d.wait():
			assert.False(t, time.Now().Before(at), "fired early")
		case <-time.After(5 * time.Second):
			t.Fatal("the deadline never fired")
		}
	}
	d.set(time.Time{})
}

// TestDeadlineMovedLater: a deadline moved later while its timer is due
// does not fire early, and fires at its new time. In a synctest bubble
// the clock moves only once every goroutine in it waits, so when Sleep
// returns the first timer has had its chance to fire.
func TestDeadlineMovedLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newDeadline()
		d.set(time.Now().Add(time.Millisecond))
		d.set(time.Now().Add(time.Hour))
		time.Sleep(10 * time.Millisecond)
		assert.False(t, isClosed(d.wait()), "fired at the time it was moved from")
		time.Sleep(time.Hour)
		assert.True(t, isClosed(d.wait()), "did not fire at its new time")
		d.set(time.Time{})
	})
}
