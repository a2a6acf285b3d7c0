package sockapi_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/sockapi"
)

// copySize is how much the copy tests move: 64 MiB, 16 MiB with -short.
func copySize() int64 {
	if testing.Short() {
		return 16 << 20
	}
	return 64 << 20
}

// source is n pseudo-random bytes from seed, and their SHA-256.
func source(seed uint64, n int64) (io.Reader, [32]byte) {
	h := sha256.New()
	io.Copy(h, io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), n))
	var sum [32]byte
	h.Sum(sum[:0])
	return io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), n), sum
}

// hashed reads all of r and returns the byte count and SHA-256, on a
// channel.
func hashed(r io.Reader) <-chan [32]byte {
	out := make(chan [32]byte, 1)
	go func() {
		h := sha256.New()
		io.Copy(h, r)
		var sum [32]byte
		h.Sum(sum[:0])
		out <- sum
	}()
	return out
}

// sizes records the length of each buffer a Read or Write is handed.
type sizes struct{ max int }

func (s *sizes) note(p []byte) { s.max = max(s.max, len(p)) }

type sizedWriter struct {
	io.Writer
	*sizes
}

func (w sizedWriter) Write(p []byte) (int, error) { w.note(p); return w.Writer.Write(p) }

type sizedReader struct {
	io.Reader
	*sizes
}

func (r sizedReader) Read(p []byte) (int, error) { r.note(p); return r.Reader.Read(p) }

// TestReadFromWriteToPipe: ReadFrom fills the send ring straight from a
// reader and WriteTo hands a writer the receive ring in place: every
// byte arrives (SHA-256), and the buffers handed out are the rings', not
// io.Copy's 32 KiB.
func TestReadFromWriteToPipe(t *testing.T) {
	client, server := pipeConns(t)
	n := copySize()
	src, want := source(1, n)
	var rs, ws sizes
	got := make(chan [32]byte, 1)
	go func() {
		h := sha256.New()
		m, err := server.(*sockapi.Conn).WriteTo(sizedWriter{h, &ws})
		assert.NoError(t, err)
		assert.Equal(t, n, m)
		var sum [32]byte
		got <- [32]byte(h.Sum(sum[:0]))
	}()
	m, err := io.Copy(client, sizedReader{src, &rs}) // io.Copy takes ReadFrom
	require.NoError(t, err)
	require.Equal(t, n, m)
	require.NoError(t, client.(*sockapi.Conn).CloseWrite())
	require.Equal(t, want, <-got)
	t.Logf("largest read into the send ring %d, largest write from the receive ring %d", rs.max, ws.max)
	assert.Greater(t, rs.max, 32<<10, "reads go straight into the ring's room")
	assert.Greater(t, ws.max, 32<<10, "writes come straight from the ring")
}

// TestProxyPipe: io.Copy between two connections of one stack (a proxy
// on stack b between a client and a sink on stack a) moves every byte,
// both ways at once, ring to ring.
func TestProxyPipe(t *testing.T) {
	a, b := pipeStacks(t)
	front, err := b.Listen("tcp", ":0")
	require.NoError(t, err)
	defer front.Close()
	sinkLn, err := a.Listen("tcp", ":0")
	require.NoError(t, err)
	defer sinkLn.Close()

	// The sink echoes nothing: it hashes what comes and sends its own
	// stream back.
	n := copySize() / 2
	up, upSum := source(2, n)
	down, downSum := source(3, n)
	sinkGot := make(chan [32]byte, 1)
	go func() {
		c, err := sinkLn.Accept()
		if !assert.NoError(t, err) {
			sinkGot <- [32]byte{}
			return
		}
		defer c.Close()
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			_, err := io.Copy(c, down)
			assert.NoError(t, err)
			c.(*sockapi.Conn).CloseWrite()
		}()
		sinkGot <- <-hashed(c)
		<-sent
	}()
	go func() {
		in, err := front.Accept()
		if !assert.NoError(t, err) {
			return
		}
		defer in.Close()
		out, err := b.Dial("tcp", sinkLn.Addr().String())
		if !assert.NoError(t, err) {
			return
		}
		defer out.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err := io.Copy(in, out)
			assert.NoError(t, err)
			in.(*sockapi.Conn).CloseWrite()
		}()
		_, err = io.Copy(out, in)
		assert.NoError(t, err)
		out.(*sockapi.Conn).CloseWrite()
		<-done
	}()
	client, err := a.Dial("tcp", front.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	clientGot := hashed(client)
	_, err = io.Copy(client, up)
	require.NoError(t, err)
	require.NoError(t, client.(*sockapi.Conn).CloseWrite())
	assert.Equal(t, upSum, <-sinkGot, "client to sink")
	assert.Equal(t, downSum, <-clientGot, "sink to client")
}

