package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/xdpnet/xdpnet/internal/product/services"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/sockapi"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// service is one of the servers every system runs, or what else a
// workload needs of a system.
type service int

// The services.
const (
	svcEcho       service = iota // TCP echo
	svcDiscard                   // TCP discard
	svcChargen                   // TCP chargen
	svcUDPEcho                   // UDP echo
	svcUDPDiscard                // UDP discard, counting datagrams
	// svcRing is the AF_XDP ring layer alone, with no stack (rxdrop):
	// the workload opens the link itself.
	svcRing
)

// The ports of the services on the kernel, and on the goroutine servers
// of a sockapi or gVisor stack.
var (
	kernelPorts = map[service]uint16{svcEcho: echoPort, svcDiscard: discardPort, svcChargen: chargenPort, svcUDPEcho: echoPort, svcUDPDiscard: discardPort}
	sockPorts   = map[service]uint16{svcEcho: sockEchoPort, svcDiscard: sockDiscardPort, svcChargen: sockChargenPort, svcUDPEcho: sockEchoPort, svcUDPDiscard: sockDiscardPort}
)

// A system is a network stack under test: it runs the services on the
// lab and says where each one listens. The systems run their servers in
// this process, on Local's link: the lab's veth end, or -iface with two
// hosts (whose clients run on the peer host, see remoteRunner); a stack
// on a lab of its own (gVisor's netstack) is one more implementation.
//
// start and stop bracket each cell of the table (one workload, one
// repetition), so that while a cell runs, no other system's stack is up:
// the CPU this process spends is the system's own, and the kernel runs
// without xdpnet's steering program attached.
type system interface {
	name() string
	start(l *lab.Lab) error
	addr(svc service) netip.AddrPort
	stop() error
	// describe adds what the system knows of the machine to m, between
	// a start and a stop.
	describe(e *env, m *machine) error
	// serves says whether the system has svc; a workload that needs one
	// it has not is not applicable to it (the table's "—").
	serves(svc service) bool
}

// kernelSystem is the Linux kernel on Local's kernel address: Go's net
// serving the same functions as xdpnet's servers.
//
// steered ("kernel") attaches xdpnet's steering program to the link for
// the cell, with no stack behind it: the kernel's packets pass it
// (XDP_PASS), as when xdpnet shares the NIC, and as in the go-test
// benchmarks, where both stacks serve at once. On veth that is not free:
// an XDP program puts the receiving end in NAPI mode (a softirq hop per
// batch, no GRO for the peer's skbs). Without it ("kernel-no-xdp"), veth
// hands each skb over inside the sender's system call: the kernel at its
// best on this link, and what a host without xdpnet runs.
type kernelSystem struct {
	steered bool
	addrOf  netip.Addr
	prog    *steer.Program
	stops   []func()
}

func (k *kernelSystem) name() string {
	if k.steered {
		return "kernel"
	}
	return "kernel-no-xdp"
}

func (k *kernelSystem) start(l *lab.Lab) error {
	k.addrOf = kernelAddr(l)
	if k.steered {
		err := l.Local.Do(func() (err error) {
			k.prog, err = steer.Attach(steer.Config{Ifindex: l.Local.Ifindex, Addrs: []netip.Addr{l.StackAddr}, Mode: steer.Native})
			return err
		})
		if err != nil {
			return err
		}
	}
	for _, srv := range []tcpServer{{echoPort, tcpEcho}, {discardPort, tcpDiscard}, {chargenPort, tcpChargen}} {
		ln, err := listenKernel(l.Local, srv.port)
		if err != nil {
			k.stop()
			return err
		}
		k.stops = append(k.stops, serve(ln, srv.fn))
	}
	for _, srv := range []udpServer{{echoPort, udpEcho}, {discardPort, udpSink}} {
		pc, err := listenKernelUDP(l.Local, srv.port)
		if err != nil {
			k.stop()
			return err
		}
		k.stops = append(k.stops, serveUDP(pc, srv.fn))
	}
	return nil
}

func (k *kernelSystem) addr(svc service) netip.AddrPort {
	return netip.AddrPortFrom(k.addrOf, kernelPorts[svc])
}

func (*kernelSystem) serves(svc service) bool { return svc != svcRing }

func (k *kernelSystem) stop() error {
	for _, f := range k.stops {
		f()
	}
	k.stops = nil
	var err error
	if k.prog != nil {
		err = k.prog.Close()
		k.prog = nil
	}
	return err
}

