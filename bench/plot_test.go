package main

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// plotRun is a run of a request/response workload, a bulk workload and
// tcp-crr on two systems, where xdpnet's tcp-rr-1 and tcp-send-1 failed.
func plotRun() runReport {
	ws := []workload{
		{name: "tcp-rr-1", metrics: []string{"trans/s", "p50-µs"}},
		{name: "tcp-send-1", metrics: []string{"Gbit/s"}},
		{name: "tcp-crr", metrics: []string{"conns/s", "p50-µs"}},
	}
	lat := []bucket{{20_000, 5}, {25_000, 80}, {40_000, 10}, {1_000_000, 1}}
	samples := []sample{
		{workload: "tcp-rr-1", system: "kernel", metrics: map[string]float64{"trans/s": 40000, "p50-µs": 25}, latency: lat},
		{workload: "tcp-rr-1", system: "xdpnet", err: assert.AnError},
		{workload: "tcp-send-1", system: "kernel", metrics: map[string]float64{"Gbit/s": 15}},
		{workload: "tcp-send-1", system: "xdpnet", err: assert.AnError},
		{workload: "tcp-crr", system: "kernel", metrics: map[string]float64{"conns/s": 6000, "p50-µs": 150}, latency: lat},
		{workload: "tcp-crr", system: "xdpnet", metrics: map[string]float64{"conns/s": 4000, "p50-µs": 200}, latency: lat[1:]},
	}
	systems := []string{"kernel", "xdpnet"}
	return runReport{Schema: schemaVersion, Systems: systems, Rows: rows(ws, systems, samples), Latency: latencyHists(ws, systems, samples)}
}

func TestPlots(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plots")
	paths, err := writePlots(dir, plotRun())
	require.NoError(t, err)
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
		f, err := os.Open(p)
		require.NoError(t, err)
		img, err := png.Decode(f)
		f.Close()
		require.NoError(t, err, p)
		assert.Equal(t, 800, img.Bounds().Dx(), p)
		assert.Equal(t, 500, img.Bounds().Dy(), p)
	}
	assert.Equal(t, []string{"tcp-rr-1-latency-cdf.png", "tcp-crr-latency-cdf.png",
		"throughput-gbit-s.png", "throughput-trans-s.png", "throughput-conns-s.png"}, names)
}

func TestPlotsNameFailedCells(t *testing.T) {
	rep := plotRun()
	p, err := latencyCDF(rep, rep.Rows[1])
	require.NoError(t, err)
	assert.Equal(t, "tcp-rr-1: latency CDF (failed: xdpnet)", p.Title.Text)

	var gbit []row
	for _, r := range rep.Rows {
		if r.Metric == "Gbit/s" {
			gbit = append(gbit, r)
		}
	}
	assert.Equal(t, "kernel", barLabel("kernel", gbit))
	assert.Equal(t, "xdpnet (failed: tcp-send-1)", barLabel("xdpnet", gbit))
}

func TestPlotsWithEveryCellFailed(t *testing.T) {
	rep := plotRun()
	for i := range rep.Rows {
		for sys := range rep.Rows[i].Cells {
			rep.Rows[i].Cells[sys] = cell{Failed: "reset"}
		}
	}
	rep.Latency = nil
	paths, err := writePlots(t.TempDir(), rep)
	require.NoError(t, err)
	assert.Len(t, paths, 5, "a plot with nothing in it still draws, and says why")
}

func TestCDF(t *testing.T) {
	xys := cdf([]bucket{{0, 1}, {1000, 1}, {3000, 2}})
	require.Len(t, xys, 2, "0 ns cannot go on a log axis")
	assert.Equal(t, 1.0, xys[0].X)
	assert.Equal(t, 0.5, xys[0].Y, "the 0 ns value counts")
	assert.Equal(t, 3.0, xys[1].X)
	assert.Equal(t, 1.0, xys[1].Y)
}

// TestSystemsIn: a bar chart has the systems with a figure or a failure
// in its rows, not those the workloads do not apply to.
func TestSystemsIn(t *testing.T) {
	med := 1.0
	rs := []row{{Cells: map[string]cell{"kernel": {NotApplicable: true}, "xdpnet": {Median: &med}, "asavie": {Failed: "busy"}}}}
	assert.Equal(t, []string{"xdpnet", "asavie"}, systemsIn([]string{"kernel", "xdpnet", "xdpnet-inline", "asavie"}, rs))
}
