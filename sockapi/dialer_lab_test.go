package sockapi_test

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// TestDialerLocalAddrLab: on two queues over AF_XDP, a Dialer's source
// port is the one the kernel's listener sees, for several ports (each
// dialled on the poller that owns its flow, whichever queue the kernel's
// answers take), as a kernel net.Dialer's is at xdpnet's listener.
func TestDialerLocalAddrLab(t *testing.T) {
	l := lab.New(t, lab.Config{Queues: 2})
	s := labStack(t, l, sockapi.Config{Queues: 2})
	kln := kernelListen(t, l)
	for port := 41000; port < 41006; port++ {
		d := &sockapi.Dialer{Stack: s, LocalAddr: &net.TCPAddr{Port: port}, Timeout: 5 * time.Second}
		c, kc := dialAcceptAny(t, d, kln)
		assert.Equal(t, port, kc.RemoteAddr().(*net.TCPAddr).Port)
		assert.Equal(t, port, c.LocalAddr().(*net.TCPAddr).Port)
	}

	// The kernel's Dialer, for comparison, at xdpnet's listener.
	ln, err := s.Listen("tcp", ":7110")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	var kc net.Conn
	require.NoError(t, l.Peer.Do(func() (err error) {
		kd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: l.Peer.Addr.Addr().AsSlice(), Port: 41100}, Timeout: 5 * time.Second}
		kc, err = kd.Dial("tcp4", ln.Addr().String())
		return err
	}))
	defer kc.Close()
	select {
	case c := <-accepted:
		require.NotNil(t, c)
		defer c.Close()
		assert.Equal(t, 41100, c.RemoteAddr().(*net.TCPAddr).Port)
	case <-time.After(5 * time.Second):
		t.Fatal("xdpnet accepted nothing")
	}
}
