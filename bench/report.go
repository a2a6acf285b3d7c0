package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The results, as -json writes them and the table shows them. The field
// names are stable (see the package documentation for the schema).

// schemaVersion changes only when a field changes meaning or goes away.
const schemaVersion = 1

// runReport is a whole run.
type runReport struct {
	Schema   int      `json:"schema"`
	Machine  machine  `json:"machine"`
	Settings settings `json:"settings"`
	Systems  []string `json:"systems"`
	Rows     []row    `json:"rows"`
	// Latency is the latency histogram of each workload × system cell
	// that times transactions and did not fail, its repetitions merged:
	// what the plots' CDFs draw.
	Latency []latencyHist `json:"latency,omitempty"`
	// Interrupted is set when a signal ended the run early: the rows
	// hold what ran before it.
	Interrupted bool `json:"interrupted,omitempty"`
	// Warnings name the cells during which other processes used more
	// than a tenth of a CPU.
	Warnings []string `json:"warnings,omitempty"`
}

// settings are the flags the run had.
type settings struct {
	TimeSeconds float64 `json:"time_s"`
	Count       int     `json:"count"`
	Only        string  `json:"only,omitempty"`
	Skip        string  `json:"skip,omitempty"`
	// Quick is -quick: TimeSeconds and Count are its, unless given.
	Quick bool `json:"quick,omitempty"`
}

// row is one workload's metric on every system.
type row struct {
	Workload string `json:"workload"`
	Metric   string `json:"metric"`
	// Better is "higher" or "lower".
	Better string `json:"better"`
	// Cells are by system name; a system that did not run the workload
	// (-only, -skip) has none.
	Cells map[string]cell `json:"cells"`
	// Ratio is the xdpnet cell's median over the kernel's, when both
	// have one and the kernel's is not zero; RatioGVisor the same over
	// gVisor's, RatioAsavie over asavie/xdp's (the ring layer).
	Ratio       *float64 `json:"ratio,omitempty"`
	RatioGVisor *float64 `json:"ratio_gvisor,omitempty"`
	RatioAsavie *float64 `json:"ratio_asavie,omitempty"`
}

// cell is one metric of one workload on one system over the repetitions:
// Median, Min, Max and Samples, or Failed, the reason of the first
// repetition that failed (a failed cell has no figures: never a zero),
// or NotApplicable, set when the system has nothing the workload
// measures (the poller's inline services have no UDP; the ring layer
// workload has no stack).
type cell struct {
	Median        *float64  `json:"median,omitempty"`
	Min           *float64  `json:"min,omitempty"`
	Max           *float64  `json:"max,omitempty"`
	Samples       []float64 `json:"samples,omitempty"`
	Failed        string    `json:"failed,omitempty"`
	NotApplicable bool      `json:"not_applicable,omitempty"`
}

// latencyHist is one cell's latencies: the non-empty buckets of the
// client's histogram (internal/latency: log-linear, each value within
// 1/128), in increasing order, over every repetition.
type latencyHist struct {
	Workload string   `json:"workload"`
	System   string   `json:"system"`
	Buckets  []bucket `json:"buckets"`
}

// bucket is a histogram's bucket, [value in ns, count].
type bucket [2]int64

// latencyHists merges the latencies of samples, per workload (in the
// order of ws) and system (in the order of systems); a cell with a
// failed repetition has none, as it has no figures.
func latencyHists(ws []workload, systems []string, samples []sample) []latencyHist {
	var out []latencyHist
	for _, w := range ws {
		for _, sys := range systems {
			counts, ok := map[int64]int64{}, true
			for _, s := range samples {
				if s.workload == w.name && s.system == sys {
					ok = ok && s.err == nil
					for _, b := range s.latency {
						counts[b[0]] += b[1]
					}
				}
			}
			if !ok || len(counts) == 0 {
				continue
			}
			h := latencyHist{Workload: w.name, System: sys}
			for _, ns := range slices.Sorted(maps.Keys(counts)) {
				h.Buckets = append(h.Buckets, bucket{ns, counts[ns]})
			}
			out = append(out, h)
		}
	}
	return out
}

