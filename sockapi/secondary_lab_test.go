package sockapi_test

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// TestSecondaryAddressLab: a stack with a secondary address answers the
// kernel's ping to it, accepts the kernel's connection to it on a
// listener of the unspecified address (whose LocalAddr it is), and dials
// the kernel from it when a Dialer's LocalAddr says so; a LocalAddr that
// is none of its addresses is refused.
func TestSecondaryAddressLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	base := netip.PrefixFrom(l.StackAddr, 24).Masked().Addr().As4()
	base[3] = 77
	second := netip.AddrFrom4(base)
	s := labStack(t, l, sockapi.Config{Secondary: []netip.Addr{second}})

	out := l.Peer.Run(t, "ping", "-c", "2", "-i", "0.2", "-W", "2", second.String())
	assert.Contains(t, out, "2 received", out)
	assert.Contains(t, out, "from "+second.String(), "the reply comes from the address pinged")

	ln, err := s.Listen("tcp", ":7300")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		defer c.Close()
		accepted <- c.LocalAddr()
		io.Copy(c, c)
	}()
	require.NoError(t, l.Peer.Do(func() error {
		c, err := net.DialTimeout("tcp4", netip.AddrPortFrom(second, 7300).String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		_, err = io.ReadFull(c, make([]byte, 1))
		return err
	}))
	assert.Equal(t, netip.AddrPortFrom(second, 7300).String(), (<-accepted).String())

	kl := kernelListen(t, l)
	from := make(chan string, 1)
	go func() {
		c, err := kl.Accept()
		if err != nil {
			from <- err.Error()
			return
		}
		defer c.Close()
		from <- c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().String()
	}()
	d := sockapi.Dialer{Stack: s, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(second, 0))}
	c, err := d.Dial("tcp", kl.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, second.String(), <-from, "the kernel sees the secondary address")

	base[3] = 78
	d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(base), 0))
	_, err = d.Dial("tcp", kl.Addr().String())
	assert.ErrorContains(t, err, "cannot assign requested address")
}
