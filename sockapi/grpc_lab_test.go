package sockapi_test

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
)

// TestGRPCServerLab: gRPC's server on xdpnet, gRPC's client on the
// kernel in the peer's namespace, over AF_XDP.
func TestGRPCServerLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{})
	ln, err := s.Listen("tcp", ":0")
	require.NoError(t, err)
	h := serveGRPC(t, ln)
	kernelDial := func(ctx context.Context, addr string) (c net.Conn, err error) {
		err = l.Peer.Do(func() error {
			c, err = new(net.Dialer).DialContext(ctx, "tcp4", addr)
			return err
		})
		return c, err
	}
	checkGRPC(t, dialGRPC(t, ln.Addr().String(), kernelDial), h)
}

// TestGRPCClientLab: gRPC's client on xdpnet, gRPC's server on the kernel
// in the peer's namespace, over AF_XDP.
func TestGRPCClientLab(t *testing.T) {
	l := lab.New(t, lab.Config{})
	s := labStack(t, l, sockapi.Config{})
	ln := kernelListen(t, l)
	h := serveGRPC(t, ln)
	checkGRPC(t, dialGRPC(t, ln.Addr().String(), stackDialer(s)), h)
}
