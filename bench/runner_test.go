package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	testWorkloads = []string{"tcp-rr-1", "tcp-rr-1k", "udp-rr-64", "idle"}
	testSystems   = []string{"kernel", "kernel-no-xdp", "xdpnet"}
)

func TestSelection(t *testing.T) {
	for _, tc := range []struct {
		only, skip string
		want       []string // workload/system cells selected
	}{
		{"", "", nil}, // nil: every cell
		{"tcp-rr-1$", "", []string{"tcp-rr-1/kernel", "tcp-rr-1/kernel-no-xdp", "tcp-rr-1/xdpnet"}},
		{"^kernel$, idle", "", []string{"tcp-rr-1/kernel", "tcp-rr-1k/kernel", "udp-rr-64/kernel", "idle/kernel", "idle/kernel-no-xdp", "idle/xdpnet"}},
		{"udp", "xdpnet", []string{"udp-rr-64/kernel", "udp-rr-64/kernel-no-xdp"}},
		{"", "tcp,kernel", []string{"idle/xdpnet", "udp-rr-64/xdpnet"}},
		{"tcp-rr-1k/xdpnet", "", []string{"tcp-rr-1k/xdpnet"}},
	} {
		sel, err := parseSelection(tc.only, tc.skip, testWorkloads, testSystems)
		require.NoError(t, err, "-only %q -skip %q", tc.only, tc.skip)
		var got []string
		for _, w := range testWorkloads {
			for _, s := range testSystems {
				if sel.selected(w, s) {
					got = append(got, w+"/"+s)
				}
			}
		}
		if tc.want == nil {
			assert.Len(t, got, len(testWorkloads)*len(testSystems))
			continue
		}
		assert.ElementsMatch(t, tc.want, got, "-only %q -skip %q", tc.only, tc.skip)
	}
}

func TestSelectionRefusesUnknownNames(t *testing.T) {
	for _, tc := range []struct{ only, skip, want string }{
		{"tcp-rr-2", "", `-only "tcp-rr-2" matches no workload`},
		{"", "gvisor", `-skip "gvisor" matches no workload`},
		{"(", "", `-only "(": error parsing regexp`},
	} {
		_, err := parseSelection(tc.only, tc.skip, testWorkloads, testSystems)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
}

func TestOrderAlternates(t *testing.T) {
	two := []string{"kernel", "xdpnet"}
	assert.Equal(t, []string{"kernel", "xdpnet"}, order(two, 0))
	assert.Equal(t, []string{"xdpnet", "kernel"}, order(two, 1))
	assert.Equal(t, []string{"kernel", "xdpnet"}, order(two, 2))
	three := []string{"a", "b", "c"}
	firsts := map[string]bool{}
	for rep := range 3 {
		o := order(three, rep)
		assert.ElementsMatch(t, three, o)
		firsts[o[0]] = true
	}
	assert.Len(t, firsts, 3, "each system goes first once in 3 repetitions")
}

// testRun is a run of two workloads on two systems, twice, where
// xdpnet's second tcp-rr-1 failed.
func testRun() runReport {
	ws := []workload{{name: "tcp-rr-1", metrics: []string{"trans/s", "p50-µs"}}, {name: "idle", metrics: []string{"cpu-%"}}}
	samples := []sample{
		{workload: "tcp-rr-1", system: "kernel", metrics: map[string]float64{"trans/s": 100, "p50-µs": 20, cpuServer: 1}},
		{workload: "tcp-rr-1", system: "xdpnet", metrics: map[string]float64{"trans/s": 150, "p50-µs": 10, cpuServer: 2}},
		{workload: "tcp-rr-1", system: "xdpnet", err: errors.New("client rr: exit status 1:\nrequest 3: | reset")},
		{workload: "tcp-rr-1", system: "kernel", metrics: map[string]float64{"trans/s": 300, "p50-µs": 40, cpuServer: 3}},
		{workload: "idle", system: "kernel", metrics: map[string]float64{"cpu-%": 0, cpuServer: 0}},
		{workload: "idle", system: "xdpnet", metrics: map[string]float64{"cpu-%": 0.5, cpuServer: 0.01}},
		{workload: "idle", system: "kernel", metrics: map[string]float64{"cpu-%": 0, cpuServer: 0}},
		{workload: "idle", system: "xdpnet", metrics: map[string]float64{"cpu-%": 0.25, cpuServer: 0.02}},
	}
	return runReport{
		Schema:   schemaVersion,
		Machine:  machine{Kernel: "6.18", CPUs: 2, Date: time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)},
		Settings: settings{TimeSeconds: 1, Count: 2},
		Systems:  []string{"kernel", "xdpnet"},
		Rows:     rows(ws, []string{"kernel", "xdpnet"}, samples),
	}
}