// The systems the ratio columns divide: xdpnet's median over the
// kernel's, over gVisor's, and over asavie/xdp's.
const (
	ratioOf         = "xdpnet"
	ratioOver       = "kernel"
	ratioOverGVisor = "gvisor"
	ratioOverAsavie = "asavie"
)

// rows gathers samples into the table's rows: for each workload (in the
// order of ws) its metrics, then the CPU rows, each with a cell per
// system that ran it, and a not-applicable one for each of systems the
// workload cannot run on.
func rows(ws []workload, systems []string, samples []sample) []row {
	var out []row
	for _, w := range ws {
		bySystem := map[string][]sample{}
		for _, s := range samples {
			if s.workload == w.name {
				bySystem[s.system] = append(bySystem[s.system], s)
			}
		}
		if len(bySystem) == 0 {
			continue
		}
		metrics := slices.Clone(w.metrics)
		for _, cpu := range []string{cpuServer, cpuClient, cpuSoftirq, cpuOther} {
			for _, ss := range bySystem {
				if has(ss, cpu) {
					metrics = append(metrics, cpu)
					break
				}
			}
		}
		for _, metric := range metrics {
			r := row{Workload: w.name, Metric: metric, Better: "lower", Cells: map[string]cell{}}
			if higher[metric] {
				r.Better = "higher"
			}
			for sys, ss := range bySystem {
				r.Cells[sys] = aggregate(ss, metric)
			}
			for _, sys := range systems {
				if !applicable(w, sys) {
					r.Cells[sys] = cell{NotApplicable: true}
				}
			}
			r.Ratio = ratioOfCells(r.Cells[ratioOf], r.Cells[ratioOver])
			r.RatioGVisor = ratioOfCells(r.Cells[ratioOf], r.Cells[ratioOverGVisor])
			r.RatioAsavie = ratioOfCells(r.Cells[ratioOf], r.Cells[ratioOverAsavie])
			out = append(out, r)
		}
	}
	return out
}

func has(ss []sample, metric string) bool {
	for _, s := range ss {
		if _, ok := s.metrics[metric]; ok {
			return true
		}
	}
	return false
}

// aggregate is the cell of metric over the repetitions ss.
func aggregate(ss []sample, metric string) cell {
	var v []float64
	for _, s := range ss {
		if s.err != nil {
			return cell{Failed: oneLine(s.err.Error())}
		}
		x, ok := s.metrics[metric]
		if !ok {
			return cell{Failed: "no " + metric + " measured"}
		}
		v = append(v, x)
	}
	sorted := slices.Sorted(slices.Values(v))
	med := sorted[len(sorted)/2]
	if len(sorted)%2 == 0 {
		med = (sorted[len(sorted)/2-1] + sorted[len(sorted)/2]) / 2
	}
	return cell{Median: &med, Min: &sorted[0], Max: &sorted[len(sorted)-1], Samples: v}
}

// oneLine makes a reason fit a table cell: one line, no pipes, at most
// 120 characters.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(strings.NewReplacer("|", "/").Replace(s)), " ")
	if r := []rune(s); len(r) > 120 {
		s = string(r[:117]) + "..."
	}
	return s
}

// writeJSON writes rep, indented.
func writeJSON(w io.Writer, rep runReport) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(rep)
}

