package steer

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LinkHeldError means an interface's XDP program is attached through a
// bpf_link that another process holds (another xdpnet, say). Nobody but
// the holder can detach it, so Config.Replace cannot help, and neither
// can `ip link set dev IF xdp off`. It matches ErrForeignProgram with
// errors.Is.
type LinkHeldError struct {
	Interface string
	ProgID    uint32
	// Holders are the processes with a descriptor of the link, from
	// /proc; empty when /proc shows none (the link is pinned in bpffs, or
	// held from another PID namespace).
	Holders []Holder
}

// Holder is a process that holds a bpf_link.
type Holder struct {
	PID     int
	Command string // /proc/PID/comm
}

func (e *LinkHeldError) Error() string {
	by := "another process (none found in /proc: pinned in bpffs?)"
	if len(e.Holders) > 0 {
		var ps []string
		for _, h := range e.Holders {
			ps = append(ps, fmt.Sprintf("%d (%s)", h.PID, h.Command))
		}
		by = "process " + strings.Join(ps, ", ")
	}
	return fmt.Sprintf("%s runs XDP program id %d through a bpf_link that %s holds; only its holder can detach it, so stop that process (-replace cannot take over a bpf_link)",
		e.Interface, e.ProgID, by)
}

// Unwrap makes errors.Is(err, ErrForeignProgram) true.
func (e *LinkHeldError) Unwrap() error { return ErrForeignProgram }

// linkHolders returns the processes that hold an XDP bpf_link to program
// progID, found from the fdinfo of their bpf_link descriptors (the kernel's
// bpf_link_show_fdinfo prints link_type and prog_id). It reads only what
// this process may read and skips the rest; program IDs are global, so it
// finds holders in any network namespace of this PID namespace.
func linkHolders(progID uint32) []Holder {
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	var hs []Holder
	want := strconv.FormatUint(uint64(progID), 10)
	seen := map[int]bool{}
	for _, fd := range fds {
		if t, err := os.Readlink(fd); err != nil || t != "anon_inode:bpf_link" {
			continue
		}
		parts := strings.Split(fd, "/") // "", proc, PID, fd, N
		pid, _ := strconv.Atoi(parts[2])
		if seen[pid] || !xdpLinkTo(filepath.Join("/proc", parts[2], "fdinfo", parts[4]), want) {
			continue
		}
		seen[pid] = true
		comm, _ := os.ReadFile(filepath.Join("/proc", parts[2], "comm"))
		hs = append(hs, Holder{PID: pid, Command: strings.TrimSpace(string(comm))})
	}
	return hs
}

// xdpLinkTo reports whether the fdinfo file at path describes an XDP link
// to program progID.
func xdpLinkTo(path, progID string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	xdp, prog := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		switch v = strings.TrimSpace(v); k {
		case "link_type":
			xdp = v == "xdp"
		case "prog_id":
			prog = v == progID
		}
	}
	return xdp && prog
}
