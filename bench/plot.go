package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// The plots (-plot DIR), drawn from a run's report in pure Go: a latency
// CDF per workload that times transactions, a system a line, and a bar
// chart per throughput metric, a workload a group and a system a bar. A
// failed cell is left out and named: in the CDF's title, in the bar
// chart's legend.

// plotWidth and plotHeight are every plot's size: 800 × 500 pixels at
// the PNG's 96 dpi.
const (
	plotWidth  = vg.Length(600) // points
	plotHeight = vg.Length(375)
)

// throughputMetrics are the metrics a bar chart each, in this order.
var throughputMetrics = []string{"Gbit/s", "trans/s", "conns/s", "pps", "Mpps"}

// writePlots writes rep's plots into dir (made if need be) and returns
// their paths.
func writePlots(dir string, rep runReport) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	save := func(p *plot.Plot, name string) error {
		path := filepath.Join(dir, name+".png")
		if err := p.Save(plotWidth, plotHeight, path); err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		paths = append(paths, path)
		return nil
	}
	for _, r := range rep.Rows {
		if r.Metric != "p50-µs" {
			continue // one CDF per workload: those with latencies have a p50
		}
		p, err := latencyCDF(rep, r)
		if err != nil {
			return paths, err
		}
		if err := save(p, r.Workload+"-latency-cdf"); err != nil {
			return paths, err
		}
	}
	for _, metric := range throughputMetrics {
		var rs []row
		for _, r := range rep.Rows {
			if r.Metric == metric {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		p, err := throughputBars(systemsIn(rep.Systems, rs), metric, rs)
		if err != nil {
			return paths, err
		}
		if err := save(p, "throughput-"+fileName(metric)); err != nil {
			return paths, err
		}
	}
	return paths, nil
}

// systemsIn are the systems with a figure or a failure in one of rs:
// no empty bars for a system the workloads do not apply to.
func systemsIn(systems []string, rs []row) []string {
	var out []string
	for _, sys := range systems {
		for _, r := range rs {
			if c := r.Cells[sys]; c.Median != nil || c.Failed != "" {
				out = append(out, sys)
				break
			}
		}
	}
	return out
}

// fileName is metric as a file name: "Gbit/s" is "gbit-s".
func fileName(metric string) string {
	return strings.ToLower(strings.NewReplacer("/", "-", ".", "-").Replace(metric))
}

// latencyCDF is the latency CDF of r's workload, a line per system that
// has latencies; the systems whose cell failed are named in the title.
func latencyCDF(rep runReport, r row) (*plot.Plot, error) {
	p := plot.New()
	p.X.Label.Text = "latency (µs, log scale)"
	p.Y.Label.Text = "fraction at or below (transactions, or tcp-crr's connections)"
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	var failed []string
	lines := 0
	for i, sys := range rep.Systems {
		if c, ok := r.Cells[sys]; ok && c.Failed != "" {
			failed = append(failed, sys)
			continue
		}
		j := slices.IndexFunc(rep.Latency, func(h latencyHist) bool { return h.Workload == r.Workload && h.System == sys })
		if j < 0 {
			continue
		}
		xys := cdf(rep.Latency[j].Buckets)
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("plot %s on %s: %w", r.Workload, sys, err)
		}
		l.Color, l.Width = plotutil.Color(i), vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(sys, l)
		lines++
	}
	if lines == 0 {
		p.X.Min, p.X.Max = 1, 1000 // a log axis needs a range above 0
	}
	p.Title.Text = r.Workload + ": latency CDF"
	if len(failed) > 0 {
		p.Title.Text += " (failed: " + strings.Join(failed, ", ") + ")"
	}
	return p, nil
}

// cdf is the cumulative distribution of a histogram's buckets: at each
// bucket's value (µs), the fraction of values at or below it. Values of
// 0 ns, which a log axis cannot show, are counted but not drawn.
func cdf(buckets []bucket) plotter.XYs {
	var total, seen int64
	for _, b := range buckets {
		total += b[1]
	}
	var xys plotter.XYs
	for _, b := range buckets {
		seen += b[1]
		if b[0] > 0 && total > 0 {
			xys = append(xys, plotter.XY{X: float64(b[0]) / 1e3, Y: float64(seen) / float64(total)})
		}
	}
	return xys
}

// throughputBars is metric over rs's workloads, a bar per system (the
// median over the repetitions); a failed cell has no bar, and the
// legend names the workloads where the system failed.
func throughputBars(systems []string, metric string, rs []row) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "throughput, " + metric + " (median of the repetitions)"
	p.Y.Label.Text = metric
	p.Y.Min = 0
	p.Y.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		ts := plot.DefaultTicks{}.Ticks(lo, hi)
		for i := range ts {
			if ts[i].Label != "" {
				ts[i].Label = figure(ts[i].Value)
			}
		}
		return ts
	})
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil // no line through the bars
	p.Add(grid)
	p.Legend.Top = true
	var names []string
	for _, r := range rs {
		names = append(names, r.Workload)
	}
	p.NominalX(names...)
	width := vg.Points(min(40, 300/float64(len(rs)*max(len(systems), 1))))
	top := 0.0
	for i, sys := range systems {
		vs := make(plotter.Values, len(rs))
		for j, r := range rs {
			if c := r.Cells[sys]; c.Median != nil {
				vs[j] = *c.Median
				top = max(top, *c.Median)
			}
		}
		b, err := plotter.NewBarChart(vs, width)
		if err != nil {
			return nil, fmt.Errorf("plot %s on %s: %w", metric, sys, err)
		}
		b.Color, b.LineStyle.Width = plotutil.Color(i), 0
		b.Offset = width * vg.Length(2*i-len(systems)+1) / 2
		p.Add(b)
		p.Legend.Add(barLabel(sys, rs), b)
	}
	// Half a group's room either side, and room above the highest bar
	// for the legend, which sits there.
	p.X.Min, p.X.Max = -0.5, float64(len(rs))-0.5
	p.Y.Max = max(top, 1) * (1.1 + 0.08*float64(len(systems)))
	return p, nil
}

// barLabel is sys's legend entry in a bar chart of rs: its name, and the
// workloads where it failed (and has no bar).
func barLabel(sys string, rs []row) string {
	var failed []string
	for _, r := range rs {
		if r.Cells[sys].Failed != "" {
			failed = append(failed, r.Workload)
		}
	}
	if len(failed) == 0 {
		return sys
	}
	return sys + " (failed: " + strings.Join(failed, ", ") + ")"
}