// writeHeader writes rep's header: the machine and the settings.
func writeHeader(w io.Writer, rep runReport) {
	m := rep.Machine
	fmt.Fprintf(w, "## xdpnet bench, %s\n\n", m.Date.Format(time.DateTime+" MST"))
	fmt.Fprintf(w, "- machine: Linux %s, %d CPUs (%s), Go %s\n", m.Kernel, m.CPUs, m.CPUModel, m.Go)
	fmt.Fprintf(w, "- link: %s (driver %s), MTU %d, %d queue(s); xdpnet's XDP mode %s, %s\n",
		m.Link, m.NICDriver, m.MTU, m.Queues, m.XDPMode, map[bool]string{true: "zero-copy", false: "copy mode"}[m.ZeroCopy])
	fmt.Fprintf(w, "- kernel congestion control: %s (sysctl), its sockets ran %s\n", m.CongestionControl, m.KernelSocketCC)
	if m.Peer == "" {
		fmt.Fprintf(w, "- hosts: lab (two namespaces of this machine joined by veth)\n")
	} else {
		fmt.Fprintf(w, "- hosts: two hosts: peer %s runs the clients; gvisor and kernel-offloads %s\n", m.Peer, ownLabTwoHosts)
	}
	fmt.Fprintf(w, "- %v per cell, %d repetition(s), systems alternated; a cell is the median (min–max)\n",
		time.Duration(rep.Settings.TimeSeconds*float64(time.Second)), rep.Settings.Count)
	fmt.Fprintln(w)
}

// ratioOfCells is x's median over y's, when both have one and y's is
// not zero.
func ratioOfCells(x, y cell) *float64 {
	if x.Median == nil || y.Median == nil || *y.Median == 0 {
		return nil
	}
	ratio := *x.Median / *y.Median
	return &ratio
}

// writeTable writes rep's table.
func writeTable(w io.Writer, rep runReport) {
	if rep.Interrupted {
		fmt.Fprintf(w, "**Interrupted**: the table holds what ran before the signal.\n\n")
	}
	head := []string{"workload", "metric", "better"}
	head = append(head, rep.Systems...)
	ratio := slices.Contains(rep.Systems, ratioOf) && slices.Contains(rep.Systems, ratioOver)
	if ratio {
		head = append(head, ratioOf+" ÷ "+ratioOver)
	}
	ratioGVisor := slices.Contains(rep.Systems, ratioOf) && slices.Contains(rep.Systems, ratioOverGVisor)
	if ratioGVisor {
		head = append(head, ratioOf+" ÷ "+ratioOverGVisor)
	}
	ratioAsavie := slices.Contains(rep.Systems, ratioOf) && slices.Contains(rep.Systems, ratioOverAsavie)
	if ratioAsavie {
		head = append(head, ratioOf+" ÷ "+ratioOverAsavie)
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(head)))
	for _, r := range rep.Rows {
		line := []string{r.Workload, r.Metric, map[string]string{"higher": "↑ higher", "lower": "↓ lower"}[r.Better]}
		for _, sys := range rep.Systems {
			line = append(line, cellText(r.Cells[sys], rep.Settings.Count > 1))
		}
		if ratio {
			line = append(line, ratioText(r.Ratio))
		}
		if ratioGVisor {
			line = append(line, ratioText(r.RatioGVisor))
		}
		if ratioAsavie {
			line = append(line, ratioText(r.RatioAsavie))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(line, " | "))
	}
	if len(rep.Warnings) > 0 {
		fmt.Fprintln(w)
	}
	for _, warning := range rep.Warnings {
		fmt.Fprintf(w, "- warning: %s\n", warning)
	}
}

// cellText is a cell as the table shows it.
func cellText(c cell, spread bool) string {
	switch {
	case c.Failed != "":
		return "failed: " + c.Failed
	case c.NotApplicable:
		return "—"
	case c.Median == nil:
		return "" // not run
	case spread && len(c.Samples) > 1:
		return fmt.Sprintf("%s (%s–%s)", figure(*c.Median), figure(*c.Min), figure(*c.Max))
	}
	return figure(*c.Median)
}

// figure is v with three significant digits, without an exponent.
func figure(v float64) string {
	switch a := max(v, -v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// warnings are the samples' warnings, in the order they ran.
func warnings(samples []sample) []string {
	var out []string
	for _, s := range samples {
		if s.warning != "" {
			out = append(out, s.warning)
		}
	}
	return out
}

// ratioText is a ratio as the table shows it.
func ratioText(r *float64) string {
	if r == nil {
		return "—"
	}
	return fmt.Sprintf("%.2f×", *r)
}
