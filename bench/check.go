package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// checkFile is -check: it reads a run's JSON and returns what is wrong
// with it as a smoke test sees it, one line each; none when every
// selected workload × system cell has a number in every one of the
// workload's metric rows. It never judges a figure.
func checkFile(name string) ([]string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var rep runReport
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return check(rep), nil
}

// check is checkFile's verdict on rep: the cells the run's -only and
// -skip selected (against this binary's workloads and systems), on the
// systems the run used, must each have a median and no failure. The CPU rows are
// left out: softirq time is not measurable everywhere.
func check(rep runReport) []string {
	var bad []string
	if rep.Schema != schemaVersion {
		bad = append(bad, fmt.Sprintf("schema %d, want %d", rep.Schema, schemaVersion))
	}
	if rep.Interrupted {
		bad = append(bad, "the run was interrupted")
	}
	if len(rep.Systems) == 0 {
		return append(bad, "no systems ran")
	}
	workloads := workloadsFor(rep.Machine.Peer != "")
	var wnames, snames []string
	for _, w := range workloads {
		wnames = append(wnames, w.name)
	}
	for _, s := range newSystems() {
		snames = append(snames, s.name())
	}
	sel, err := parseSelection(rep.Settings.Only, rep.Settings.Skip, wnames, snames)
	if err != nil {
		return append(bad, "the run's selection: "+err.Error())
	}
	cells := map[[2]string]map[string]cell{} // workload, metric → by system
	for _, r := range rep.Rows {
		cells[[2]string{r.Workload, r.Metric}] = r.Cells
	}
	for _, w := range workloads {
		for _, sys := range rep.Systems {
			if !sel.selected(w.name, sys) || !applicable(w, sys) {
				continue
			}
			for _, metric := range w.metrics {
				c, ok := cells[[2]string{w.name, metric}][sys]
				switch {
				case !ok:
					bad = append(bad, fmt.Sprintf("%s on %s: no %s", w.name, sys, metric))
				case c.Failed != "":
					bad = append(bad, fmt.Sprintf("%s on %s: %s failed: %s", w.name, sys, metric, c.Failed))
				case c.Median == nil:
					bad = append(bad, fmt.Sprintf("%s on %s: %s has no number", w.name, sys, metric))
				}
			}
		}
	}
	return bad
}
