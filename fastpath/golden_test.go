package fastpath_test

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The simulations' figures are checked against golden files in
// testdata/, one per test (testdata/<TestName>.golden). A simulation is a
// function of its seed and the code alone: virtual time, seeded fault
// injectors (PCG), fixed ISN secrets, one goroutine. An unchanged stack
// so reproduces every figure exactly, run after run. The margins are not
// for noise, then: they let a small intended change (a congestion
// control tweak) pass without rewriting the files, while a change that
// moves a figure further fails and has to be accepted with -update. They
// also absorb what may differ across machines (floating point the
// compiler fuses into FMA on some architectures).

// updateGolden makes the golden tests write the figures of this run to
// their files instead of comparing: go test ./fastpath/ -run X -update.
var updateGolden = flag.Bool("update", false, "rewrite the simulations' golden files in testdata/ with this run's figures")

// margin is how far a figure may move from its golden value: rel of the
// golden value or abs, whichever is larger.
type margin struct{ rel, abs float64 }

var (
	// goodputMargin is for goodputs and other rates and sizes.
	goodputMargin = margin{rel: 0.05}
	// countMargin is for counts of events (retransmits, timeouts, tail
	// drops, recoveries): they move more than goodput under a small
	// change, and the floor keeps a count of a few from failing on one.
	countMargin = margin{rel: 0.10, abs: 3}
)

func (m margin) String() string {
	s := fmt.Sprintf("±%g %%", 100*m.rel)
	if m.abs > 0 {
		s += fmt.Sprintf(" or ±%g", m.abs)
	}
	return s
}

// allows reports whether got is within the margin of golden.
func (m margin) allows(golden, got float64) bool {
	return math.Abs(got-golden) <= max(m.rel*math.Abs(golden), m.abs)
}

// moved says how far got is from golden: relatively, unless golden is 0.
func moved(golden, got float64) string {
	if golden == 0 {
		return fmt.Sprintf("%+.6g", got)
	}
	return fmt.Sprintf("%+.1f %%", 100*(got-golden)/math.Abs(golden))
}

// goldenFigure is one figure of one case.
type goldenFigure struct {
	kase, figure string
	value        float64
	margin       margin
}

// goldenTable collects one test's figures, in the order added (the order
// of its file), then compares them with the test's golden file or, with
// -update, writes it.
type goldenTable struct {
	test    string
	path    string
	note    string
	figures []goldenFigure
	seen    map[[2]string]bool
}

// newGoldenTable starts t's table; note describes the runs (spans,
// seeds) for the file's header. -update needs the full run: with -short
// the tests run fewer seeds or shorter spans, and the file would lose
// the rest.
func newGoldenTable(t *testing.T, note string) *goldenTable {
	t.Helper()
	if *updateGolden && testing.Short() {
		t.Fatal("-update writes the full runs' figures: run it without -short")
	}
	name := strings.ReplaceAll(t.Name(), "/", "_")
	return &goldenTable{test: t.Name(), path: filepath.Join("testdata", name+".golden"), note: note, seen: map[[2]string]bool{}}
}

// add records figure of case kase with its margin.
func (g *goldenTable) add(kase, figure string, value float64, m margin) {
	key := [2]string{kase, figure}
	if g.seen[key] || strings.ContainsAny(kase+figure, "\t\n") {
		panic(fmt.Sprintf("golden: figure %q of case %q added twice or holds a tab", figure, kase))
	}
	g.seen[key] = true
	g.figures = append(g.figures, goldenFigure{kase, figure, value, m})
}