func TestRows(t *testing.T) {
	rep := testRun()
	var names []string
	for _, r := range rep.Rows {
		names = append(names, r.Workload+" "+r.Metric+" "+r.Better)
	}
	assert.Equal(t, []string{
		"tcp-rr-1 trans/s higher", "tcp-rr-1 p50-µs lower", "tcp-rr-1 cpu-server-s lower",
		"idle cpu-% lower", "idle cpu-server-s lower",
	}, names)

	trans := rep.Rows[0]
	k := trans.Cells["kernel"]
	require.NotNil(t, k.Median)
	assert.Equal(t, 200.0, *k.Median, "the median of two is their mean")
	assert.Equal(t, 100.0, *k.Min)
	assert.Equal(t, 300.0, *k.Max)
	assert.Equal(t, []float64{100, 300}, k.Samples)
	x := trans.Cells["xdpnet"]
	assert.Nil(t, x.Median, "a failed cell has no figure")
	assert.Equal(t, "client rr: exit status 1: request 3: / reset", x.Failed)
	assert.Nil(t, trans.Ratio, "no ratio against a failed cell")

	idle := rep.Rows[3]
	assert.Equal(t, 0.375, *idle.Cells["xdpnet"].Median)
	assert.Nil(t, idle.Ratio, "no ratio over a zero")
	assert.Equal(t, "failed: client rr: exit status 1: request 3: / reset", "failed: "+rep.Rows[2].Cells["xdpnet"].Failed,
		"a failed repetition fails the CPU rows too")
}

func TestMarkdown(t *testing.T) {
	rep := testRun()
	var b bytes.Buffer
	writeTable(&b, rep)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	assert.Equal(t, "| workload | metric | better | kernel | xdpnet | xdpnet ÷ kernel |", lines[0])
	assert.Equal(t, "|---|---|---|---|---|---|", lines[1])
	assert.Equal(t, "| tcp-rr-1 | trans/s | ↑ higher | 200 (100–300) | failed: client rr: exit status 1: request 3: / reset | — |", lines[2])
	assert.Equal(t, "| tcp-rr-1 | p50-µs | ↓ lower | 30.0 (20.0–40.0) | failed: client rr: exit status 1: request 3: / reset | — |", lines[3])
	assert.Equal(t, "| idle | cpu-% | ↓ lower | 0 (0–0) | 0.375 (0.25–0.5) | — |", lines[5])
	for _, l := range lines {
		assert.Equal(t, 7, strings.Count(l, "|"), "a row of 6 columns: %s", l)
	}

	b.Reset()
	writeHeader(&b, rep)
	assert.Contains(t, b.String(), "Linux 6.18, 2 CPUs")
	assert.Contains(t, b.String(), "2026-12-04 22:00:00 UTC")
}

func TestRatioIsXDPNetOverKernel(t *testing.T) {
	ws := []workload{{name: "w", metrics: []string{"trans/s", "p50-µs"}}}
	rs := rows(ws, nil, []sample{
		{workload: "w", system: "kernel", metrics: map[string]float64{"trans/s": 100, "p50-µs": 20}},
		{workload: "w", system: "xdpnet", metrics: map[string]float64{"trans/s": 150, "p50-µs": 10}},
	})
	require.NotNil(t, rs[0].Ratio)
	assert.Equal(t, 1.5, *rs[0].Ratio)
	assert.Equal(t, "higher", rs[0].Better, "1.5× is better")
	assert.Equal(t, 0.5, *rs[1].Ratio)
	assert.Equal(t, "lower", rs[1].Better, "0.5× is better")
	assert.Nil(t, rs[0].RatioGVisor, "no gVisor column without gVisor")
}

// TestRatioOverGVisor: the second ratio column divides xdpnet by gVisor,
// and the table shows both columns when both systems ran.
func TestRatioOverGVisor(t *testing.T) {
	ws := []workload{{name: "w", metrics: []string{"trans/s"}}}
	rs := rows(ws, nil, []sample{
		{workload: "w", system: "kernel", metrics: map[string]float64{"trans/s": 100}},
		{workload: "w", system: "xdpnet", metrics: map[string]float64{"trans/s": 150}},
		{workload: "w", system: "gvisor", metrics: map[string]float64{"trans/s": 50}},
	})
	require.NotNil(t, rs[0].RatioGVisor)
	assert.Equal(t, 3.0, *rs[0].RatioGVisor)
	var b bytes.Buffer
	writeTable(&b, runReport{Systems: []string{"kernel", "xdpnet", "gvisor"}, Rows: rs, Settings: settings{Count: 1}})
	assert.Contains(t, b.String(), "| workload | metric | better | kernel | xdpnet | gvisor | xdpnet ÷ kernel | xdpnet ÷ gvisor |")
	assert.Contains(t, b.String(), "| 1.50× | 3.00× |")
}

