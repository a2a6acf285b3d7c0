package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
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
		fmt.Fprintf(stderr, "usage: bench [flags]\n\nBuilds a veth lab in two network namespaces (root) and measures xdpnet against the Linux kernel on it.\n\nflags:\n")
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
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *quick {
		quickDefaults(fs, count, d)
	}
	systems := newSystems()
	if *list {
		for _, w := range workloads {
			fmt.Fprintf(stdout, "%-12s %s\n", w.name, w.what)
		}
		for _, s := range systems {
			fmt.Fprintf(stdout, "system %s\n", s.name())
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
		for _, w := range wnames {
			if sel.selected(w, s.name()) {
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
	if err := peerSysctls(l); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return exitNoLab
	}
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
		Machine:  localMachine(l),
		Settings: settings{TimeSeconds: d.Seconds(), Count: *count, Only: *only, Skip: *skip, Quick: *quick},
	}
	for _, s := range used {
		rep.Systems = append(rep.Systems, s.name())
		if err := s.start(l); err != nil {
			fmt.Fprintf(stderr, "bench: cannot start %s: %v\n", s.name(), err)
			return exitNoLab
		}
		err := errors.Join(s.describe(l, &rep.Machine), s.stop())
		if err != nil {
			fmt.Fprintf(stderr, "bench: %s: %v\n", s.name(), err)
			return exitNoLab
		}
	}
	writeHeader(stdout, rep)
	out, _ := stdout.(*os.File)
	m := &meter{out: stdout}
	if out != nil {
		m = newMeter(out)
	}
	r := &runner{env: &env{lab: l, d: *d}, systems: used, sel: sel, count: *count, meter: m}
	samples := r.run(ctx, workloads)
	rep.Interrupted = ctx.Err() != nil
	rep.Rows = rows(workloads, samples)
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
	return []system{&kernelSystem{steered: true}, &kernelSystem{}, &xdpnetSystem{}, &gvisorSystem{}}
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

// peerSysctls readies l's peer for the clients: the connect workload's
// client keeps a TIME-WAIT per connection, so the whole port range, and
// early reuse (see connsMax).
func peerSysctls(l *lab.Lab) error {
	_, err := l.Peer.Output("sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535", "net.ipv4.tcp_tw_reuse=1")
	return err
}