// check compares every figure with its golden value and fails t, per
// figure, naming the case, the figure, both values and the margin. A
// figure missing from the file fails, and so does a golden one the run
// did not make, unless partial (a -short run, with fewer seeds). With
// -update it writes the file instead, unless t has already failed.
func (g *goldenTable) check(t *testing.T, partial bool) {
	t.Helper()
	if *updateGolden {
		if t.Failed() {
			t.Fatalf("%s not rewritten: the test failed", g.path)
		}
		g.write(t)
		return
	}
	golden, err := readGolden(g.path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s is missing: go test ./fastpath/ -run '^%s$' -update writes it", g.path, g.test)
	}
	if err != nil {
		t.Fatal(err)
	}
	failed := false
	for _, f := range g.figures {
		want, ok := golden[[2]string{f.kase, f.figure}]
		switch {
		case !ok:
			t.Errorf("case %q, %s: %.6g, no golden value in %s", f.kase, f.figure, f.value, g.path)
		case !f.margin.allows(want, f.value):
			t.Errorf("case %q, %s: %.6g, golden %.6g, margin %v (moved %s)", f.kase, f.figure, f.value, want, f.margin, moved(want, f.value))
		default:
			continue
		}
		failed = true
	}
	if !partial {
		for key := range golden {
			if !g.seen[key] {
				t.Errorf("case %q, %s: in %s, not made by the run", key[0], key[1], g.path)
				failed = true
			}
		}
	}
	if failed {
		t.Logf("if the change is intended: go test ./fastpath/ -run '^%s$' -update", g.test)
	}
}

// write writes the table to its file.
func (g *goldenTable) write(t *testing.T) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "# Golden figures of %s (fastpath), checked within a margin per figure:\n", g.test)
	fmt.Fprintf(&b, "# goodput %v, counts %v. %s\n", goodputMargin, countMargin, g.note)
	fmt.Fprintf(&b, "# Rewrite: go test ./fastpath/ -run '^%s$' -update\n", g.test)
	b.WriteString("# case\tfigure\tvalue\n")
	for _, f := range g.figures {
		fmt.Fprintf(&b, "%s\t%s\t%s\n", f.kase, f.figure, strconv.FormatFloat(f.value, 'g', 6, 64))
	}
	if err := os.MkdirAll(filepath.Dir(g.path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(g.path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d figures to %s", len(g.figures), g.path)
}

// readGolden reads a golden file: lines of case, figure and value
// separated by tabs; blank lines and lines from # on are comments.
func readGolden(path string) (map[[2]string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	golden := map[[2]string]float64{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) != 3 {
			return nil, fmt.Errorf("%s:%d: want case, figure and value separated by tabs: %q", path, n, line)
		}
		v, err := strconv.ParseFloat(fields[2], 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		key := [2]string{fields[0], fields[1]}
		if _, dup := golden[key]; dup {
			return nil, fmt.Errorf("%s:%d: case %q, %s twice", path, n, key[0], key[1])
		}
		golden[key] = v
	}
	return golden, sc.Err()
}

// TestGoldenMarginAndFile checks the golden machinery itself: a margin is
// the larger of its relative and absolute parts, and readGolden reads what
// write writes and refuses a malformed or doubled line with its place.
func TestGoldenMarginAndFile(t *testing.T) {
	m := margin{rel: 0.10, abs: 3}
	for _, c := range []struct {
		golden, got float64
		ok          bool
	}{{100, 110, true}, {100, 110.5, false}, {100, 89, false}, {2, 5, true}, {2, 5.5, false}, {0, 3, true}} {
		if m.allows(c.golden, c.got) != c.ok {
			t.Errorf("%v allows(%g, %g) = %v", m, c.golden, c.got, !c.ok)
		}
	}

	dir := t.TempDir()
	g := &goldenTable{test: t.Name(), path: filepath.Join(dir, "g.golden"), note: "note", seen: map[[2]string]bool{}}
	g.add("case a", "goodput (Mbit/s)", 47.37471234, goodputMargin)
	g.add("case a", "retransmits", 318, countMargin)
	g.write(t)
	got, err := readGolden(g.path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[[2]string]float64{{"case a", "goodput (Mbit/s)"}: 47.3747, {"case a", "retransmits"}: 318}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("read back %v, want %v", got, want)
	}

	for body, msg := range map[string]string{
		"# c\na\tb\n":          "g.golden:2: want case, figure and value",
		"a\tb\tx\n":            "g.golden:1: strconv.ParseFloat",
		"a\tb\t1\n\na\tb\t2\n": `g.golden:3: case "a", b twice`,
	} {
		if err := os.WriteFile(g.path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readGolden(g.path); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("readGolden(%q): %v, want an error with %q", body, err, msg)
		}
	}
}
