package main

import (
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// machine is the header: what the figures were measured on.
type machine struct {
	Kernel    string `json:"kernel"` // uname -r
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	Link      string `json:"link"`       // the interface xdpnet ran on
	NICDriver string `json:"nic_driver"` // ethtool -i: driver and version
	XDPMode   string `json:"xdp_mode"`   // native or generic, as attached
	ZeroCopy  bool   `json:"zero_copy"`  // every queue's AF_XDP socket
	Queues    int    `json:"queues"`
	MTU       int    `json:"mtu"`
	// CongestionControl is the kernel's default
	// (net.ipv4.tcp_congestion_control in the lab's namespaces);
	// KernelSocketCC is what a kernel socket of the run ran, read back
	// with TCP_CONGESTION (none of the workloads sets it).
	CongestionControl string `json:"congestion_control"`
	KernelSocketCC    string `json:"kernel_socket_cc"`
	// Peer is a two-host run's peer (its bench -serve's host:port), ""
	// in the lab.
	Peer string    `json:"peer,omitempty"`
	Go   string    `json:"go"`
	Date time.Time `json:"date"`
}

// localMachine is what this machine is, before any system describes its
// part: kernel, CPUs, Go, date, the driver of l's Local link, and the
// peer of a two-host run.
func localMachine(l *lab.Lab, peer string) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Date: time.Now().UTC(), Link: l.Local.Link, Peer: peer}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var b strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b.WriteByte(byte(c))
		}
		m.Kernel = b.String()
	}
	if info, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(info), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := l.Local.Output("ethtool", "-i", l.Local.Link); err == nil {
		var driver, version string
		for _, line := range strings.Split(out, "\n") {
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "driver":
				driver = v
			case "version":
				version = v
			}
		}
		m.NICDriver = strings.TrimSpace(driver + " " + version)
	}
	return m
}

// trimLine is s's first line, trimmed.
func trimLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
