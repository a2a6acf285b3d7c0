package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

func main() {
	clientMain() // a client process of a run: does not return
	os.Exit(benchMain(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK          = 0
	exitFailedCells = 1 // the run completed, some cell failed
	exitUsage       = 2 // bad flags, unknown names
	exitNoLab       = 3 // the lab or a system could not be set up
	exitInterrupted = 130
)

// -quick's settings: one repetition of 1 s a cell, which runs the whole
// table in well under 2 minutes on the 2-vCPU lab machine (about 35 s),
// for a smoke test, not for figures to compare.
const (
	quickCount = 1
	quickTime  = time.Second
)

// benchMain is the command, its output on stdout and stderr; it returns
// the exit code. The lab is torn down on every path out of it, a signal
// (SIGINT, SIGTERM) included: the signal ends the cell that runs, and the
// table shows what ran before it.
func benchMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bench [flags]\n       bench -iface IF -addr PREFIX -peer HOST[:PORT] [flags]\n       bench -serve [-listen ADDR:PORT]\n\n"+
			"Builds a veth lab in two network namespaces (root) and measures xdpnet against the Linux kernel on it;\n"+
			"or, with -iface, measures them on IF of this host with the clients on a peer host running bench -serve.\n\nflags:\n")
		fs.PrintDefaults()
	}
	only := fs.String("only", "", "run only the cells matching one of these comma-separated regular expressions (each matched against the workload name, the system name and workload/system)")
	skip := fs.String("skip", "", "skip the cells matching one of these comma-separated regular expressions (as -only)")
	count := fs.Int("count", 3, "repetitions of each cell, the systems' order alternating")
	d := fs.Duration("time", 2*time.Second, "measured time of each cell")
	jsonFile := fs.String("json", "", "also write the results as JSON to this file (schema: go doc ./bench)")
	plotDir := fs.String("plot", "", "also draw the results as PNG plots into this directory: a latency CDF per request/response workload, a bar chart per throughput metric")
	checkJSON := fs.String("check", "", "check this -json file of a run and exit: 0 when every selected workload × system cell has a number, 1 with what is missing or failed (it never judges speed)")
	list := fs.Bool("list", false, "list the workloads and systems, and exit")
	quick := fs.Bool("quick", false, fmt.Sprintf("a short run: -count %d -time %v unless given (under 2 minutes here)", quickCount, quickTime))
	serve := fs.Bool("serve", false, "be the peer host of a two-host run: serve the driver's clients on a control connection (see -listen), until SIGINT or SIGTERM")
	listen := fs.String("listen", fmt.Sprintf(":%d", servePort), "with -serve: the control connection's TCP address")
	iface := fs.String("iface", "", "two hosts: run the systems on this interface of this host, the kernel on its own IPv4 address (needs -addr and -peer; no lab)")
	addr := fs.String("addr", "", "two hosts: xdpnet's address on -iface, as a prefix in -iface's subnet (198.18.0.2/24)")
	peer := fs.String("peer", "", fmt.Sprintf("two hosts: the peer's bench -serve, HOST[:PORT] (port %d if none), which runs every client", servePort))
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if *serve {
		delete(given, "serve")
		delete(given, "listen")
		if fs.NArg() > 0 || len(given) > 0 {
			fmt.Fprintln(stderr, "bench: -serve takes -listen only")
			return exitUsage
		}
		return serveMain(*listen, stdout, stderr)
	}
	if given["listen"] {
		fmt.Fprintln(stderr, "bench: -listen goes with -serve")
		return exitUsage
	}
	twoHosts := *iface != "" || *addr != "" || *peer != ""
	var stackPrefix netip.Prefix
	peerAddr := *peer
	if twoHosts {
		var err error
		stackPrefix, peerAddr, err = twoHostFlags(*iface, *addr, *peer)
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return exitUsage
		}
	}
	if *quick {
		quickDefaults(fs, count, d)
	}
	systems, workloads := newSystems(), workloadsFor(twoHosts)
	var ownLab []system // left out with two hosts
	if twoHosts {
		systems = slices.DeleteFunc(systems, func(s system) bool {
			if _, ok := s.(labOwner); ok {
				ownLab = append(ownLab, s)
				return true
			}
			return false
		})
	}
	// A system no workload of the run applies to (asavie, without
	// rxdrop) is none of the run's.
	systems = slices.DeleteFunc(systems, func(s system) bool {
		return !slices.ContainsFunc(workloads, func(w workload) bool { return s.serves(w.svc) })
	})
	if *list {
		for _, w := range workloads {
			fmt.Fprintf(stdout, "%-12s %s\n", w.name, w.what)
		}
		for _, s := range systems {
			fmt.Fprintf(stdout, "system %s\n", s.name())
		}
		for _, s := range ownLab {
			fmt.Fprintf(stdout, "system %s: %s\n", s.name(), ownLabTwoHosts)
		}
		if twoHosts {
			fmt.Fprintf(stdout, "rxdrop: %s\n", ringTwoHosts)
		}
		return exitOK
	}
	if *checkJSON != "" {
		bad, err := checkFile(*checkJSON)
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return exitUsage
		}
		for _, b := range bad {
			fmt.Fprintf(stderr, "bench: %s: %s\n", *checkJSON, b)
		}
		if len(bad) > 0 {
			return exitFailedCells
		}
		fmt.Fprintf(stdout, "%s: every cell has a number\n", *checkJSON)
		return exitOK
	}
	if fs.NArg() > 0 || *count < 1 || *d <= 0 || *d > timeLimit-5*time.Second {
		fmt.Fprintf(stderr, "bench: want no arguments, -count >= 1 and 0 < -time <= %v\n", timeLimit-5*time.Second)
		return exitUsage
	}
	var wnames, snames []string
	for _, w := range workloads {
		wnames = append(wnames, w.name)
	}
	for _, s := range systems {
		snames = append(snames, s.name())
	}
	sel, err := parseSelection(*only, *skip, wnames, snames)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return exitUsage
	}
	var used []system
	for _, s := range systems {
		for _, w := range workloads {
			if sel.selected(w.name, s.name()) && s.serves(w.svc) {
				used = append(used, s)
				break
			}
		}
	}
	if len(used) == 0 {
		fmt.Fprintln(stderr, "bench: -only and -skip leave nothing to run")
		return exitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	e := &env{d: *d}
	if twoHosts {
		if e.lab, e.peer, e.clientsHere, err = twoHostsOf(ctx, *iface, stackPrefix, peerAddr); err != nil {
			fmt.Fprintln(stderr, "bench:", flatten(err))
			return exitNoLab
		}
	} else {
		l, err := lab.Build(lab.Config{Mode: lab.Native}, func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) })
		if err != nil {
			fmt.Fprintln(stderr, "bench: cannot build the lab:", err)
			return exitNoLab
		}
		defer func() {
			if err := l.Close(); err != nil {
				fmt.Fprintln(stderr, "bench:", err)
			}
		}()
		if err := peerSysctls(l.Peer); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return exitNoLab
		}
		e.lab, e.peer, e.clientsHere = l, nsRunner{l.Peer}, true
	}
	defer e.closeFlood()
	l := e.lab
	defer func() {
		for _, s := range systems {
			if f, ok := s.(interface{ finish() error }); ok {
				if err := f.finish(); err != nil {
					fmt.Fprintln(stderr, "bench:", err)
				}
			}
		}
	}()
	rep := runReport{
		Schema:   schemaVersion,
		Machine:  localMachine(l, peerAddr),
		Settings: settings{TimeSeconds: d.Seconds(), Count: *count, Only: *only, Skip: *skip, Quick: *quick},
	}
	for _, s := range used {
		rep.Systems = append(rep.Systems, s.name())
		if err := s.start(l); err != nil {
			fmt.Fprintf(stderr, "bench: cannot start %s: %v\n", s.name(), flatten(err))
			return exitNoLab
		}
		err := errors.Join(s.describe(e, &rep.Machine), s.stop())
		if err != nil {
			fmt.Fprintf(stderr, "bench: %s: %v\n", s.name(), flatten(err))
			return exitNoLab
		}
	}
	writeHeader(stdout, rep)
	out, _ := stdout.(*os.File)
	m := &meter{out: stdout}
	if out != nil {
		m = newMeter(out)
	}
	r := &runner{env: e, systems: used, sel: sel, count: *count, meter: m}
	samples := r.run(ctx, workloads)
	rep.Interrupted = ctx.Err() != nil
	rep.Rows = rows(workloads, rep.Systems, samples)
	rep.Warnings = warnings(samples)
	rep.Latency = latencyHists(workloads, rep.Systems, samples)
	fmt.Fprintln(stdout)
	writeTable(stdout, rep)
	if *jsonFile != "" {
		if err := writeJSONFile(*jsonFile, rep); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return exitFailedCells
		}
	}
	if *plotDir != "" {
		paths, err := writePlots(*plotDir, rep)
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return exitFailedCells
		}
		fmt.Fprintf(stdout, "\n%d plots in %s\n", len(paths), *plotDir)
	}
	switch {
	case rep.Interrupted:
		return exitInterrupted
	case failed(samples):
		return exitFailedCells
	}
	return exitOK
}

