package lab

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Mode is the XDP attach mode a test will use on Lab.Local. It decides how
// New tunes the peer's offloads.
type Mode int

// XDP attach modes.
const (
	Native  Mode = iota // driver mode (veth's own XDP hook)
	Generic             // SKB mode (the kernel's generic hook, after skb allocation)
)

func (m Mode) String() string {
	switch m {
	case Native:
		return "native"
	case Generic:
		return "generic"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Config shapes a lab. The zero value is a single-queue veth pair with MTU
// 1500, tuned for native XDP.
type Config struct {
	// Mode decides the peer's offloads. New always runs
	// `ethtool -K <peer> tx off`: veth keeps transmit checksum offload on,
	// so frames the peer's kernel sends reach AF_XDP with unfinished
	// TCP/UDP checksums (CHECKSUM_PARTIAL never completed). In Generic mode
	// it also runs `tso off gso off`: the peer's GSO super-frames are larger
	// than a UMEM frame and the socket drops them. (Native XDP on veth turns
	// segmentation offload off on the peer by itself.)
	Mode Mode
	// Queues is the number of RX and TX queues on each veth end
	// (numrxqueues/numtxqueues); default 1.
	Queues int
	// MTU of both ends; default 1500.
	MTU int
}

// Lab is two network namespaces joined by a veth pair. See the package
// documentation for what each end is for.
type Lab struct {
	Local *Host // the end xdpnet binds to; its kernel has 198.18.0.1/24
	Peer  *Host // the Linux kernel peer, 198.18.0.3/24
	// StackAddr (198.18.0.2) is xdpnet's address on Local's link. It is in
	// the link's /24 but not configured on Local's kernel.
	StackAddr netip.Addr

	made []string // the namespaces Build created, for Close
}

// Host is one end of a lab: a namespace and the veth end inside it; or,
// with NS "", this process's namespace and an interface in it (Current).
type Host struct {
	NS      string           // network namespace name, as `ip netns` shows it; "" for this one
	Link    string           // the veth end's interface name inside NS
	Ifindex int              // the veth end's ifindex inside NS
	MAC     net.HardwareAddr // the veth end's hardware address
	Addr    netip.Prefix     // the kernel's address on Link (zero if none)
}

// Lab addresses, all in 198.18.0.0/15 (RFC 2544).
var (
	kernelAddr = netip.MustParsePrefix("198.18.0.1/24")
	stackAddr  = netip.MustParseAddr("198.18.0.2")
	peerAddr   = netip.MustParsePrefix("198.18.0.3/24")
)

// RequireRoot skips the test unless the process runs as root (euid 0),
// which namespaces, veth and XDP all need.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skipf("lab: needs root (euid 0, have %d) to create network namespaces and attach XDP", os.Geteuid())
	}
}

// ErrUnsupported is wrapped by Build's error when this machine cannot have
// a lab at all: not root, or a kernel without network namespaces or veth.
// New skips a test for it; any other error is a failure.
var ErrUnsupported = errors.New("lab: unsupported here")

// New builds a lab for tb and registers its teardown with tb.Cleanup. It
// skips the test when Build reports ErrUnsupported; any other failure is
// fatal.
func New(tb testing.TB, cfg Config) *Lab {
	tb.Helper()
	l, err := Build(cfg, tb.Logf)
	if errors.Is(err, ErrUnsupported) {
		tb.Skip(err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Error(err)
		}
	})
	return l
}

