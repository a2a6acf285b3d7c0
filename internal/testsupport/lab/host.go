package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// runTimeout bounds Host.Run: lab commands (ethtool, ping -c 3) finish in
// seconds, and a hung one must fail its test rather than the whole binary.
const runTimeout = 30 * time.Second

// Do runs fn on an OS thread switched into h's namespace and returns fn's
// error. Sockets, netlink handles and XDP attachments that fn creates belong
// to that namespace for their whole life, whichever thread later uses them.
//
// fn runs on a goroutine of its own that Do waits for: fn must not call
// t.Fatal (return an error instead), and goroutines fn starts run in the
// caller's original namespace, not h's. A panic in fn is re-raised in the
// caller. If the thread cannot be switched back, it is discarded rather than
// returned to the scheduler in the wrong namespace.
//
// A Host whose NS is "" is this namespace (see Current): Do then calls fn
// on the caller's goroutine, with no switching.
func (h *Host) Do(fn func() error) error {
	if h.NS == "" {
		return fn()
	}
	type result struct {
		err   error
		panic any    // recovered from fn
		stack []byte // where fn panicked
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread unless we get back to the original namespace:
		// a goroutine that exits locked takes its thread down with it.
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("lab: get current namespace: %w", err)}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(h.NS)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("lab: open namespace %s: %w", h.NS, err)}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			done <- result{err: fmt.Errorf("lab: enter namespace %s: %w", h.NS, err)}
			return
		}
		var r result
		func() {
			defer func() {
				if r.panic = recover(); r.panic != nil {
					r.stack = debug.Stack()
				}
			}()
			r.err = fn()
		}()
		if err := netns.Set(orig); err != nil {
			r.err = errors.Join(r.err, fmt.Errorf("lab: leave namespace %s: %w", h.NS, err))
			done <- r
			return
		}
		runtime.UnlockOSThread()
		done <- r
	}()
	r := <-done
	if r.panic != nil {
		panic(fmt.Sprintf("lab: panic in Host.Do(%s): %v\n%s", h.NS, r.panic, r.stack))
	}
	return r.err
}

// Command returns a command that runs name with args inside h's namespace
// (`ip netns exec NS name args...`; name itself when NS is ""), killed
// when ctx is done.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	if h.NS != "" {
		cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	}
	// A test binary killed outright (a -timeout panic, SIGKILL) runs no
	// cleanup: without this its tcpdump or hping3 would run on, orphaned.
	// (`ip netns exec` execs the command, so the setting reaches it.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Run runs name with args inside h's namespace to completion, within a
// bounded time, and returns its combined output. Any failure fails the test
// with the output.
func (h *Host) Run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	out, err := h.Output(name, args...)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// Output is Run outside a test: it returns the combined output, and an
// error that carries it when the command fails.
func (h *Host) Output(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	cmd := h.Command(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("lab: %s in %s: %v\n%s", cmd, h.where(), err, out)
	}
	return string(out), nil
}

// where names h's namespace in errors.
func (h *Host) where() string {
	if h.NS == "" {
		return "this namespace"
	}
	return h.NS
}

// Current is the Host of link, an interface of this process's own
// namespace (NS ""), as a host of two-host benchmarks has it: its
// ifindex, MAC and first IPv4 address (zero if it has none).
func Current(link string) (*Host, error) {
	l, err := netlink.LinkByName(link)
	if err != nil {
		return nil, fmt.Errorf("lab: interface %s: %w", link, err)
	}
	h := &Host{Link: link, Ifindex: l.Attrs().Index, MAC: l.Attrs().HardwareAddr}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("lab: addresses of %s: %w", link, err)
	}
	if len(addrs) > 0 {
		a, _ := netip.AddrFromSlice(addrs[0].IP.To4())
		bits, _ := addrs[0].Mask.Size()
		h.Addr = netip.PrefixFrom(a, bits)
	}
	return h, nil
}

// SetLinkUp brings h's veth end up or takes it down, as `ip link set dev
// Link up|down` does, but through netlink on a thread already there, so
// a test's flap starts within microseconds of its decision.
func (h *Host) SetLinkUp(up bool) error {
	return h.Do(func() error {
		link, err := netlink.LinkByName(h.Link)
		if err != nil {
			return err
		}
		if up {
			return netlink.LinkSetUp(link)
		}
		return netlink.LinkSetDown(link)
	})
}

// DeleteLink deletes h's veth end, and with it the other end: for tests
// of an interface that goes away for good. The lab's teardown copes.
func (h *Host) DeleteLink() error {
	return h.Do(func() error {
		link, err := netlink.LinkByName(h.Link)
		if err != nil {
			return err
		}
		return netlink.LinkDel(link)
	})
}