// newSystems are the systems a run can use, in the table's order.
func newSystems() []system {
	return []system{&kernelSystem{steered: true}, &kernelSystem{}, &offloadKernel{}, &xdpnetSystem{}, &xdpnetSystem{inline: true}, &gvisorSystem{}, asavieSystem{}}
}

// ownLabTwoHosts is why two-host runs leave out the systems that run on
// a lab of their own (labOwner): gVisor and kernel-offloads.
const ownLabTwoHosts = "left out with two hosts: each runs on a lab of its own (two namespaces of this machine)"

// twoHostFlags checks -iface, -addr and -peer of a two-host run, and
// returns xdpnet's prefix and the peer's host:port.
func twoHostFlags(iface, addr, peer string) (netip.Prefix, string, error) {
	if iface == "" || addr == "" || peer == "" {
		return netip.Prefix{}, "", errors.New("two hosts need -iface, -addr and -peer together")
	}
	p, err := netip.ParsePrefix(addr)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, "", fmt.Errorf("-addr %q: want an IPv4 address and prefix length, as 198.18.0.2/24", addr)
	}
	if _, _, err := net.SplitHostPort(peer); err != nil {
		peer = net.JoinHostPort(peer, strconv.Itoa(servePort))
	}
	return p, peer, nil
}