// Build builds a lab outside a test (New is the form for tests); the caller
// owns it and must Close it, on every path. logf reports stale namespaces
// it deleted (see the package documentation). On error nothing is left
// behind.
func Build(cfg Config, logf func(format string, args ...any)) (l *Lab, err error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: needs root (euid 0, have %d) to create network namespaces and attach XDP", ErrUnsupported, os.Geteuid())
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return nil, fmt.Errorf("%w: kernel lacks network namespaces: %v", ErrUnsupported, err)
	}
	if cfg.Queues == 0 {
		cfg.Queues = 1
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if cfg.Queues < 1 || cfg.Queues > 256 || cfg.MTU < 68 || (cfg.Mode != Native && cfg.Mode != Generic) {
		return nil, fmt.Errorf("lab: bad config %+v (want 1..256 queues, MTU >= 68, Native or Generic)", cfg)
	}
	if _, err := exec.LookPath("ethtool"); err != nil {
		return nil, fmt.Errorf("lab: install ethtool (apt-get install ethtool): the lab needs it to set veth offloads: %v", err)
	}
	reapStale(logf)

	id, err := randomID()
	if err != nil {
		return nil, fmt.Errorf("lab: %v", err)
	}
	base := fmt.Sprintf("%s%d-%s", namePrefix, os.Getpid(), id)
	l = &Lab{
		Local:     &Host{NS: base + "-l", Link: "xl" + id, Addr: kernelAddr},
		Peer:      &Host{NS: base + "-p", Link: "xp" + id, Addr: peerAddr},
		StackAddr: stackAddr,
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.Close())
			l = nil
		}
	}()
	handles := map[*Host]*netlink.Handle{}
	defer func() {
		for _, nh := range handles {
			nh.Close()
		}
	}()
	for _, h := range []*Host{l.Local, l.Peer} {
		if err := createNamespace(h.NS); err != nil {
			return l, fmt.Errorf("lab: create namespace %s: %v", h.NS, err)
		}
		l.made = append(l.made, h.NS)
		ns, err := netns.GetFromName(h.NS)
		if err != nil {
			return l, fmt.Errorf("lab: open namespace %s: %v", h.NS, err)
		}
		nh, err := netlink.NewHandleAt(ns)
		ns.Close()
		if err != nil {
			return l, fmt.Errorf("lab: netlink handle in %s: %v", h.NS, err)
		}
		handles[h] = nh
	}

	if err := addVeth(handles[l.Local], l.Peer.NS, l.Local.Link, l.Peer.Link, cfg); err != nil {
		if errors.Is(err, syscall.EOPNOTSUPP) {
			return l, fmt.Errorf("%w: kernel lacks veth: %v", ErrUnsupported, err)
		}
		return l, fmt.Errorf("lab: %v", err)
	}
	for _, h := range []*Host{l.Local, l.Peer} {
		if err := h.configure(handles[h]); err != nil {
			return l, fmt.Errorf("lab: %s: %v", h.NS, err)
		}
	}
	off := []string{"-K", l.Peer.Link, "tx", "off"}
	if cfg.Mode == Generic {
		off = append(off, "tso", "off", "gso", "off")
	}
	if _, err := l.Peer.Output("ethtool", off...); err != nil {
		return l, err
	}
	return l, nil
}

// Close deletes the lab's namespaces, and with them its veth pair. It is
// safe to call again; a second call does nothing.
func (l *Lab) Close() error {
	var err error
	for _, ns := range l.made {
		if derr := deleteNamespace(ns); derr != nil {
			err = errors.Join(err, fmt.Errorf("lab: delete namespace %s: %w", ns, derr))
		}
	}
	l.made = nil
	return err
}

// addVeth creates the veth pair name/peerName through local, a netlink
// handle in the local end's namespace, with the peer end placed straight
// into namespace peerNS (IFLA_NET_NS_FD on the peer), so neither end ever
// exists in the caller's namespace.
func addVeth(local *netlink.Handle, peerNS, name, peerName string, cfg Config) error {
	pns, err := netns.GetFromName(peerNS)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", peerNS, err)
	}
	defer pns.Close()
	attrs := netlink.NewLinkAttrs() // TxQLen -1: keep veth's default queueing
	attrs.Name = name
	attrs.MTU = cfg.MTU
	attrs.NumTxQueues = cfg.Queues
	attrs.NumRxQueues = cfg.Queues
	veth := &netlink.Veth{
		LinkAttrs:     attrs,
		PeerName:      peerName,
		PeerNamespace: netlink.NsFd(pns),
		PeerTxQLen:    -1,
	}
	if err := local.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s/%s: %w", name, peerName, err)
	}
	return nil
}

// configure disables IPv6 on h's link, gives it h.Addr, and brings it and
// loopback up, through nh, a netlink handle in h's namespace.
func (h *Host) configure(nh *netlink.Handle) error {
	err := h.Do(func() error {
		// /proc/sys/net resolves against the opening thread's namespace.
		err := os.WriteFile("/proc/sys/net/ipv6/conf/"+h.Link+"/disable_ipv6", []byte("1"), 0)
		if errors.Is(err, os.ErrNotExist) {
			return nil // kernel without IPv6: nothing to silence
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("disable IPv6 on %s: %w", h.Link, err)
	}
	link, err := nh.LinkByName(h.Link)
	if err != nil {
		return fmt.Errorf("find %s: %w", h.Link, err)
	}
	h.Ifindex = link.Attrs().Index
	h.MAC = link.Attrs().HardwareAddr
	addr := &netlink.Addr{IPNet: &net.IPNet{
		IP:   h.Addr.Addr().AsSlice(),
		Mask: net.CIDRMask(h.Addr.Bits(), h.Addr.Addr().BitLen()),
	}}
	if err := nh.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("add %s to %s: %w", h.Addr, h.Link, err)
	}
	if err := nh.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", h.Link, err)
	}
	lo, err := nh.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := nh.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// randomID returns 12 random hex digits: "xl"+id fits IFNAMSIZ (15 chars).
func randomID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random name: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Modes are the XDP modes lab tests run in: veth supports both, and they
// differ in where frames meet the program (the driver, or an skb). A
// mode's String is its name for steer.ParseMode.
var Modes = []Mode{Native, Generic}
