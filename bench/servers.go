package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xdpnet/xdpnet/internal/product/services"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
	"github.com/xdpnet/xdpnet/sockapi/inline"
)

// The servers the clients measure, the same Go functions on the kernel's
// sockets and on xdpnet's.

// Ports of the servers on the kernel and on the poller-side services:
// UDP and TCP echo (RFC 862) and discard (RFC 863), TCP chargen (RFC
// 864).
const (
	echoPort    = services.EchoPort
	discardPort = services.DiscardPort
	chargenPort = services.ChargenPort
)

// Ports of the goroutine servers on the sockapi stack; the poller-side
// services keep the well-known ports 7, 9 and 19 on the same stack.
const (
	sockEchoPort    = 2007
	sockDiscardPort = 2009
	sockChargenPort = 2019
)

// tcpBuffer is what the Go servers and the client read and write at once:
// the size of internal/product/services' buffer.
const tcpBuffer = 64 << 10

// kernelAddr is the address the kernel serves on Local's link, next to
// xdpnet's StackAddr on the same link.
func kernelAddr(l *lab.Lab) netip.Addr { return l.Local.Addr.Addr() }

// serve accepts connections on ln, the kernel's or xdpnet's, and serves
// each on a goroutine of its own, each for at most timeLimit (fn must
// return once its conn fails). stop closes ln and every connection and
// waits for the goroutines.
func serve(ln net.Listener, fn func(net.Conn)) (stop func()) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			c.SetDeadline(time.Now().Add(timeLimit))
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				fn(c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	return func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// tcpEcho echoes what c sends until c's FIN or an error.
func tcpEcho(c net.Conn) {
	buf := make([]byte, tcpBuffer)
	for {
		n, err := c.Read(buf)
		if _, werr := c.Write(buf[:n]); err != nil || werr != nil {
			return
		}
	}
}

// served counts what the discard servers took in, so that a workload
// can check that the system got every byte and datagram its client
// sent. Cells run one at a time, so while one runs the counts are its
// system's; the workload reads them before and after its client.
var served struct {
	discardBytes  atomic.Int64 // by tcpDiscard
	sinkDatagrams atomic.Int64 // by udpSink
}

// tcpDiscard reads c until its FIN or an error.
func tcpDiscard(c net.Conn) {
	buf := make([]byte, tcpBuffer)
	for {
		n, err := c.Read(buf)
		served.discardBytes.Add(int64(n))
		if err != nil {
			return
		}
	}
}

// tcpChargen writes to c until it fails (the client closes it): a chargen
// that repeats one buffer.
func tcpChargen(c net.Conn) {
	buf := chargenBuffer()
	for {
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// chargenBuffer is what tcpChargen writes over and over: RFC 864's
// stream, as the poller-side chargen sends it, in as many whole periods
// as fit tcpBuffer, so that one check fits both servers' streams.
func chargenBuffer() []byte {
	cycle := services.ChargenCycle()
	return bytes.Repeat(cycle, tcpBuffer/len(cycle))
}

// serveUDP runs fn on every datagram c gets, on a goroutine of its own,
// until stop closes c.
func serveUDP(c net.PacketConn, fn func(c net.PacketConn, b []byte, from net.Addr)) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			fn(c, buf[:n], from)
		}
	}()
	return func() {
		c.Close()
		<-done
	}
}

// udpEcho sends b back (UDP echo).
func udpEcho(c net.PacketConn, b []byte, from net.Addr) { c.WriteTo(b, from) }

// udpSink counts the datagram (served.sinkDatagrams): UDP discard.
func udpSink(net.PacketConn, []byte, net.Addr) { served.sinkDatagrams.Add(1) }

// udpServer is a UDP service on a port.
type udpServer struct {
	port uint16
	fn   func(c net.PacketConn, b []byte, from net.Addr)
}

// tcpServer is a TCP service on a port.
type tcpServer struct {
	port uint16
	fn   func(net.Conn)
}

// The goroutine servers of an xdpnet or gVisor stack.
var (
	sockServers    = []tcpServer{{sockEchoPort, tcpEcho}, {sockDiscardPort, tcpDiscard}, {sockChargenPort, tcpChargen}}
	sockUDPServers = []udpServer{{sockEchoPort, udpEcho}, {sockDiscardPort, udpSink}}
)

// openSock opens xdpnet through its public API on Local's link at
// StackAddr, as `xdpnet serve` does: the poller-side TCP services (echo,
// discard, chargen on 7, 9, 19: the "inline handler") bound through
// Config.OnPoller, and goroutine servers on sockapi listeners (echo,
// discard, chargen on 2007, 2009, 2019, and UDP echo on 2007), each
// connection a net.Conn served by tcpEcho, tcpDiscard or tcpChargen, the
// functions that serve the kernel's connections. inline are the
// poller-side services, one per queue. stop closes the servers, then the
// stack.
func openSock(l *lab.Lab) (s *sockapi.Stack, inlineSvcs []*services.TCPServices, stop func() error, err error) {
	err = l.Local.Do(func() (err error) {
		s, err = sockapi.Open(sockapi.Config{
			Interface: l.Local.Link,
			Addr:      netip.PrefixFrom(l.StackAddr, l.Local.Addr.Bits()),
			OnPoller: func(p inline.Poller) error { // on Open's goroutine
				svc := &services.TCPServices{}
				if err := svc.Listen(p.TCP()); err != nil {
					return err
				}
				p.OnRound(svc.Serve)
				inlineSvcs = append(inlineSvcs, svc)
				return nil
			},
		})
		return err
	})
	if err != nil {
		return nil, nil, nil, err
	}
	var stops []func()
	stop = func() error {
		for _, f := range stops {
			f()
		}
		return s.Close()
	}
	for _, srv := range sockServers {
		ln, err := s.Listen("tcp4", fmt.Sprintf(":%d", srv.port))
		if err != nil {
			return nil, nil, nil, errors.Join(err, stop())
		}
		stops = append(stops, serve(ln, srv.fn))
	}
	for _, srv := range sockUDPServers {
		pc, err := s.ListenPacket("udp4", fmt.Sprintf(":%d", srv.port))
		if err != nil {
			return nil, nil, nil, errors.Join(err, stop())
		}
		stops = append(stops, serveUDP(pc, srv.fn))
	}
	return s, inlineSvcs, stop, nil
}

// listenKernel listens for TCP on h's kernel address and port.
func listenKernel(h *lab.Host, port uint16) (ln net.Listener, err error) {
	err = h.Do(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(h.Addr.Addr(), port).String())
		return err
	})
	return ln, err
}

// listenKernelUDP opens a UDP socket on h's kernel address and port.
func listenKernelUDP(h *lab.Host, port uint16) (c net.PacketConn, err error) {
	err = h.Do(func() (err error) {
		c, err = net.ListenPacket("udp4", netip.AddrPortFrom(h.Addr.Addr(), port).String())
		return err
	})
	return c, err
}
