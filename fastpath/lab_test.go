package fastpath_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// labStack is xdpnet on the Local end of a lab, with StackAddr/24, its
// poller running on its own goroutine until the test ends.
type labStack struct {
	*fastpath.Poller
	dev  *nic.XDPDevice
	stop func() // stops the poller's goroutine; then its state may be read
}

// startStack opens the lab's Local end and runs a poller on it. setup, if
// not nil, runs before the poller starts (to bind endpoints); serve, if not
// nil, runs on the poller's goroutine on every Poll (see OnRound).
func startStack(t *testing.T, l *lab.Lab, mode steer.Mode, setup func(p *fastpath.Poller), serve func(p *fastpath.Poller, now time.Duration)) *labStack {
	t.Helper()
	s := &labStack{}
	require.NoError(t, l.Local.Do(func() (err error) {
		s.dev, err = nic.OpenXDP(nic.XDPConfig{Interface: l.Local.Link, Addrs: []netip.Addr{l.StackAddr}, Attach: mode})
		return err
	}))
	cfg := fastpath.Config{
		Link: s.dev.Links()[0],
		IP:   ip.Config{Addr: netip.PrefixFrom(l.StackAddr, 24)},
	}
	var err error
	s.Poller, err = fastpath.New(cfg)
	require.NoError(t, err)
	if serve != nil {
		s.OnRound(func(now time.Duration) { serve(s.Poller, now) })
	}
	if setup != nil {
		setup(s.Poller)
	}
	stop := s.Start()
	s.stop = func() {
		if err := stop(); err != nil {
			t.Errorf("poller: %v", err)
		}
	}
	t.Cleanup(func() {
		s.stop()
		s.Close()
		s.dev.Close()
	})
	return s
}