func TestJSON(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, writeJSON(&b, testRun()))
	var got map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &got))
	assert.Equal(t, 1.0, got["schema"])
	assert.Equal(t, "6.18", got["machine"].(map[string]any)["kernel"])
	assert.Equal(t, "2026-12-04T22:00:00Z", got["machine"].(map[string]any)["date"])
	row := got["rows"].([]any)[0].(map[string]any)
	assert.Equal(t, "tcp-rr-1", row["workload"])
	assert.Equal(t, "trans/s", row["metric"])
	assert.Equal(t, "higher", row["better"])
	assert.NotContains(t, row, "ratio")
	cells := row["cells"].(map[string]any)
	assert.Equal(t, map[string]any{"median": 200.0, "min": 100.0, "max": 300.0, "samples": []any{100.0, 300.0}}, cells["kernel"])
	assert.Equal(t, map[string]any{"failed": "client rr: exit status 1: request 3: / reset"}, cells["xdpnet"])
	assert.NotContains(t, got, "interrupted")
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-only", "nosuch"}, {"-skip", "nosuchsystem"}, {"-count", "0"}, {"-time", "0s"}, {"extra"}, {"-nosuchflag"},
		{"-only", "idle", "-skip", "idle"}, {"-quick", "-count", "0"},
	} {
		var out, errb bytes.Buffer
		assert.Equal(t, exitUsage, benchMain(args, &out, &errb), "%v", args)
		assert.NotEmpty(t, errb.String(), "%v says why", args)
	}
}

func TestQuickDefaults(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		count int
		d     time.Duration
	}{
		{nil, quickCount, quickTime},
		{[]string{"-count", "2"}, 2, quickTime},
		{[]string{"-time", "3s"}, quickCount, 3 * time.Second},
	} {
		fs := flag.NewFlagSet("bench", flag.ContinueOnError)
		count := fs.Int("count", 3, "")
		d := fs.Duration("time", 2*time.Second, "")
		require.NoError(t, fs.Parse(tc.args))
		quickDefaults(fs, count, d)
		assert.Equal(t, tc.count, *count, "%v", tc.args)
		assert.Equal(t, tc.d, *d, "%v", tc.args)
	}
}

func TestLatencyHistsMerge(t *testing.T) {
	ws := []workload{{name: "tcp-rr-1"}, {name: "idle"}}
	hs := latencyHists(ws, []string{"kernel", "xdpnet"}, []sample{
		{workload: "tcp-rr-1", system: "kernel", latency: []bucket{{1000, 2}, {3000, 1}}},
		{workload: "tcp-rr-1", system: "kernel", latency: []bucket{{2000, 5}, {3000, 4}}},
		{workload: "tcp-rr-1", system: "xdpnet", latency: []bucket{{500, 9}}},
		{workload: "tcp-rr-1", system: "xdpnet", err: errors.New("reset")},
		{workload: "idle", system: "kernel"},
	})
	assert.Equal(t, []latencyHist{{Workload: "tcp-rr-1", System: "kernel", Buckets: []bucket{{1000, 2}, {2000, 5}, {3000, 5}}}}, hs,
		"the repetitions merged by bucket; none for a failed cell or a workload without latencies")
}

// TestListTwoHosts: with two hosts, -list names the systems and the
// workload left out and why, and no system that nothing of the run
// applies to (asavie, whose one workload is left out).
func TestListTwoHosts(t *testing.T) {
	var out, errb bytes.Buffer
	require.Equal(t, exitOK, benchMain([]string{"-list", "-iface", "eth9", "-addr", "198.18.0.2/24", "-peer", "198.18.0.1"}, &out, &errb), errb.String())
	assert.Contains(t, out.String(), "system gvisor: "+ownLabTwoHosts+"\n")
	assert.Contains(t, out.String(), "system kernel-offloads: "+ownLabTwoHosts+"\n")
	assert.Contains(t, out.String(), "rxdrop: "+ringTwoHosts+"\n")
	assert.Contains(t, out.String(), "system xdpnet-inline\n")
	assert.NotContains(t, out.String(), "system asavie")
	assert.NotRegexp(t, `(?m)^rxdrop\s`, out.String(), "rxdrop is not a workload of the run")

	out.Reset()
	require.Equal(t, exitOK, benchMain([]string{"-list"}, &out, &errb), errb.String())
	assert.Contains(t, out.String(), "system asavie\n")
	assert.Contains(t, out.String(), "system kernel-offloads\n")
}