// describe reads the kernel's congestion control: the namespace's
// default, and what a socket of the peer's kernel runs (TCP_CONGESTION
// read back by an idle client's connection to the echo server).
func (k *kernelSystem) describe(e *env, m *machine) error {
	out, err := e.lab.Local.Output("sysctl", "-n", "net.ipv4.tcp_congestion_control")
	if err != nil {
		return err
	}
	m.CongestionControl = trimLine(out)
	r, err := e.peer.run(context.Background(), clientSpec{Mode: "idle", Server: k.addr(svcEcho).String(), Via: viaKernel, Time: time.Nanosecond}, nil)
	m.KernelSocketCC = r.cc
	return err
}

// xdpnetSystem is xdpnet through its public API (openSock): goroutine
// servers on sockapi listeners at StackAddr ("xdpnet"), or, on the same
// stack, the TCP services that run inline on the poller, with no
// goroutine between the wire and the service ("xdpnet-inline"; they
// have no UDP). The plain one also stands for xdpnet's ring layer
// (svcRing: rxdrop).
type xdpnetSystem struct {
	inline     bool
	stack      *sockapi.Stack
	inlineSvcs []*services.TCPServices
	close      func() error
}

func (x *xdpnetSystem) name() string {
	if x.inline {
		return "xdpnet-inline"
	}
	return "xdpnet"
}

func (x *xdpnetSystem) start(l *lab.Lab) (err error) {
	x.stack, x.inlineSvcs, x.close, err = openSock(l)
	return err
}

// inlineDiscarded is what the poller-side discard services have read
// since the stack opened.
func (x *xdpnetSystem) inlineDiscarded() int64 {
	var n int64
	for _, svc := range x.inlineSvcs {
		n += svc.Stats().Discarded
	}
	return n
}

func (x *xdpnetSystem) addr(svc service) netip.AddrPort {
	if x.inline {
		return netip.AddrPortFrom(x.stack.Addr(), kernelPorts[svc])
	}
	return netip.AddrPortFrom(x.stack.Addr(), sockPorts[svc])
}

func (x *xdpnetSystem) serves(svc service) bool {
	if x.inline {
		return svc == svcEcho || svc == svcDiscard || svc == svcChargen
	}
	return true
}

func (x *xdpnetSystem) stop() error {
	if x.close == nil {
		return nil
	}
	err := x.close()
	x.stack, x.inlineSvcs, x.close = nil, nil, nil
	return err
}

func (x *xdpnetSystem) describe(_ *env, m *machine) error {
	i := x.stack.Info()
	m.XDPMode = fmt.Sprint(i.XDPMode)
	m.ZeroCopy = i.ZeroCopy
	m.Queues = i.Queues
	m.MTU = i.MTU
	return nil
}

// asavieSystem is github.com/asavie/xdp, the ring layer xdpnet's xdp/ is
// measured against, with no stack: it has the ring workload only.
type asavieSystem struct{}

func (asavieSystem) name() string                  { return "asavie" }
func (asavieSystem) start(*lab.Lab) error          { return nil }
func (asavieSystem) addr(service) netip.AddrPort   { return netip.AddrPort{} }
func (asavieSystem) stop() error                   { return nil }
func (asavieSystem) describe(*env, *machine) error { return nil }
func (asavieSystem) serves(svc service) bool       { return svc == svcRing }

// offloadKernel ("kernel-offloads") is the kernel on a veth pair of its
// own with every offload on at both ends (transmit checksums, TSO, GSO),
// which AF_XDP cannot have on its pair (the lab turns the peer's off):
// the kernel at its best, for the bulk workloads, which offloads move.
// Its lab is built at its first cell and removed at the end of the run
// (finish), its clients run in that lab's peer namespace, and it serves
// as kernel-no-xdp does, without a steering program.
type offloadKernel struct {
	kernelSystem
	lab *lab.Lab
}

func (*offloadKernel) name() string { return "kernel-offloads" }

func (k *offloadKernel) start(*lab.Lab) error {
	if k.lab == nil {
		l, err := lab.Build(lab.Config{Mode: lab.Native}, func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) })
		if err != nil {
			return err
		}
		k.lab = l
		for _, h := range []*lab.Host{l.Local, l.Peer} {
			if _, err := h.Output("ethtool", "-K", h.Link, "tx", "on", "tso", "on", "gso", "on"); err != nil {
				return errors.Join(err, k.finish())
			}
		}
		if err := peerSysctls(l.Peer); err != nil {
			return errors.Join(err, k.finish())
		}
	}
	return k.kernelSystem.start(k.lab)
}

func (*offloadKernel) serves(svc service) bool { return svc == svcDiscard || svc == svcChargen }

func (*offloadKernel) describe(*env, *machine) error { return nil }

// clientLab is the lab whose peer runs this system's clients.
func (k *offloadKernel) clientLab() *lab.Lab { return k.lab }

// finish removes the system's lab, at the end of the run.
func (k *offloadKernel) finish() error {
	if k.lab == nil {
		return nil
	}
	err := k.lab.Close()
	k.lab = nil
	return err
}
