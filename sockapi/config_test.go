package sockapi_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
	"github.com/xdpnet/xdpnet/tcp"
	"github.com/xdpnet/xdpnet/udp"
)

// TestConfigProtocols: every option of Config lands in its field of the
// cores' configurations, the zero Config leaves the cores' defaults
// (zero fields) but for the shared memory account, and the test hook
// sees and edits the translation.
func TestConfigProtocols(t *testing.T) {
	cfg := sockapi.Config{
		SendBuffer: 1 << 10, RecvBuffer: 2 << 10, SendBufferMax: 3 << 10, RecvBufferMax: 4 << 10,
		MemoryLimit: 5 << 20, CongestionControl: sockapi.Reno,
		NoTimestamps: true, NoSACK: true, Pacing: true, MSL: 7 * time.Second,
		UDPReadBuffer: 8 << 10, UDPWriteBuffer: 9 << 10,
	}
	var hooked tcp.Config
	sockapi.SetTCPHook(&cfg, func(c *tcp.Config) { hooked = *c; c.SynBacklog = 1 })
	tc, uc := sockapi.Protocols(cfg)
	require.NotNil(t, tc.Memory, "one account for the stack's pollers")
	tc.Memory = nil
	assert.Equal(t, tcp.Config{
		SendBuffer: 1 << 10, RecvBuffer: 2 << 10, SendBufferMax: 3 << 10, RecvBufferMax: 4 << 10,
		MemoryLimit: 5 << 20, CongestionControl: tcp.CongestionReno,
		NoTimestamps: true, NoSACK: true, Pacing: true, MSL: 7 * time.Second, SynBacklog: 1,
	}, tc)
	assert.Equal(t, 0, hooked.SynBacklog, "the hook runs on the translation")
	assert.Equal(t, 4<<10, hooked.RecvBufferMax)
	assert.Equal(t, udp.Config{RecvQueueBytes: 8 << 10, SendQueueBytes: 9 << 10}, uc)

	tc, uc = sockapi.Protocols(sockapi.Config{})
	require.NotNil(t, tc.Memory)
	tc.Memory = nil
	assert.Equal(t, tcp.Config{}, tc, "zero fields: the cores' defaults")
	assert.Equal(t, udp.Config{}, uc)
	assert.Equal(t, "", string(sockapi.CongestionControl("")), "the zero value is the default, Cubic")
	assert.Equal(t, tcp.CongestionCubic, string(sockapi.Cubic), "the names pass through")
	assert.Equal(t, tcp.CongestionReno, string(sockapi.Reno))
}

// TestXDPMode: the modes parse from and print as ip-link(8)'s names, and
// the zero mode is XDPAuto.
func TestXDPMode(t *testing.T) {
	for _, c := range []struct {
		in   string
		want sockapi.XDPMode
	}{{"auto", sockapi.XDPAuto}, {"native", sockapi.XDPNative}, {"drv", sockapi.XDPNative}, {"generic", sockapi.XDPGeneric}, {"skb", sockapi.XDPGeneric}} {
		m, err := sockapi.ParseXDPMode(c.in)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, m, c.in)
	}
	assert.Equal(t, "auto", sockapi.XDPAuto.String())
	assert.Equal(t, "native", sockapi.XDPNative.String())
	assert.Equal(t, "generic", sockapi.XDPGeneric.String())
	_, err := sockapi.ParseXDPMode("hw")
	assert.ErrorContains(t, err, "want auto, native or generic")
}

// TestConfigKeepAlive: a positive Config.KeepAlive arms the keepalive
// timer of the connections a stack dials and accepts, at the period
// given; a negative one leaves an idle connection with no timer (zero is
// Go's default: TestKeepAliveDefault).
func TestConfigKeepAlive(t *testing.T) {
	la, lb := nic.NewPipe(nic.PipeConfig{Buffers: 1024, QueueDepth: 1024})
	a, err := sockapi.New(sockapi.Config{Addr: netip.MustParsePrefix("198.18.0.1/24"), KeepAlive: 45 * time.Second}, la)
	require.NoError(t, err)
	b, err := sockapi.New(sockapi.Config{Addr: netip.MustParsePrefix("198.18.0.2/24"), KeepAlive: -1}, lb)
	require.NoError(t, err)
	defer func() {
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
	}()
	timer := func(s *sockapi.Stack, dial *sockapi.Stack) (dialed, accepted sockapi.TCPInfo) {
		ln, err := s.Listen("tcp", ":0")
		require.NoError(t, err)
		defer ln.Close()
		got := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			got <- c
		}()
		c, err := dial.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		sc := <-got
		require.NotNil(t, sc)
		defer sc.Close()
		dialed, err = c.(*sockapi.Conn).Info()
		require.NoError(t, err)
		accepted, err = sc.(*sockapi.Conn).Info()
		require.NoError(t, err)
		return dialed, accepted
	}
	// a dials b: a's connection keeps alive, b's does not.
	d, acc := timer(b, a)
	assert.Equal(t, "keepalive", d.Timer)
	assert.LessOrEqual(t, d.TimerIn, 45*time.Second)
	assert.Greater(t, d.TimerIn, 40*time.Second)
	assert.Equal(t, "", acc.Timer)
	// b dials a: a's accepted connection keeps alive.
	d, acc = timer(a, b)
	assert.Equal(t, "", d.Timer)
	assert.Equal(t, "keepalive", acc.Timer)
	assert.Greater(t, acc.TimerIn, 40*time.Second)
}
