package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
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

// tcpDiscard reads c until its FIN or an error.
func tcpDiscard(c net.Conn) {
	buf := make([]byte, tcpBuffer)
	for {
		if _, err := c.Read(buf); err != nil {
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

// chargenBuffer is what tcpChargen writes over and over: printable
// characters, as RFC 864's, in tcpBuffer bytes.
func chargenBuffer() []byte {
	buf := make([]byte, tcpBuffer)
	for i := range buf {
		buf[i] = ' ' + byte(i%95)
	}
	return buf
}

// udpEcho echoes every datagram c gets, on a goroutine of its own, until
// stop closes c.
func udpEcho(c net.PacketConn) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			c.WriteTo(buf[:n], from)
		}
	}()
	return func() {
		c.Close()
		<-done
	}
}

// tcpServer is a TCP service on a port.
type tcpServer struct {
	port uint16
	fn   func(net.Conn)
}

// sockServers are the goroutine servers of an xdpnet stack.
var sockServers = []tcpServer{{sockEchoPort, tcpEcho}, {sockDiscardPort, tcpDiscard}, {sockChargenPort, tcpChargen}}

// openSock opens xdpnet through its public API on Local's link at
// StackAddr, as `xdpnet serve` does: the poller-side TCP services (echo,
// discard, chargen on 7, 9, 19: the "inline handler") bound through
// Config.OnPoller, and goroutine servers on sockapi listeners (echo,
// discard, chargen on 2007, 2009, 2019, and UDP echo on 2007), each
// connection a net.Conn served by tcpEcho, tcpDiscard or tcpChargen, the
// functions that serve the kernel's connections. stop closes the servers,
// then the stack.
func openSock(l *lab.Lab) (s *sockapi.Stack, stop func() error, err error) {
	err = l.Local.Do(func() (err error) {
		s, err = sockapi.Open(sockapi.Config{
			Interface: l.Local.Link,
			Addr:      netip.PrefixFrom(l.StackAddr, l.Local.Addr.Bits()),
			OnPoller: func(p inline.Poller) error {
				svc := &services.TCPServices{}
				if err := svc.Listen(p.TCP()); err != nil {
					return err
				}
				p.OnRound(svc.Serve)
				return nil
			},
		})
		return err
	})
	if err != nil {
		return nil, nil, err
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
			return nil, nil, errors.Join(err, stop())
		}
		stops = append(stops, serve(ln, srv.fn))
	}
	pc, err := s.ListenPacket("udp4", fmt.Sprintf(":%d", sockEchoPort))
	if err != nil {
		return nil, nil, errors.Join(err, stop())
	}
	stops = append(stops, udpEcho(pc))
	return s, stop, nil
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
