package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/xdpnet/xdpnet/bench/gvisorpeer"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// gvisorStall bounds how long a gVisor connection may make no progress
// before its server gives up on it: gVisor's TCP can stop for good after
// a zero-window stall, and a cell must then fail, not hang.
const gvisorStall = 5 * time.Second

// gvisorSystem is gVisor's netstack (bench/gvisorpeer) over its AF_XDP
// endpoint, serving the same functions as xdpnet's goroutine servers.
//
// It runs on a lab of its own and stays up from its first cell to the
// end of the run: this version of gVisor cannot be torn down (its
// endpoint's receive goroutine never stops and keeps its socket bound
// to the queue), so it could not be opened again on the shared lab's
// queue, nor leave that queue to xdpnet. Its clients run in its own
// lab's peer namespace, on a veth pair like the shared one.
type gvisorSystem struct {
	lab   *lab.Lab
	stack *gvisorpeer.Stack
	stops []func()
}

func (*gvisorSystem) name() string { return "gvisor" }

// start opens the stack and its servers on the first call.
func (g *gvisorSystem) start(*lab.Lab) error {
	if g.stack != nil {
		return nil
	}
	l, err := lab.Build(lab.Config{Mode: lab.Native}, func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) })
	if err != nil {
		return err
	}
	g.lab = l
	if err := peerSysctls(l.Peer); err != nil {
		return errors.Join(err, g.finish())
	}
	err = l.Local.Do(func() (err error) {
		g.stack, err = gvisorpeer.Open(gvisorpeer.Config{Interface: l.Local.Link, Addr: netip.PrefixFrom(l.StackAddr, l.Local.Addr.Bits())})
		return err
	})
	if err != nil {
		return errors.Join(err, g.finish())
	}
	for _, srv := range sockServers {
		ln, err := g.stack.Listen("tcp4", fmt.Sprintf(":%d", srv.port))
		if err != nil {
			return errors.Join(err, g.finish())
		}
		fn := srv.fn
		g.stops = append(g.stops, serve(ln, func(c net.Conn) { fn(gvisorpeer.StallConn{Conn: c, D: gvisorStall}) }))
	}
	for _, srv := range sockUDPServers {
		pc, err := g.stack.ListenPacket("udp4", fmt.Sprintf(":%d", srv.port))
		if err != nil {
			return errors.Join(err, g.finish())
		}
		g.stops = append(g.stops, serveUDP(pc, srv.fn))
	}
	return nil
}

func (g *gvisorSystem) addr(svc service) netip.AddrPort {
	return netip.AddrPortFrom(g.stack.Addr(), sockPorts[svc])
}

func (*gvisorSystem) serves(svc service) bool { return svc != svcRing }

// stop leaves the stack up (see gvisorSystem); finish ends it.
func (*gvisorSystem) stop() error { return nil }

func (*gvisorSystem) describe(*env, *machine) error { return nil }

// clientLab is the lab whose peer runs this system's clients.
func (g *gvisorSystem) clientLab() *lab.Lab { return g.lab }

// finish stops the servers and the stack and removes its lab, at the end
// of the run.
func (g *gvisorSystem) finish() error {
	for _, f := range g.stops {
		f()
	}
	var err error
	if g.stack != nil {
		err = g.stack.Close()
	}
	if g.lab != nil {
		err = errors.Join(err, g.lab.Close())
	}
	g.stack, g.lab, g.stops = nil, nil, nil
	return err
}
