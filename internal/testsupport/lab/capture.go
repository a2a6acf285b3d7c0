package lab

import (
	"bufio"
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// captureLimit bounds a capture's life, whatever the test does.
const captureLimit = 5 * time.Minute

// Tcpdump captures on h's link with tcpdump and args (a filter, "-w file",
// "-s 96", ...), numbers printed as they are (-n), and returns once
// tcpdump listens. Without -w the printed lines come on the channel,
// which must be read. It stops on stop, when the test ends or after 5
// minutes: by SIGTERM, so a pcap file is complete, and killed 5 s later
// if need be.
func (h *Host) Tcpdump(tb testing.TB, args ...string) (lines <-chan string, stop func()) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), captureLimit)
	// tcpdump itself, not a wrapper: `ip netns exec` execs it, so the
	// signal reaches it (a `timeout` in between left it running).
	cmd := h.Command(ctx, "tcpdump", append([]string{"-i", h.Link, "-n", "-l", "--immediate-mode"}, args...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("lab: tcpdump: %v", err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatalf("lab: tcpdump: %v", err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("lab: tcpdump: %v", err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); cmd.Wait() }) }
	tb.Cleanup(stop)
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				close(listening)
			}
		}
	}()
	out := make(chan string, 1024)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out <- sc.Text()
		}
	}()
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		tb.Fatalf("lab: tcpdump on %s in %s did not start listening", h.Link, h.NS)
	}
	return out, stop
}
