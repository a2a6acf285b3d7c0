package main

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/internal/product/services"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// Shared by the benchmarks of this package: the lab's two servers, and
// the CPU figures of threads and kernel threads (the AF_XDP sender and
// CPU pinning are in sender.go).

// TestMain makes this binary the benchmarks' client process when it is
// one (clientMain), or the command when a test runs it (commandMain),
// and fails the run if a benchmark leaves a lab namespace behind.
func TestMain(m *testing.M) {
	clientMain()
	commandMain()
	lab.CheckNoLeaks(m)
}

// stack is xdpnet on the lab's Local end: the steering program in native
// mode and one poller on queue 0, answering ARP and ping for StackAddr and
// serving UDP echo and discard, and TCP echo, discard and chargen, from
// its OnRound hook: the same services as `xdpnet serve`.
type stack struct {
	*fastpath.Poller
	dev *nic.XDPDevice
	svc services.EchoDiscard
	tcp services.TCPServices
}

// newStack opens Local's link for xdpnet; the poller does not run until
// run is called or its owner drives Poll. Everything is closed when b ends.
func newStack(b *testing.B, l *lab.Lab) *stack {
	s := &stack{}
	require.NoError(b, l.Local.Do(func() (err error) {
		s.dev, err = nic.OpenXDP(nic.XDPConfig{Interface: l.Local.Link, Addrs: []netip.Addr{l.StackAddr}, Attach: steer.Native})
		return err
	}))
	b.Cleanup(func() { s.dev.Close() })
	var err error
	s.Poller, err = fastpath.New(fastpath.Config{
		Link: s.dev.Links()[0],
		IP:   ip.Config{Addr: netip.PrefixFrom(l.StackAddr, l.Local.Addr.Bits())},
	})
	require.NoError(b, err)
	b.Cleanup(s.Close)
	s.OnRound(func(now time.Duration) {
		s.svc.Serve(now)
		s.tcp.Serve(now)
	})
	require.NoError(b, s.svc.Bind(s.UDP()))
	require.NoError(b, s.tcp.Listen(s.TCP()))
	return s
}

// run runs the poller as xdpnet runs it (fastpath.Poller.Run: spin while
// frames come, block after an idle spell) on a goroutine of its own, until
// b ends.
func (s *stack) run(b *testing.B) {
	stop := s.Start()
	// Registered after newStack's: runs before the poller is closed.
	b.Cleanup(func() {
		if err := stop(); err != nil {
			b.Errorf("poller: %v", err)
		}
	})
}

// kernelEcho runs a Go UDP echo server on the kernel's address on Local's
// link, on a goroutine of its own, until b ends.
func kernelEcho(b *testing.B, l *lab.Lab) {
	c, err := listenKernelUDP(l.Local, echoPort)
	require.NoError(b, err)
	b.Cleanup(serveUDP(c, udpEcho))
}

// compare runs the kernel's side, then xdpnet's, as sub-benchmarks of b on
// the same lab; xdpnet's line also reports each of the named metrics as a
// ratio to the kernel's last figure (metric "<name>-x-kernel"). Each side
// returns the metrics it reported.
func compare(b *testing.B, ratios []string, kernel, xdpnet func(b *testing.B) map[string]float64) {
	var k map[string]float64
	b.Run("kernel", func(b *testing.B) { k = kernel(b) })
	b.Run("xdpnet", func(b *testing.B) {
		x := xdpnet(b)
		for _, name := range ratios {
			if k[name] > 0 {
				b.ReportMetric(x[name]/k[name], name+"-x-kernel")
			}
		}
	})
}

// report reports every metric of m on b and returns m.
func report(b *testing.B, m map[string]float64) map[string]float64 {
	for unit, v := range m {
		b.ReportMetric(v, unit)
	}
	return m
}

// needCPUs skips a benchmark that pins on a machine with one CPU: its
// sender and receive side would share it and its figures would mean little.
func needCPUs(b *testing.B) {
	if runtime.NumCPU() <= receiveCPU {
		b.Skipf("needs CPUs %d and %d for the sender and the receive side, have %d CPU(s)", senderCPU, receiveCPU, runtime.NumCPU())
	}
}

// threadSched is thread tid of process pid's schedstat (for a kernel
// thread, tid = pid).
func threadSched(b *testing.B, pid, tid int) schedstat {
	st, err := readSchedstat(fmt.Sprintf("/proc/%d/task/%d/schedstat", pid, tid))
	if err != nil {
		b.Fatalf("thread CPU time: %v", err)
	}
	return st
}

// napiThread moves the receive processing of h's link from softirq into a
// kernel thread of its own. The link must have a NAPI instance (an XDP
// program attached, or GRO on), or the write fails with EIO.
func napiThread(b *testing.B, h *lab.Host) {
	// ip netns exec mounts the namespace's own /sys, where the link is.
	h.Run(b, "sh", "-c", "echo 1 > /sys/class/net/"+h.Link+"/threaded")
}

// threadedNAPI moves the receive processing of Local's veth from softirq
// into a kernel thread of its own (/sys/class/net/<link>/threaded), pins
// that thread to cpu and returns its pid. veth has a NAPI instance, and so
// a thread, only while an XDP program is attached (or GRO is on): call it
// after the steering program is attached.
func threadedNAPI(b *testing.B, l *lab.Lab, cpu int) int {
	napiThread(b, l.Local)
	procs, err := os.ReadDir("/proc")
	require.NoError(b, err)
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + p.Name() + "/comm")
		if err == nil && strings.HasPrefix(string(comm), "napi/"+l.Local.Link+"-") {
			pids = append(pids, pid)
		}
	}
	if len(pids) != 1 {
		b.Fatalf("want one NAPI thread napi/%s-<id>, found pids %v", l.Local.Link, pids)
	}
	require.NoError(b, pin(pids[0], cpu))
	return pids[0]
}
