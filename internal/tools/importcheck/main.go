// Command importcheck enforces the layer map of docs/DESIGN.md on the
// module's non-test imports: a package imports only packages of lower
// layers (the protocol cores none of each other, so fastpath alone
// composes them), no product code imports test support, and unsafe and
// golang.org/x/sys/unix appear only where a system call or raw memory
// must. `make lint` runs it from the module root; it prints one line per
// violation and exits 1 if there is any.
//
// Test files are not checked: lab tests drive namespaces and sockets
// through x/sys/unix, and a test may reach any layer it tests through.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

const module = "github.com/xdpnet/xdpnet"

// A layer is a rank in the map; a package may import a module package
// only of a lower rank.
type layer struct {
	rank int
	name string
	// pkgs are import paths relative to the module; a trailing "/..."
	// stands for every package below.
	pkgs []string
	// leavesOnly: the layer imports leaf libraries only. The protocol
	// cores are sans-IO, so no link, socket or poller below them either.
	leavesOnly bool
}

// layers is the map, lowest first (docs/DESIGN.md, "Layers").
var layers = []layer{
	{0, "leaf library", []string{"internal/wire", "internal/siphash", "internal/wheel", "internal/mpsc", "internal/neterr", "internal/latency"}, false},
	{1, "AF_XDP", []string{"xdp", "xdp/steer"}, false},
	{2, "link", []string{"nic"}, false},
	{3, "protocol core", []string{"arp", "ip", "udp", "tcp"}, true},
	{4, "poller", []string{"fastpath", "sockapi/inline"}, false},
	{5, "public API", []string{"sockapi"}, false},
	{6, "exporter", []string{"sockapi/metrics"}, false},
	{7, "service", []string{"internal/product/...", "sockapi/admin"}, false},
	{7, "comparison stack", []string{"bench/gvisorpeer"}, false},
	{8, "program", []string{"cmd/...", "examples/...", "bench", "internal/tools/..."}, false},
}

// testSupport is imported by tests only; it may use leaf libraries.
var testSupport = []string{"internal/testsupport/..."}

// labPrograms may import the lab and the frame builders of test support
// too, for the reason given: they build veth labs as the lab tests do.
var labPrograms = map[string]string{
	"bench": "the bench command builds its own lab, floods it (rxdrop) and measures on it",
}

// labSupport is the test support a lab program may import.
var labSupport = map[string]bool{"internal/testsupport/lab": true, "internal/testsupport/testframe": true}

// lowLevel are the imports allowed only in the packages listed, each
// for the reason given; a trailing "/..." stands for every package
// below.
var lowLevel = map[string]map[string]string{
	"unsafe": {
		"xdp": "the UMEM and the rings are mmap'd memory read through pointers",
	},
	"golang.org/x/sys/unix": {
		"xdp":                      "the AF_XDP socket: socket, bind, setsockopt, mmap, poll, sendto",
		"xdp/steer":                "BPF map and link descriptors, interface flags",
		"bench/gvisorpeer":         "the AF_XDP socket gVisor's link endpoint is built on",
		"bench":                    "the ring layer measured alone (rxdrop): poll, getrusage, sched_setaffinity, and unmapping what asavie/xdp leaves mapped",
		"internal/testsupport/lab": "test support: network namespaces and veth setup",
	},
	"gvisor.dev/gvisor/...": {
		"bench/gvisorpeer": "gVisor's netstack, a system bench compares xdpnet with: nothing else pulls it in",
	},
	"github.com/prometheus/...": {
		"sockapi/metrics": "the Prometheus collector: no other package, and no core, pulls in client_golang",
	},
}

// pkg is the part of `go list -json` the check reads.
type pkg struct {
	ImportPath string
	Imports    []string
}

func main() {
	pkgs, err := list()
	if err != nil {
		fmt.Fprintln(os.Stderr, "importcheck:", err)
		os.Exit(2)
	}
	bad := check(pkgs)
	for _, b := range bad {
		fmt.Println(b)
	}
	if len(bad) > 0 {
		fmt.Printf("importcheck: %d violations of the layer map (docs/DESIGN.md)\n", len(bad))
		os.Exit(1)
	}
}

// list runs go list on every package of the module.
func list() ([]pkg, error) {
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	var pkgs []pkg
	d := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := d.Decode(&p); err == io.EOF {
			return pkgs, nil
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
}

// check returns one line per violation, in the order of pkgs and their
// imports.
func check(pkgs []pkg) []string {
	var bad []string
	for _, p := range pkgs {
		rel, ok := relative(p.ImportPath)
		if !ok {
			continue
		}
		l, known := layerOf(rel)
		test := matches(testSupport, rel)
		if !known && !test {
			bad = append(bad, fmt.Sprintf("%s: not in the layer map (internal/tools/importcheck)", rel))
			continue
		}
		for _, imp := range p.Imports {
			if allowed, low := restricted(imp); low {
				if _, ok := allowed[rel]; !ok {
					bad = append(bad, fmt.Sprintf("%s imports %s: only %s may", rel, imp, strings.Join(sortedKeys(allowed), ", ")))
				}
				continue
			}
			irel, ok := relative(imp)
			if !ok {
				continue
			}
			il, iknown := layerOf(irel)
			switch {
			case matches(testSupport, irel):
				if !test && !(labSupport[irel] && labPrograms[rel] != "") {
					bad = append(bad, fmt.Sprintf("%s imports %s: test support is for tests only", rel, irel))
				}
			case !iknown:
				// reported as a package of its own
			case test && il.rank > 0:
				bad = append(bad, fmt.Sprintf("%s imports %s: test support may import leaf libraries only", rel, irel))
			case !test && l.leavesOnly && il.rank > 0:
				bad = append(bad, fmt.Sprintf("%s (%s) imports %s (%s, layer %d): a %s imports leaf libraries only",
					rel, l.name, irel, il.name, il.rank, l.name))
			case !test && il.rank >= l.rank:
				bad = append(bad, fmt.Sprintf("%s (%s, layer %d) imports %s (%s, layer %d): a package imports lower layers only",
					rel, l.name, l.rank, irel, il.name, il.rank))
			}
		}
	}
	return bad
}

// restricted returns the packages lowLevel allows to import imp, and
// whether it restricts imp at all.
func restricted(imp string) (map[string]string, bool) {
	for path, allowed := range lowLevel {
		if matches([]string{path}, imp) {
			return allowed, true
		}
	}
	return nil, false
}

// relative strips the module path; ok is false outside the module.
func relative(path string) (string, bool) {
	if path == module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}

func layerOf(rel string) (layer, bool) {
	for _, l := range layers {
		if matches(l.pkgs, rel) {
			return l, true
		}
	}
	return layer{}, false
}

func matches(patterns []string, rel string) bool {
	for _, p := range patterns {
		if dir, ok := strings.CutSuffix(p, "/..."); ok {
			if rel == dir || strings.HasPrefix(rel, dir+"/") {
				return true
			}
		} else if rel == p {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
