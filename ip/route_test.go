package ip

import (
	"net/netip"
	"testing"

	"github.com/xdpnet/xdpnet/internal/wire"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLocal(t *testing.T) {
	l := newLayer(t)
	for a, want := range map[string]bool{
		"198.18.0.1": true, "127.0.0.1": true, "127.1.2.3": true,
		"198.18.0.2": false, "198.18.0.255": false, "0.0.0.0": false, "2001:db8::1": false,
	} {
		assert.Equal(t, want, l.Local(netip.MustParseAddr(a)), a)
	}
}

// TestWriteHeaderSource: the header carries the transport's source, the
// layer's address when it gives none.
func TestWriteHeaderSource(t *testing.T) {
	l := newLayer(t)
	b := make([]byte, 20)
	_, err := l.WriteHeader(b, LoopbackAddr, netip.MustParseAddr("127.0.0.1"), 6, 0)
	require.NoError(t, err)
	assert.Equal(t, LoopbackAddr, wire.IPv4(b).Src())
	_, err = l.WriteHeader(b, netip.Addr{}, netip.MustParseAddr("198.18.0.2"), 6, 0)
	require.NoError(t, err)
	assert.Equal(t, l.Addr(), wire.IPv4(b).Src())
	assert.True(t, wire.IPv4(b).ChecksumValid())
	_, err = l.WriteHeader(b, LoopbackAddr, netip.MustParseAddr("198.18.0.2"), 6, 0)
	assert.ErrorIs(t, err, ErrNoRoute, "127/8 never goes on the link")
	_, err = l.WriteHeader(b, LoopbackAddr, l.Addr(), 6, 0)
	assert.NoError(t, err, "127.0.0.1 to our own address is loopback")
}

func TestRoute(t *testing.T) {
	withGW := newLayer(t)
	noGW := newLayer(t, func(c *Config) { c.Gateway = netip.Addr{} })
	cases := []struct {
		dst      string
		gw, noGW string // "" for ErrNoRoute
		what     string
	}{
		{"198.18.0.2", "198.18.0.2", "198.18.0.2", "on-link"},
		{"198.18.0.254", "198.18.0.254", "198.18.0.254", "the gateway itself is on-link"},
		{"198.18.0.255", "198.18.0.255", "198.18.0.255", "directed broadcast"},
		{"255.255.255.255", "255.255.255.255", "255.255.255.255", "limited broadcast"},
		{"198.18.1.2", "198.18.0.254", "", "next subnet: off-link"},
		{"203.0.113.7", "198.18.0.254", "", "far away"},
		{"198.18.0.1", "198.18.0.1", "198.18.0.1", "ourselves: local, the loopback path's"},
		{"127.0.0.1", "127.0.0.1", "127.0.0.1", "loopback"},
		{"127.255.0.9", "127.255.0.9", "127.255.0.9", "all of 127/8 is loopback"},
		{"0.0.0.0", "", "", "unspecified"},
		{"0.1.2.3", "", "", "this network"},
		{"224.0.0.1", "", "", "multicast"},
		{"240.0.0.1", "", "", "reserved"},
		{"2001:db8::1", "", "", "IPv6"},
	}
	for _, c := range cases {
		for _, v := range []struct {
			l    *Layer
			want string
		}{{withGW, c.gw}, {noGW, c.noGW}} {
			before := v.l.Stats().IP.OutNoRoutes
			hop, err := v.l.Route(netip.MustParseAddr(c.dst))
			if v.want == "" {
				assert.ErrorIs(t, err, ErrNoRoute, c.what)
				assert.False(t, hop.IsValid())
				assert.Equal(t, before+1, v.l.Stats().IP.OutNoRoutes, c.what)
			} else {
				require.NoError(t, err, c.what)
				assert.Equal(t, netip.MustParseAddr(v.want), hop, c.what)
				assert.Equal(t, before, v.l.Stats().IP.OutNoRoutes, c.what)
			}
		}
	}
}

func TestRouteSlash32(t *testing.T) {
	l := newLayer(t, func(c *Config) {
		c.Addr = netip.MustParsePrefix("198.18.0.1/32")
		c.Gateway = netip.Addr{}
	})
	_, err := l.Route(peer)
	assert.ErrorIs(t, err, ErrNoRoute, "a /32 has no neighbours")
}

func TestNewRejectsBadConfig(t *testing.T) {
	bad := map[string]func(*Config){
		"no address":         func(c *Config) { c.Addr = netip.Prefix{} },
		"IPv6":               func(c *Config) { c.Addr = netip.MustParsePrefix("2001:db8::1/64") },
		"loopback":           func(c *Config) { c.Addr = netip.MustParsePrefix("127.0.0.1/8") },
		"multicast":          func(c *Config) { c.Addr = netip.MustParsePrefix("224.0.0.1/24") },
		"broadcast address":  func(c *Config) { c.Addr = netip.MustParsePrefix("198.18.0.255/24") },
		"gateway off-link":   func(c *Config) { c.Gateway = far },
		"gateway is us":      func(c *Config) { c.Gateway = ours },
		"MTU too small":      func(c *Config) { c.MTU = 67 },
		"MTU too big":        func(c *Config) { c.MTU = 65536 },
		"reasm memory small": func(c *Config) { c.ReasmMemory = minReasmMemory - 1 },
		"negative limit":     func(c *Config) { c.ReasmDatagrams = -1 },
	}
	for name, mod := range bad {
		c := testConfig()
		mod(&c)
		_, err := New(c)
		assert.ErrorIs(t, err, ErrConfig, name)
	}
}

func TestNewDefaults(t *testing.T) {
	c := testConfig()
	c.Secret = [16]byte{}
	l, err := New(c)
	require.NoError(t, err)
	assert.NotEqual(t, [16]byte{}, l.cfg.Secret, "a secret is drawn")
	assert.Equal(t, 1500, l.MTU())
	assert.Equal(t, ours, l.Addr())
	assert.EqualValues(t, 64, l.cfg.TTL)
	assert.Equal(t, 4<<20, l.cfg.ReasmMemory)
}
