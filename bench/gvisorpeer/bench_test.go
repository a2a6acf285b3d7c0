package gvisorpeer_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/xdpnet/xdpnet/bench/gvisorpeer"
	"github.com/xdpnet/xdpnet/internal/latency"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// servers starts the same server on gVisor (the stack's address) and on
// the Local end's kernel (198.18.0.1) of one veth pair, and returns the
// address of each for a kernel client in l.Peer.
func servers(b *testing.B, l *lab.Lab, port string, serve func(net.Listener)) map[string]string {
	st := open(b, l, gvisorpeer.Config{})
	gl, err := st.Listen("tcp", ":"+port)
	require.NoError(b, err)
	b.Cleanup(func() { gl.Close() })
	var kl net.Listener
	kaddr := l.Local.Addr.Addr().String() + ":" + port
	require.NoError(b, l.Local.Do(func() (err error) {
		kl, err = net.Listen("tcp", kaddr)
		return err
	}))
	b.Cleanup(func() { kl.Close() })
	go serve(gl)
	go serve(kl)
	return map[string]string{"gvisor": l.StackAddr.String() + ":" + port, "kernel": kaddr}
}

// BenchmarkRR1B: a kernel client in the peer, 1-byte request/response
// against gVisor and against the kernel on the same veth pair.
func BenchmarkRR1B(b *testing.B) {
	l := lab.New(b, lab.Config{})
	addrs := servers(b, l, "7100", echo)
	for _, sys := range []string{"gvisor", "kernel"} {
		b.Run(sys, func(b *testing.B) {
			c := peerDial(b, l, addrs[sys])
			var h latency.Histogram
			require.NoError(b, rr(c, 1, 200, &h)) // warm-up
			h = latency.Histogram{}
			b.ResetTimer()
			require.NoError(b, rr(c, 1, b.N, &h))
			b.ReportMetric(float64(h.Quantile(0.5).Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(h.Quantile(0.99).Nanoseconds())/1e3, "p99-µs")
		})
	}
}

// sink reads size bytes from each connection and answers one byte.
func sink(size int64) func(net.Listener) {
	return func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := gvisorpeer.StallConn{Conn: c, D: 10 * time.Second}
				for {
					if _, err := io.CopyN(io.Discard, sc, size); err != nil {
						return
					}
					if _, err := c.Write([]byte{1}); err != nil {
						return
					}
				}
			}()
		}
	}
}

// BenchmarkBulkToServer: a kernel client in the peer sends 16 MiB per
// iteration to gVisor and to the kernel on the same veth pair.
func BenchmarkBulkToServer(b *testing.B) {
	const size = 16 << 20
	l := lab.New(b, lab.Config{})
	addrs := servers(b, l, "7101", sink(size))
	buf := make([]byte, size)
	for _, sys := range []string{"gvisor", "kernel"} {
		b.Run(sys, func(b *testing.B) {
			c := peerDial(b, l, addrs[sys])
			ack := make([]byte, 1)
			b.SetBytes(size)
			for b.Loop() {
				require.NoError(b, c.SetDeadline(time.Now().Add(30*time.Second)))
				_, err := c.Write(buf)
				require.NoError(b, err)
				_, err = io.ReadFull(c, ack)
				require.NoError(b, err)
			}
		})
	}
}

// BenchmarkBulkFromClient: gVisor, and the kernel of the same veth end,
// send 16 MiB per iteration to a kernel server in the peer, in 64 KiB
// writes that must each progress within 10 s (gVisor's send buffer
// bounded to 1 MiB).
func BenchmarkBulkFromClient(b *testing.B) {
	const size, chunk = 16 << 20, 64 << 10
	l := lab.New(b, lab.Config{})
	st := open(b, l, gvisorpeer.Config{SendBuffer: 1 << 20})
	ln := peerListen(b, l, l.Peer.Addr.Addr().String()+":7102")
	go sink(size)(ln)
	dial := map[string]func() (net.Conn, error){
		"gvisor": func() (net.Conn, error) { return st.Dial(b.Context(), "tcp", ln.Addr().String()) },
		"kernel": func() (c net.Conn, err error) {
			err = l.Local.Do(func() error { c, err = net.Dial("tcp", ln.Addr().String()); return err })
			return c, err
		},
	}
	buf := make([]byte, chunk)
	for _, sys := range []string{"gvisor", "kernel"} {
		b.Run(sys, func(b *testing.B) {
			c, err := dial[sys]()
			require.NoError(b, err)
			defer c.Close()
			sc := gvisorpeer.StallConn{Conn: c, D: 10 * time.Second}
			ack := make([]byte, 1)
			b.SetBytes(size)
			for b.Loop() {
				for range size / chunk {
					_, err := sc.Write(buf)
					require.NoError(b, err)
				}
				_, err = io.ReadFull(sc, ack)
				require.NoError(b, err)
			}
		})
	}
}
