package lab

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// RandomDrop has h's kernel drop each packet of chain ("INPUT" or
// "OUTPUT") that matches (iptables match arguments, "-p", "tcp") with
// probability p, by iptables' statistic match: random loss without netem.
// The rule is removed when tb ends (the namespace's end would remove it
// too, but a sub-benchmark's loss must not outlive it).
func (h *Host) RandomDrop(tb testing.TB, chain string, p float64, match ...string) {
	tb.Helper()
	rule := append(append([]string{chain}, match...),
		"-m", "statistic", "--mode", "random", "--probability", strconv.FormatFloat(p, 'f', -1, 64), "-j", "DROP")
	h.Run(tb, "iptables", append([]string{"-A"}, rule...)...)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
		defer cancel()
		if out, err := h.Command(ctx, "iptables", append([]string{"-D"}, rule...)...).CombinedOutput(); err != nil {
			tb.Errorf("lab: remove the drop rule %v in %s: %v\n%s", rule, h.NS, err, out)
		}
	})
}

// Dropped is how many packets the DROP rules of chain in h's kernel have
// dropped so far (iptables' counters).
func (h *Host) Dropped(tb testing.TB, chain string) uint64 {
	tb.Helper()
	var n uint64
	// "pkts bytes target prot opt in out source destination [match]".
	for _, line := range strings.Split(h.Run(tb, "iptables", "-L", chain, "-n", "-v", "-x"), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != "DROP" {
			continue
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			tb.Fatalf("lab: iptables counters of %s: %q", chain, line)
		}
		n += v
	}
	return n
}

// SetCongestionControl sets the congestion control of c, a kernel TCP
// socket, to name ("cubic", "bbr", "reno") with TCP_CONGESTION, and reads
// it back. Root may choose any algorithm the kernel has; the namespace's
// default (net.ipv4.tcp_congestion_control) cannot be changed here.
func SetCongestionControl(c syscall.Conn, name string) error {
	got, err := congestionControl(c, name)
	if err == nil && got != name {
		err = fmt.Errorf("asked for %s, the socket runs %s", name, got)
	}
	if err != nil {
		return fmt.Errorf("lab: TCP_CONGESTION %s: %w", name, err)
	}
	return nil
}

// CongestionControl is the congestion control c, a kernel TCP socket,
// runs.
func CongestionControl(c syscall.Conn) (string, error) {
	name, err := congestionControl(c, "")
	if err != nil {
		return "", fmt.Errorf("lab: TCP_CONGESTION: %w", err)
	}
	return name, nil
}

// congestionControl sets c's congestion control to name, unless name is
// empty, and returns the one it runs.
func congestionControl(c syscall.Conn, name string) (got string, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return "", err
	}
	cerr := rc.Control(func(fd uintptr) {
		if name != "" {
			if err = unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION, name); err != nil {
				return
			}
		}
		got, err = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	})
	if cerr != nil {
		return "", cerr
	}
	return got, err
}
