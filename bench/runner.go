package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// selection is -only and -skip: comma-separated lists of regular
// expressions (RE2, unanchored), each matched against a cell's workload
// name, its system name, and "workload/system". A cell runs when -only
// is empty or one of its expressions matches, and none of -skip's does.
type selection struct {
	only, skip []*regexp.Regexp
}

// parseSelection compiles -only and -skip, and refuses an expression
// that matches no workload and no system: a misspelt name.
func parseSelection(only, skip string, workloads, systems []string) (selection, error) {
	var sel selection
	for _, f := range []struct {
		flag string
		list string
		into *[]*regexp.Regexp
	}{{"-only", only, &sel.only}, {"-skip", skip, &sel.skip}} {
		for _, expr := range strings.Split(f.list, ",") {
			if expr = strings.TrimSpace(expr); expr == "" {
				continue
			}
			re, err := regexp.Compile(expr)
			if err != nil {
				return selection{}, fmt.Errorf("%s %q: %v", f.flag, expr, err)
			}
			if !matchesAny(re, workloads, systems) {
				return selection{}, fmt.Errorf("%s %q matches no workload (%s) and no system (%s)",
					f.flag, expr, strings.Join(workloads, ", "), strings.Join(systems, ", "))
			}
			*f.into = append(*f.into, re)
		}
	}
	return sel, nil
}

func matchesAny(re *regexp.Regexp, workloads, systems []string) bool {
	for _, w := range workloads {
		for _, s := range systems {
			if matchCell(re, w, s) {
				return true
			}
		}
	}
	return false
}

func matchCell(re *regexp.Regexp, w, s string) bool {
	return re.MatchString(w) || re.MatchString(s) || re.MatchString(w+"/"+s)
}

// selected says whether workload w runs on system s.
func (sel selection) selected(w, s string) bool {
	if len(sel.only) > 0 && !sel.anyMatch(sel.only, w, s) {
		return false
	}
	return !sel.anyMatch(sel.skip, w, s)
}

func (sel selection) anyMatch(res []*regexp.Regexp, w, s string) bool {
	for _, re := range res {
		if matchCell(re, w, s) {
			return true
		}
	}
	return false
}

// order is the systems' order in repetition rep (from 0): rotated by one
// each repetition, so that with two systems each goes first in every
// other repetition, and neither always runs on a machine the other has
// just warmed or loaded.
func order[T any](systems []T, rep int) []T {
	out := make([]T, len(systems))
	for i := range systems {
		out[i] = systems[(i+rep)%len(systems)]
	}
	return out
}

// errInterrupted is the failure of the cell a signal ended.
var errInterrupted = errors.New("interrupted by a signal")

// sample is one cell's result: its metrics (and latencies, if it has
// them), or why it failed.
type sample struct {
	workload, system string
	metrics          map[string]float64
	latency          []bucket
	warning          string // other processes were busy: see cell
	err              error
}

// runner runs the selected cells.
type runner struct {
	env     *env
	systems []system
	sel     selection
	count   int
	meter   *meter
}

// run runs every selected workload count times on each selected system,
// the systems' order alternating between repetitions, until ctx ends.
// It returns the samples in the order they ran.
func (r *runner) run(ctx context.Context, workloads []workload) []sample {
	var out []sample
	for _, w := range workloads {
		for rep := range r.count {
			for _, sys := range order(r.systems, rep) {
				if !r.sel.selected(w.name, sys.name()) || !sys.serves(w.svc) {
					continue
				}
				if ctx.Err() != nil {
					return out
				}
				label := fmt.Sprintf("%s on %s, %d/%d", w.name, sys.name(), rep+1, r.count)
				m, err := r.cell(ctx, w, sys, r.meter.begin(label, r.env.d, w.unit))
				r.meter.end(m.metrics, err)
				if m.warning != "" {
					r.meter.warn(m.warning)
				}
				out = append(out, sample{workload: w.name, system: sys.name(), metrics: m.metrics, latency: m.latency, warning: m.warning, err: err})
			}
		}
	}
	return out
}

// cell runs one workload once on one system, between the system's start
// and stop, and adds the CPU rows: this process's CPU time (getrusage,
// every thread: the system's servers, and for the kernel the system
// calls it makes), the machine's softirq time (/proc/stat, every CPU:
// the kernel's receive processing, wherever it ran, whoever caused it)
// and the CPU time of every other process (the machine's user and
// system time less this process's and, when it runs on this machine,
// the client's) over the
// workload's run, with a warning when that passed otherBusy of a CPU.
//
// A ring workload (svcRing) opens the link itself: no system is started.
func (r *runner) cell(ctx context.Context, w workload, sys system, progress func(int64)) (measured, error) {
	if w.svc == svcRing {
		sys = bare{sys}
	}
	if err := sys.start(r.env.lab); err != nil {
		return measured{}, fmt.Errorf("start %s: %w", sys.name(), err)
	}
	cpu0, t0 := lab.ProcessCPU(), time.Now()
	st0, serr0 := readProcStat()
	m, err := w.run(ctx, r.env, sys, progress)
	cpu1, wall := lab.ProcessCPU(), time.Since(t0)
	st1, serr1 := readProcStat()
	err = errors.Join(err, sys.stop())
	if ctx.Err() != nil {
		err = errInterrupted // whatever the workload made of it
	}
	if err != nil {
		return measured{}, err
	}
	m.metrics[cpuServer] = (cpu1 - cpu0).Seconds()
	if serr0 == nil && serr1 == nil {
		m.metrics[cpuSoftirq] = (st1.softirq - st0.softirq).Seconds()
		other := (st1.tasks - st0.tasks).Seconds() - m.metrics[cpuServer]
		if r.env.clientsHere {
			other -= m.metrics[cpuClient]
		}
		other = max(0, other)
		m.metrics[cpuOther] = other
		if share := other / wall.Seconds(); share > otherBusy {
			m.warning = fmt.Sprintf("other processes used %.0f %% of a CPU during %s on %s: its figures may be off", 100*share, w.name, sys.name())
		}
	}
	return m, nil
}

// bare is a system whose stack is not started: a ring workload's cell.
type bare struct{ system }

func (bare) start(*lab.Lab) error { return nil }
func (bare) stop() error          { return nil }

// otherBusy is the share of a CPU other processes may use during a cell
// before the cell is flagged: on this 2-vCPU lab a second busy process
// moves latency figures 2-5×.
const otherBusy = 0.10

// userHZ is the unit of /proc/stat's times: USER_HZ, 100 on every Linux
// architecture Go runs on.
const userHZ = 100

// procStat is the machine's CPU time since boot, all CPUs, from
// /proc/stat's first line: softirq its seventh figure, tasks the user,
// nice and system time of every process.
type procStat struct {
	softirq, tasks time.Duration
}

func readProcStat() (procStat, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return procStat{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return procStat{}, fmt.Errorf("/proc/stat: %q", line)
	}
	var ticks [8]uint64
	for i := 1; i < 8; i++ {
		if ticks[i], err = strconv.ParseUint(f[i], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("/proc/stat: %q: %w", line, err)
		}
	}
	d := func(t uint64) time.Duration { return time.Duration(t) * time.Second / userHZ }
	return procStat{softirq: d(ticks[7]), tasks: d(ticks[1] + ticks[2] + ticks[3])}, nil
}