// endless is a reader that never ends; call sets what happens on each
// Read first.
type endless struct{ call func() }

func (e endless) Read(p []byte) (int, error) {
	if e.call != nil {
		e.call()
	}
	return len(p), nil
}

// TestReadFromDeadline: the write deadline ends a ReadFrom waiting for
// room, and one that has room but passes the deadline between reads.
func TestReadFromDeadline(t *testing.T) {
	client, _ := pipeConns(t)
	c := client.(*sockapi.Conn)
	// The server does not read: the rings fill and ReadFrom waits.
	require.NoError(t, c.SetWriteDeadline(time.Now().Add(200*time.Millisecond)))
	n, err := c.ReadFrom(endless{})
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout())
	assert.Positive(t, n, "it filled the rings first")

	client2, _ := pipeConns(t)
	c = client2.(*sockapi.Conn)
	reads := 0
	n, err = c.ReadFrom(endless{call: func() {
		if reads++; reads == 3 {
			c.SetWriteDeadline(time.Now().Add(-time.Second))
		}
	}})
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Equal(t, 3, reads, "the deadline is checked between reads")
	assert.Positive(t, n)
}

// TestWriteToDeadline: the read deadline ends a WriteTo waiting for data.
func TestWriteToDeadline(t *testing.T) {
	client, server := pipeConns(t)
	_, err := client.Write([]byte("some"))
	require.NoError(t, err)
	require.NoError(t, server.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	var got bytes.Buffer
	n, err := server.(*sockapi.Conn).WriteTo(&got)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.Equal(t, int64(4), n)
	assert.Equal(t, "some", got.String())
}

// TestReadFromWriteToReset: the peer's reset ends ReadFrom and WriteTo
// with the error Write and Read report, ECONNRESET in a *net.OpError
// for "write" and "read"; a call after that sees the end as Write and
// Read do then (EPIPE; io.EOF, which is no error for WriteTo).
func TestReadFromWriteToReset(t *testing.T) {
	for _, tc := range []struct {
		op, after string
		copy      func(c *sockapi.Conn) error
	}{
		{"write", "EPIPE", func(c *sockapi.Conn) error { _, err := c.ReadFrom(endless{}); return err }},
		{"read", "EOF", func(c *sockapi.Conn) error { _, err := c.WriteTo(io.Discard); return err }},
	} {
		t.Run(tc.op, func(t *testing.T) {
			client, server := pipeConns(t)
			c := client.(*sockapi.Conn)
			res := make(chan error, 1)
			go func() { res <- tc.copy(c) }() // ReadFrom fills the rings and waits; WriteTo waits
			require.NoError(t, server.(*sockapi.Conn).SetLinger(0))
			require.NoError(t, server.Close())
			err := <-res
			var oe *net.OpError
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, tc.op, oe.Op)
			assert.ErrorIs(t, err, syscall.ECONNRESET)
			err = tc.copy(c)
			if tc.after == "EPIPE" {
				assert.ErrorIs(t, err, syscall.EPIPE)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

// blockingReader blocks in Read until release is closed, then returns
// io.EOF.
type blockingReader struct{ in, release chan struct{} }

func (b blockingReader) Read(p []byte) (int, error) {
	close(b.in)
	<-b.release
	return 0, io.EOF
}

// TestCloseDuringReadFrom: Close does not wait for a ReadFrom whose
// reader blocks (Go's net does not wait for a copy's other side); the
// FIN follows once the reader returns, after the data written before.
func TestCloseDuringReadFrom(t *testing.T) {
	client, server := pipeConns(t)
	c := client.(*sockapi.Conn)
	br := blockingReader{in: make(chan struct{}), release: make(chan struct{})}
	res := make(chan error, 1)
	go func() {
		_, err := c.ReadFrom(io.MultiReader(bytes.NewReader([]byte("before")), br))
		res <- err
	}()
	<-br.in
	require.NoError(t, c.Close(), "returns with the reader still blocked")
	close(br.release)
	require.ErrorIs(t, <-res, net.ErrClosed)
	got, err := io.ReadAll(server)
	require.NoError(t, err)
	assert.Equal(t, "before", string(got))
}

// TestCloseRead: after CloseRead, Reads return what was received, then
// io.EOF at once, and a blocked Read returns; data arriving later is
// still acknowledged and readable. The same script runs on the kernel's
// loopback first, so the test checks Linux's SHUT_RD as well as ours.
func TestCloseRead(t *testing.T) {
	t.Run("kernel", func(t *testing.T) {
		ln := kernelNet.listen(t)
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		client := kernelNet.dial(t, ln.Addr().String())
		server := <-accepted
		require.NotNil(t, server)
		defer server.Close()
		closeReadScript(t, client, server)
	})
	t.Run("xdpnet", func(t *testing.T) {
		client, server := pipeConns(t)
		closeReadScript(t, client, server)
	})
}

func closeReadScript(t *testing.T, client, server net.Conn) {
	require.NoError(t, server.SetReadDeadline(time.Now().Add(30*time.Second))) // a failure fails, not hangs
	blocked := make(chan error, 1)
	go func() {
		_, err := server.Read(make([]byte, 10))
		blocked <- err
	}()
	// The Read above either blocks until CloseRead or comes after it:
	// io.EOF both ways.
	require.NoError(t, server.(interface{ CloseRead() error }).CloseRead())
	require.Equal(t, io.EOF, <-blocked)

	_, err := client.Write([]byte("hello world"))
	require.NoError(t, err)
	// Bytes received after CloseRead are still read.
	var got []byte
	buf := make([]byte, 64)
	for len(got) < len("hello world") {
		n, err := server.Read(buf)
		got = append(got, buf[:n]...)
		if n == 0 {
			require.Equal(t, io.EOF, err, "EOF while nothing waits, not a wait")
			runtime.Gosched()
		}
	}
	assert.Equal(t, "hello world", string(got))
	n, err := server.Read(buf)
	assert.Zero(t, n)
	assert.Equal(t, io.EOF, err)
	if s, ok := server.(*sockapi.Conn); ok {
		m, err := s.WriteTo(io.Discard)
		assert.Zero(t, m)
		assert.NoError(t, err, "WriteTo ends as at the peer's FIN")
	}

	// The write side is untouched.
	_, err = server.Write([]byte("reply"))
	require.NoError(t, err)
	_, err = io.ReadFull(client, buf[:5])
	require.NoError(t, err)
	assert.Equal(t, "reply", string(buf[:5]))
}

// network is where a benchmark's connections live: xdpnet stacks or the
// kernel's loopback.
type network struct {
	listen func(testing.TB) net.Listener
	dial   func(testing.TB, string) net.Conn
}

func stackNet(s *sockapi.Stack) network {
	return network{
		listen: func(tb testing.TB) net.Listener {
			ln, err := s.Listen("tcp", ":0")
			require.NoError(tb, err)
			tb.Cleanup(func() { ln.Close() })
			return ln
		},
		dial: func(tb testing.TB, addr string) net.Conn {
			c, err := s.Dial("tcp", addr)
			require.NoError(tb, err)
			tb.Cleanup(func() { c.Close() })
			return c
		},
	}
}

var kernelNet = network{
	listen: func(tb testing.TB) net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(tb, err)
		tb.Cleanup(func() { ln.Close() })
		return ln
	},
	dial: func(tb testing.TB, addr string) net.Conn {
		c, err := net.Dial("tcp", addr)
		require.NoError(tb, err)
		tb.Cleanup(func() { c.Close() })
		return c
	},
}

type closeWriter interface{ CloseWrite() error }

// benchProxy: a client on outer writes 1 MiB per op to a proxy on inner,
// which io.Copies it to a sink on outer over a connection of its own.
func benchProxy(b *testing.B, outer, inner network) {
	sinkLn, front := outer.listen(b), inner.listen(b)
	sunk := make(chan int64, 1)
	go func() {
		c, err := sinkLn.Accept()
		if err != nil {
			sunk <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		sunk <- n
	}()
	go func() {
		in, err := front.Accept()
		if err != nil {
			return
		}
		out := inner.dial(b, sinkLn.Addr().String())
		io.Copy(out, in)
		out.(closeWriter).CloseWrite()
		in.Close()
	}()
	client := outer.dial(b, front.Addr().String())
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	written := int64(0)
	for b.Loop() {
		n, err := client.Write(buf)
		require.NoError(b, err)
		written += int64(n)
	}
	require.NoError(b, client.(closeWriter).CloseWrite())
	require.Equal(b, written, <-sunk)
}

// BenchmarkProxy: io.Copy proxying between two connections, client →
// proxy → sink. xdpnet: the proxy's two connections on one stack, the
// client and sink on another, over the pipe; io.Copy moves the bytes
// ring to ring (WriteTo). kernel: the same on 127.0.0.1, where Go's net
// splices TCPConn to TCPConn.
func BenchmarkProxy(b *testing.B) {
	b.Run("xdpnet", func(b *testing.B) {
		outer, inner := pipeStacks(b)
		benchProxy(b, stackNet(outer), stackNet(inner))
	})
	b.Run("kernel", func(b *testing.B) { benchProxy(b, kernelNet, kernelNet) })
}

// zeros reads as len(p) bytes at no cost, to measure the copy alone.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { return len(p), nil }

// BenchmarkCopyPaths: 1 MiB per op from a reader into a connection and
// from the peer into a writer, through ReadFrom and WriteTo (in place)
// or through io.CopyBuffer's 32 KiB buffer with the fast paths hidden.
func BenchmarkCopyPaths(b *testing.B) {
	const chunk = 1 << 20
	for _, fast := range []bool{true, false} {
		name := map[bool]string{true: "ReadFrom-WriteTo", false: "CopyBuffer-32KiB"}[fast]
		b.Run(name, func(b *testing.B) {
			client, server := pipeConns(b)
			sunk := make(chan int64, 1)
			go func() {
				if fast {
					n, _ := server.(*sockapi.Conn).WriteTo(struct{ io.Writer }{io.Discard})
					sunk <- n
					return
				}
				n, _ := io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{server}, make([]byte, 32<<10))
				sunk <- n
			}()
			buf := make([]byte, 32<<10)
			src := &io.LimitedReader{R: zeros{}}
			b.SetBytes(chunk)
			b.ReportAllocs()
			written := int64(0)
			for b.Loop() {
				src.N = chunk
				var n int64
				var err error
				if fast {
					n, err = client.(*sockapi.Conn).ReadFrom(src)
				} else {
					n, err = io.CopyBuffer(struct{ io.Writer }{client}, src, buf)
				}
				require.NoError(b, err)
				written += n
			}
			require.NoError(b, client.(closeWriter).CloseWrite())
			require.Equal(b, written, <-sunk)
		})
	}
}

// errEnough stops a WriteTo.
var errEnough = errors.New("enough")

// upTo takes n bytes, then stops WriteTo with errEnough.
type upTo struct{ n int }

func (u *upTo) Write(p []byte) (int, error) {
	k := min(len(p), u.n)
	if u.n -= k; u.n == 0 {
		return k, errEnough
	}
	return k, nil
}

// TestCopyPathsAllocs: ReadFrom and WriteTo cost no allocation of their
// own (what BenchmarkCopyPaths counts is the pipe link parking).
func TestCopyPathsAllocs(t *testing.T) {
	client, server := pipeConns(t)
	c, s := client.(*sockapi.Conn), server.(*sockapi.Conn)
	src := &io.LimitedReader{R: zeros{}}
	dst := &upTo{}
	roundTrip := func() {
		src.N, dst.n = 1000, 1000
		if _, err := c.ReadFrom(src); err != nil {
			t.Fatal(err)
		}
		if _, err := s.WriteTo(dst); err != errEnough {
			t.Fatal(err)
		}
	}
	roundTrip()
	assert.Zero(t, testing.AllocsPerRun(200, roundTrip))
}

// liar reports more bytes than it was given.
type liar struct{}

func (liar) Read(p []byte) (int, error)  { return len(p) + 1, nil }
func (liar) Write(p []byte) (int, error) { return len(p) + 1, nil }

// TestCopyInvalidCounts: a reader or writer that reports more bytes than
// it had room for fails the copy instead of moving the ring's indexes
// past its bytes; the connection goes on.
func TestCopyInvalidCounts(t *testing.T) {
	client, server := pipeConns(t)
	_, err := client.(*sockapi.Conn).ReadFrom(liar{})
	require.ErrorContains(t, err, "invalid Read result")
	_, err = client.Write([]byte("ok"))
	require.NoError(t, err)
	_, err = server.(*sockapi.Conn).WriteTo(liar{})
	require.ErrorContains(t, err, "invalid Write result")
	got := make([]byte, 2)
	_, err = io.ReadFull(server, got)
	require.NoError(t, err)
	assert.Equal(t, "ok", string(got), "nothing was consumed")
}

// TestCloseWriteDuringReadFrom: a CloseWrite between a ReadFrom's reads
// ends it with EPIPE, as a Write after CloseWrite; the peer reads what
// came before and then EOF.
func TestCloseWriteDuringReadFrom(t *testing.T) {
	client, server := pipeConns(t)
	c := client.(*sockapi.Conn)
	reads := 0
	src := &io.LimitedReader{R: endless{call: func() {
		if reads++; reads == 2 {
			c.CloseWrite()
		}
	}}, N: 1 << 20}
	n, err := c.ReadFrom(src)
	require.ErrorIs(t, err, syscall.EPIPE)
	got, err := io.Copy(io.Discard, server)
	require.NoError(t, err)
	assert.Equal(t, n, got)
}

// blockingWriter blocks in Write until release is closed, then takes
// nothing.
type blockingWriter struct{ in, release chan struct{} }

func (b blockingWriter) Write(p []byte) (int, error) {
	close(b.in)
	<-b.release
	return 0, io.ErrClosedPipe
}

// TestCloseDuringWriteTo: Close does not wait for a WriteTo whose writer
// blocks; the connection ends once the writer returns.
func TestCloseDuringWriteTo(t *testing.T) {
	client, server := pipeConns(t)
	s := server.(*sockapi.Conn)
	_, err := client.Write([]byte("data"))
	require.NoError(t, err)
	bw := blockingWriter{in: make(chan struct{}), release: make(chan struct{})}
	res := make(chan error, 1)
	go func() {
		_, err := s.WriteTo(bw)
		res <- err
	}()
	<-bw.in
	require.NoError(t, s.Close(), "returns with the writer still blocked")
	close(bw.release)
	require.ErrorIs(t, <-res, net.ErrClosed)
	// The bytes unread make the close a reset, once the hand-off came.
	_, err = client.Read(make([]byte, 1))
	require.ErrorIs(t, err, syscall.ECONNRESET)
}
