package main

import (
	"os"
	"strconv"
	"strings"
)

// capability is one Linux capability xdpnet needs, and what for.
type capability struct {
	name string
	bit  uint   // its number in include/uapi/linux/capability.h
	alt  uint   // a capability that stands for it (CAP_SYS_ADMIN), or 0
	why  string // what needs it
}

const capSysAdmin = 21

// eperm are the capabilities whose absence makes opening an interface fail
// with EPERM, each checked by dropping it alone (README). The fourth one,
// CAP_IPC_LOCK, fails with ENOBUFS instead, and xdp's message says so.
var eperm = []capability{
	{"CAP_NET_RAW", 13, 0, "AF_XDP sockets"},
	{"CAP_BPF", 39, capSysAdmin, "BPF maps and programs"},
	{"CAP_NET_ADMIN", 12, capSysAdmin, "the XSKMAP and the XDP program"},
}

// missingCaps returns the capabilities of eperm that an effective set
// lacks, in the form /proc/PID/status prints it ("CapEff:\t000001ffffffffff").
func missingCaps(status string) []capability {
	var eff uint64
	for line := range strings.Lines(status) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			eff, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	has := func(bit uint) bool { return bit != 0 && eff&(1<<bit) != 0 }
	var miss []capability
	for _, c := range eperm {
		if !has(c.bit) && !has(c.alt) {
			miss = append(miss, c)
		}
	}
	return miss
}

// ownMissingCaps is missingCaps of this process; nil if /proc says nothing.
func ownMissingCaps() []capability {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	return missingCaps(string(b))
}
