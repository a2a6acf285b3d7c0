// Package traceplot draws a connection's trace (bytes in flight, windows)
// against time as a PNG line chart, for tests and the README. It is a
// test helper: no package of the stack imports it.
package traceplot

import (
	"fmt"
	"image/color"
	"os"
	"testing"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Point is one sample of a series: value V at time T.
type Point struct {
	T time.Duration
	V float64
}

// Series is one line of the chart.
type Series struct {
	Name   string
	Points []Point
}

// Chart is what PNG draws: a title, the unit of every series' values, and
// the series.
type Chart struct {
	Title, Unit string
	Series      []Series
}

// palette tells up to eight lines apart; more reuse it.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xff, 0x7f, 0x0e, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
}

// PNG writes c to path as a PNG of width × height points (at 96 dpi, so
// pixels × 0.75), time in seconds along the x axis.
func PNG(path string, c Chart, width, height vg.Length) error {
	p := plot.New()
	p.Title.Text = c.Title
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = c.Unit
	p.Add(plotter.NewGrid())
	top := 0.0
	for i, s := range c.Series {
		xys := make(plotter.XYs, len(s.Points))
		for j, pt := range s.Points {
			xys[j] = plotter.XY{X: pt.T.Seconds(), Y: pt.V}
			top = max(top, pt.V)
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("traceplot: series %q: %w", s.Name, err)
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1)
		p.Add(l)
		p.Legend.Add(s.Name, l)
	}
	// Room above the highest line for the legend, which sits there.
	p.Y.Min, p.Y.Max = 0, top*(1.1+0.08*float64(len(c.Series)))
	p.Legend.Top = true
	if err := p.Save(width, height, path); err != nil {
		return fmt.Errorf("traceplot: %w", err)
	}
	return nil
}

// Dir is where a test writes its plots: $XDPNET_PLOT_DIR (created if
// need be), to keep them, or else a temporary directory of t's.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("XDPNET_PLOT_DIR")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("plot directory: %v", err)
	}
	return dir
}
