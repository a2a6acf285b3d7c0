package sockapi_test

import (
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
)

// TestTracePipe: Config.Trace hears every state change of a real Dial,
// Accept and Close over the pipe, on both stacks, in order: the dialler
// closes first and ends in TIME_WAIT, the acceptor through CLOSE_WAIT
// and LAST_ACK to CLOSE.
func TestTracePipe(t *testing.T) {
	ea, eb := make(chan sockapi.TraceEvent, 64), make(chan sockapi.TraceEvent, 64)
	// A Trace must not block the poller: what does not fit is counted,
	// as a service would. The channels are far larger than one
	// connection's events, so none is lost.
	var lost atomic.Int64
	send := func(ch chan sockapi.TraceEvent) func(sockapi.TraceEvent) {
		return func(e sockapi.TraceEvent) {
			select {
			case ch <- e:
			default:
				lost.Add(1)
			}
		}
	}
	la, lb := nic.NewPipe(nic.PipeConfig{Buffers: 1024, QueueDepth: 1024})
	a, err := sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrA, 24), Trace: send(ea)}, la)
	require.NoError(t, err)
	defer a.Close()
	b, err := sockapi.New(sockapi.Config{Addr: netip.PrefixFrom(addrB, 24), Trace: send(eb)}, lb)
	require.NoError(t, err)
	defer b.Close()

	ln, err := b.Listen("tcp", ":7")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := a.Dial("tcp", "198.18.0.3:7")
	require.NoError(t, err)
	s := <-accepted
	require.NotNil(t, s)
	local, remote := netip.MustParseAddrPort(c.LocalAddr().String()), netip.MustParseAddrPort(c.RemoteAddr().String())

	require.NoError(t, c.Close())
	_, err = io.ReadAll(s) // the FIN
	require.NoError(t, err)
	require.NoError(t, s.Close())

	expectStates(t, ea, local, remote, sockapi.TCPSynSent, sockapi.TCPEstablished, sockapi.TCPFinWait1,
		sockapi.TCPFinWait2, sockapi.TCPTimeWait)
	expectStates(t, eb, remote, local, sockapi.TCPSynRecv, sockapi.TCPEstablished, sockapi.TCPCloseWait,
		sockapi.TCPLastAck, sockapi.TCPClose)
	assert.Zero(t, lost.Load())
}

// expectStates reads the state changes of the connection local–remote
// from events until it has seen the states want entered, one after the
// other from CLOSE, within a bounded wait.
func expectStates(t *testing.T, events <-chan sockapi.TraceEvent, local, remote netip.AddrPort, want ...sockapi.TCPState) {
	t.Helper()
	from := sockapi.TCPClose
	timeout := time.After(5 * time.Second)
	for _, to := range want {
		for {
			var e sockapi.TraceEvent
			select {
			case e = <-events:
			case <-timeout:
				t.Fatalf("no change to %v after %v", to, from)
			}
			if e.Kind != sockapi.TraceState {
				continue
			}
			assert.Equal(t, []any{local, remote, from, to}, []any{e.Local, e.Remote, e.From, e.To})
			break
		}
		from = to
	}
}
