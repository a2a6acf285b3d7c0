package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goodRun is a run of every workload on two systems, every metric
// measured (zeros count: the check never judges a figure).
func goodRun() runReport {
	systems := []string{"kernel", "xdpnet"}
	return runReport{Schema: schemaVersion, Systems: systems, Rows: rows(workloads, systems, goodSamples(systems))}
}

// checkRun writes rep as JSON and runs bench -check on it: the exit code
// and stderr.
func checkRun(t *testing.T, rep runReport) (int, string) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "bench.json")
	f, err := os.Create(name)
	require.NoError(t, err)
	require.NoError(t, writeJSON(f, rep))
	require.NoError(t, f.Close())
	var out, errb bytes.Buffer
	code := benchMain([]string{"-check", name}, &out, &errb)
	return code, errb.String()
}

func TestCheckGood(t *testing.T) {
	code, stderr := checkRun(t, goodRun())
	assert.Equal(t, exitOK, code, stderr)
	assert.Empty(t, stderr)
}

func TestCheckBad(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*runReport)
		want   []string
	}{
		{"a failed cell", func(r *runReport) {
			r.Rows = rows(workloads, r.Systems, append(goodSamples(r.Systems), sample{workload: "tcp-rr-1k", system: "xdpnet", err: errors.New("reset")}))
		}, []string{"tcp-rr-1k on xdpnet: trans/s failed: reset", "tcp-rr-1k on xdpnet: p99.9-µs failed: reset"}},
		{"a missing cell", func(r *runReport) { delete(r.Rows[0].Cells, "kernel") }, []string{"tcp-rr-1 on kernel: no trans/s"}},
		{"a cell without a figure", func(r *runReport) { r.Rows[0].Cells["kernel"] = cell{} }, []string{"tcp-rr-1 on kernel: trans/s has no number"}},
		{"a missing workload", func(r *runReport) {
			r.Rows = without(r.Rows, "idle")
		}, []string{"idle on kernel: no cpu-%", "idle on xdpnet: no cpu-%"}},
		{"interrupted", func(r *runReport) { r.Interrupted = true }, []string{"the run was interrupted"}},
		{"no systems", func(r *runReport) { r.Systems = nil }, []string{"no systems ran"}},
		{"another schema", func(r *runReport) { r.Schema = 2 }, []string{"schema 2, want 1"}},
	} {
		rep := goodRun()
		tc.change(&rep)
		code, stderr := checkRun(t, rep)
		assert.Equal(t, exitFailedCells, code, tc.name)
		for _, w := range tc.want {
			assert.Contains(t, stderr, w, tc.name)
		}
	}
}

// TestCheckSelection: a cell -only or -skip left out is not missing.
func TestCheckSelection(t *testing.T) {
	rep := goodRun()
	rep.Settings.Skip = "idle/xdpnet"
	rep.Rows = without(rep.Rows, "idle")
	code, stderr := checkRun(t, rep)
	assert.Equal(t, exitFailedCells, code, "idle on kernel was selected")
	assert.Contains(t, stderr, "idle on kernel: no cpu-%")
	assert.NotContains(t, stderr, "idle on xdpnet")

	rep.Settings.Skip = "idle,kernel-no-xdp" // a system the run did not use: still a name
	code, stderr = checkRun(t, rep)
	assert.Equal(t, exitOK, code, stderr)
}

func TestCheckUnreadable(t *testing.T) {
	name := filepath.Join(t.TempDir(), "bench.json")
	require.NoError(t, os.WriteFile(name, []byte("{\"schema\": 1, "), 0o644))
	var out, errb bytes.Buffer
	assert.Equal(t, exitUsage, benchMain([]string{"-check", name}, &out, &errb))
	assert.True(t, strings.HasPrefix(errb.String(), "bench: "), errb.String())
	assert.Equal(t, exitUsage, benchMain([]string{"-check", name + ".none"}, &out, &errb))
}

// goodSamples are a sample of every workload on each of systems, with
// every metric.
func goodSamples(systems []string) []sample {
	var out []sample
	for _, w := range workloads {
		for _, sys := range systems {
			if !applicable(w, sys) {
				continue
			}
			m := map[string]float64{cpuServer: 0}
			for _, metric := range w.metrics {
				m[metric] = 0
			}
			out = append(out, sample{workload: w.name, system: sys, metrics: m})
		}
	}
	return out
}

// without is rows but workload's.
func without(rows []row, workload string) []row {
	var out []row
	for _, r := range rows {
		if r.Workload != workload {
			out = append(out, r)
		}
	}
	return out
}

// TestCheckNotApplicable: a system that has nothing a workload measures
// (xdpnet-inline has no UDP) has a not-applicable cell, which the table
// shows as "—" and the check does not miss.
func TestCheckNotApplicable(t *testing.T) {
	systems := []string{"kernel", "xdpnet-inline"}
	rep := runReport{Schema: schemaVersion, Systems: systems, Rows: rows(workloads, systems, goodSamples(systems)), Settings: settings{Count: 1}}
	var udp row
	for _, r := range rep.Rows {
		if r.Workload == "udp-rr-64" && r.Metric == "trans/s" {
			udp = r
		}
	}
	assert.Equal(t, cell{NotApplicable: true}, udp.Cells["xdpnet-inline"])
	assert.NotNil(t, udp.Cells["kernel"].Median)
	var b bytes.Buffer
	writeTable(&b, rep)
	assert.Contains(t, b.String(), "| udp-rr-64 | trans/s | ↑ higher | 0 | — |")
	code, stderr := checkRun(t, rep)
	assert.Equal(t, exitOK, code, stderr)
}

// TestCheckTwoHosts: a two-host run has no ring workload (its sender
// needs the lab's peer), and the check does not miss it; in the lab it
// does.
func TestCheckTwoHosts(t *testing.T) {
	rep := goodRun()
	rep.Rows = without(rep.Rows, "rxdrop")
	code, stderr := checkRun(t, rep)
	assert.Equal(t, exitFailedCells, code)
	assert.Contains(t, stderr, "rxdrop on xdpnet: no Mpps")
	rep.Machine.Peer = "198.18.0.1:9207"
	code, stderr = checkRun(t, rep)
	assert.Equal(t, exitOK, code, stderr)
}
