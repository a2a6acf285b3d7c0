package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// meter shows what runs: on a terminal one line per cell, rewritten in
// place (\r) with the elapsed and expected time and the client's current
// rate; elsewhere (a pipe, a CI log) a plain line when a cell starts and
// one when it ends.
type meter struct {
	out io.Writer
	tty bool

	mu      sync.Mutex
	label   string
	start   time.Time
	expect  time.Duration
	unit    string
	lastOps int64
	lastAt  time.Time
	rate    string
}

// newMeter writes to f, in place when f is a terminal.
func newMeter(f *os.File) *meter {
	st, err := f.Stat()
	return &meter{out: f, tty: err == nil && st.Mode()&os.ModeCharDevice != 0}
}

// begin starts a cell's line and returns the progress callback the
// client's reports go to (nil for a workload that counts nothing).
func (m *meter) begin(label string, expect time.Duration, unit string) func(ops int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.label, m.start, m.expect, m.unit = label, time.Now(), expect, unit
	m.lastOps, m.lastAt, m.rate = 0, m.start, ""
	if !m.tty {
		fmt.Fprintf(m.out, "run  %s (%v)\n", label, expect)
	} else {
		m.draw()
	}
	if unit == "" {
		return nil
	}
	return m.progress
}

// progress takes a client's operations so far.
func (m *meter) progress(ops int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if dt := now.Sub(m.lastAt).Seconds(); dt > 0 {
		per := float64(ops-m.lastOps) / dt
		if m.unit == "bytes" {
			m.rate = fmt.Sprintf("%.2f Gbit/s", per*8/1e9)
		} else {
			m.rate = fmt.Sprintf("%s %s/s", figure(per), m.unit)
		}
	}
	m.lastOps, m.lastAt = ops, now
	if m.tty {
		m.draw()
	}
}

// draw rewrites the terminal's line.
func (m *meter) draw() {
	fmt.Fprintf(m.out, "\r\x1b[K%s  %.1fs/%.1fs  %s", m.label, time.Since(m.start).Seconds(), m.expect.Seconds(), m.rate)
}

// end closes the cell's line with its outcome: its first metric's value
// or its failure.
func (m *meter) end(metrics map[string]float64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	outcome := "done"
	if err != nil {
		outcome = "failed: " + oneLine(err.Error())
	} else if m.rate != "" {
		outcome = "done, last " + m.rate
	}
	took := time.Since(m.start).Round(100 * time.Millisecond)
	if m.tty {
		fmt.Fprintf(m.out, "\r\x1b[K%s  %v  %s\n", m.label, took, outcome)
	} else {
		fmt.Fprintf(m.out, "end  %s  %v  %s\n", m.label, took, strings.TrimSpace(outcome))
	}
}

// warn prints a warning line about the cell that just ended.
func (m *meter) warn(text string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintf(m.out, "warning: %s\n", text)
}