// twoHostsOf is a two-host run's lab: Local is iface of this namespace,
// the kernel on its IPv4 address and xdpnet at stack in its subnet, and
// no Peer (the clients run through the peer's bench -serve, which must
// answer). here says the peer is this machine (a lab run as two hosts).
func twoHostsOf(ctx context.Context, iface string, stack netip.Prefix, peer string) (l *lab.Lab, r remoteRunner, here bool, err error) {
	if os.Geteuid() != 0 {
		return nil, r, false, fmt.Errorf("needs root (euid 0, have %d) to attach XDP to -iface %s", os.Geteuid(), iface)
	}
	h, err := lab.Current(iface)
	if err != nil {
		return nil, r, false, err
	}
	switch {
	case !h.Addr.IsValid():
		return nil, r, false, fmt.Errorf("-iface %s has no IPv4 address: the kernel systems serve on it", iface)
	case h.Addr.Bits() != stack.Bits() || !h.Addr.Masked().Contains(stack.Addr()) || h.Addr.Addr() == stack.Addr():
		return nil, r, false, fmt.Errorf("-addr %v: want another address of %s's subnet (%v), the kernel's", stack, iface, h.Addr)
	}
	r = remoteRunner{peer}
	st, err := r.hello(ctx)
	if err != nil {
		return nil, r, false, err
	}
	return &lab.Lab{Local: h, StackAddr: stack.Addr()}, r, st.BootID == bootID(), nil
}

// quickDefaults sets -count and -time to -quick's, each unless given.
func quickDefaults(fs *flag.FlagSet, count *int, d *time.Duration) {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["count"] {
		*count = quickCount
	}
	if !given["time"] {
		*d = quickTime
	}
}

func writeJSONFile(name string, rep runReport) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	return errors.Join(writeJSON(f, rep), f.Close())
}

func failed(samples []sample) bool {
	for _, s := range samples {
		if s.err != nil {
			return true
		}
	}
	return false
}

// peerSysctls readies h, the peer, for the clients: the connect
// workload's client keeps a TIME-WAIT per connection, so the whole port
// range, and early reuse (see connsMax).
func peerSysctls(h *lab.Host) error {
	_, err := h.Output("sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1")
	return err
}
