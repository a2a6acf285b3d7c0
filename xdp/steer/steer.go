package steer

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Mode is how the program hooks into an interface.
type Mode int

// Attach modes.
const (
	Auto    Mode = iota // Native if the driver accepts it, else Generic
	Native              // the driver's own XDP hook, before any skb exists
	Generic             // the kernel's generic hook (SKB mode), any driver
)

func (m Mode) String() string {
	switch m {
	case Auto:
		return "auto"
	case Native:
		return "native"
	case Generic:
		return "generic"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode returns the mode named s: "auto", "native" (or "drv",
// "driver") or "generic" (or "skb"), as ip-link(8) also names them.
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(s) {
	case "auto":
		return Auto, nil
	case "native", "drv", "driver":
		return Native, nil
	case "generic", "skb":
		return Generic, nil
	}
	return 0, fmt.Errorf("XDP mode %q: want auto, native or generic", s)
}

// IP protocol numbers (IANA) for Rule.Proto.
const (
	ProtoAny  = 0
	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17
)

// Limits of a Config.
const (
	MaxAddrs = 256 // addresses the program can hold at once
	MaxRules = 16  // rules compiled into one program
)

// Rule narrows which IPv4 packets to the stack's addresses are steered.
// With no rules every such packet is; with rules, a packet is when any rule
// matches. ARP for the stack's addresses is steered regardless of rules.
type Rule struct {
	Proto uint8 // IP protocol (ProtoTCP, ProtoUDP, ProtoICMP, ...); ProtoAny matches any
	// PortLo..PortHi is an inclusive destination port range; both zero
	// means any port. A rule with ports matches only TCP and UDP (Proto
	// must be ProtoAny, ProtoTCP or ProtoUDP). Non-first fragments, which
	// carry no ports, match on protocol alone.
	PortLo, PortHi uint16
}

func (r Rule) hasPorts() bool { return r.PortLo != 0 || r.PortHi != 0 }

// Config says where to attach and what to steer.
type Config struct {
	Ifindex int          // interface, in the calling thread's network namespace
	Addrs   []netip.Addr // the stack's IPv4 addresses; more can be added later
	Rules   []Rule       // optional, at most MaxRules
	Mode    Mode
	// Replace detaches an XDP program that someone attached through
	// netlink (ip link set ... xdp) before attaching. A program held by a
	// bpf_link cannot be detached by anyone but its owner, Replace or not:
	// Attach returns a LinkHeldError for it.
	Replace bool
}

// ErrForeignProgram means the interface already runs an XDP program that
// is not ours. Attach never replaces one silently.
var ErrForeignProgram = errors.New("another XDP program is attached")

var errClosed = errors.New("steering program is closed")

// Program is the steering program, loaded and attached to one interface.
// Its methods are safe for concurrent use, except Close.
//
// The attachment is a bpf_link owned by this process: it is detached when
// Close runs or when the process exits for any reason, SIGKILL included,
// because the kernel detaches a bpf_link when its last file descriptor
// closes. A Program the garbage collector frees is detached too.
type Program struct {
	mode   Mode
	queues int
	objs   *ebpf.Collection
	prog   *ebpf.Program
	xsks   *ebpf.Map
	addrs  *ebpf.Map
	stats  *ebpf.Map
	link   link.Link
}

// Stats counts the program's decisions, summed over CPUs.
type Stats struct {
	// Redirected frames were ours and went to their queue's socket. The
	// redirect itself can still drop a frame (the socket's RX ring or fill
	// ring is empty or full): the socket's XDP_STATISTICS counts those.
	Redirected uint64
	NoSocket   uint64 // ours, but their queue had no socket: passed to the kernel
	Passed     uint64 // not ours: passed to the kernel
}

// Attach loads the steering program with cfg's addresses and rules and
// attaches it to cfg.Ifindex. The interface is looked up in the calling
// thread's network namespace.
func Attach(cfg Config) (*Program, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("steer: %w", err)
	}
	nlink, err := netlink.LinkByIndex(cfg.Ifindex)
	if err != nil {
		return nil, fmt.Errorf("steer: find ifindex %d: %w", cfg.Ifindex, err)
	}
	name := nlink.Attrs().Name
	x := nlink.Attrs().Xdp
	if x != nil && x.Attached {
		if hs := linkHolders(x.ProgId); len(hs) > 0 {
			return nil, fmt.Errorf("steer: %w", &LinkHeldError{Interface: name, ProgID: x.ProgId, Holders: hs})
		}
		if !cfg.Replace {
			return nil, fmt.Errorf("steer: %s runs XDP program id %d: %w", name, x.ProgId, ErrForeignProgram)
		}
	}
	// Load before detaching anything, so that a program that fails to
	// load leaves the interface as it was.
	p, err := load(cfg.Rules, cfg.Addrs, max(nlink.Attrs().NumRxQueues, 1))
	if errors.Is(err, syscall.EPERM) {
		// The kernel asks CAP_BPF of any map or program, and CAP_NET_ADMIN
		// of an XSKMAP and an XDP program (CAP_SYS_ADMIN stands for both).
		// cilium/ebpf's error blames RLIMIT_MEMLOCK, which only kernels
		// before 5.11 charge BPF memory to, so it is left out.
		return nil, fmt.Errorf("steer: load for %s: creating BPF maps and the XDP program needs CAP_BPF and CAP_NET_ADMIN: %w", name, syscall.EPERM)
	}
	if err != nil {
		return nil, fmt.Errorf("steer: load for %s: %w", name, err)
	}
	if x != nil && x.Attached {
		if err := detachNetlink(nlink, x); err != nil {
			p.Close()
			return nil, err
		}
	}
	if err := p.attach(cfg.Ifindex, cfg.Mode); err != nil {
		p.Close()
		return nil, fmt.Errorf("steer: attach to %s: %w", name, err)
	}
	return p, nil
}

func (c *Config) check() error {
	if c.Ifindex <= 0 {
		return fmt.Errorf("ifindex %d: must be positive", c.Ifindex)
	}
	if c.Mode < Auto || c.Mode > Generic {
		return fmt.Errorf("unknown mode %v", c.Mode)
	}
	if len(c.Addrs) > MaxAddrs {
		return fmt.Errorf("%d addresses: at most %d", len(c.Addrs), MaxAddrs)
	}
	for _, a := range c.Addrs {
		if _, err := addrKey(a); err != nil {
			return err
		}
	}
	if len(c.Rules) > MaxRules {
		return fmt.Errorf("%d rules: at most %d", len(c.Rules), MaxRules)
	}
	for i, r := range c.Rules {
		if r.PortLo > r.PortHi {
			return fmt.Errorf("rule %d: port range %d-%d is empty", i, r.PortLo, r.PortHi)
		}
		if r.hasPorts() && r.Proto != ProtoAny && r.Proto != ProtoTCP && r.Proto != ProtoUDP {
			return fmt.Errorf("rule %d: protocol %d has no ports (ports need TCP or UDP)", i, r.Proto)
		}
	}
	return nil
}

// detachNetlink removes a program attached through netlink, in the mode it
// is attached in. The kernel refuses (EBUSY) when a bpf_link holds the hook
// (dev_xdp_attach: "Can't replace active BPF XDP link").
func detachNetlink(nlink netlink.Link, x *netlink.LinkXdp) error {
	name := nlink.Attrs().Name
	var flags []int
	switch x.AttachMode {
	case nl.XDP_ATTACHED_DRV:
		flags = []int{unix.XDP_FLAGS_DRV_MODE}
	case nl.XDP_ATTACHED_SKB:
		flags = []int{unix.XDP_FLAGS_SKB_MODE}
	case nl.XDP_ATTACHED_HW:
		flags = []int{unix.XDP_FLAGS_HW_MODE}
	default: // XDP_ATTACHED_MULTI: clear every mode
		flags = []int{unix.XDP_FLAGS_DRV_MODE, unix.XDP_FLAGS_SKB_MODE, unix.XDP_FLAGS_HW_MODE}
	}
	for _, f := range flags {
		err := netlink.LinkSetXdpFdWithFlags(nlink, -1, f)
		if errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("steer: %w", &LinkHeldError{Interface: name, ProgID: x.ProgId})
		}
		if err != nil && len(flags) == 1 {
			return fmt.Errorf("steer: detach XDP program id %d from %s: %w", x.ProgId, name, err)
		}
	}
	return nil
}

// load creates the maps and the program without attaching it.
func load(rules []Rule, addrs []netip.Addr, queues int) (*Program, error) {
	contents := make([]ebpf.MapKV, 0, len(addrs))
	for _, a := range addrs {
		k, err := addrKey(a)
		if err != nil {
			return nil, err
		}
		contents = append(contents, ebpf.MapKV{Key: k, Value: uint8(1)})
	}
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			xsksMap:  {Name: xsksMap, Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(queues)},
			addrsMap: {Name: addrsMap, Type: ebpf.Hash, KeySize: 4, ValueSize: 1, MaxEntries: MaxAddrs, Contents: contents},
			statsMap: {Name: statsMap, Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: statCount},
		},
		Programs: map[string]*ebpf.ProgramSpec{
			progName: {
				Name:         progName,
				Type:         ebpf.XDP,
				License:      "Dual MIT/GPL",
				Instructions: instructions(rules),
			},
		},
	}
	objs, err := ebpf.NewCollection(spec)
	var verr *ebpf.VerifierError
	if errors.As(err, &verr) {
		return nil, fmt.Errorf("%w\nverifier log:\n%+v", err, verr)
	}
	if err != nil {
		return nil, err
	}
	return &Program{
		queues: queues,
		objs:   objs,
		prog:   objs.Programs[progName],
		xsks:   objs.Maps[xsksMap],
		addrs:  objs.Maps[addrsMap],
		stats:  objs.Maps[statsMap],
	}, nil
}

// attach links the loaded program to ifindex. Auto tries native first:
// veth and most NIC drivers accept it, and it runs before skb allocation.
func (p *Program) attach(ifindex int, mode Mode) error {
	try := func(m Mode) error {
		flags := link.XDPDriverMode
		if m == Generic {
			flags = link.XDPGenericMode
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: p.prog, Interface: ifindex, Flags: flags})
		if err != nil {
			// EBUSY/EEXIST: a program appeared since Attach looked, or
			// one is attached in the other mode.
			if errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EEXIST) {
				return fmt.Errorf("%v mode: %w: %w", m, ErrForeignProgram, err)
			}
			// veth_xdp_set (drivers/net/veth.c) refuses a program
			// without multi-buffer support when the peer's MTU does
			// not fit one page.
			if m == Native && errors.Is(err, syscall.ERANGE) {
				return fmt.Errorf("%v mode (MTU too large for a single-buffer XDP program): %w", m, err)
			}
			return fmt.Errorf("%v mode: %w", m, err)
		}
		p.link, p.mode = l, m
		return nil
	}
	if mode != Auto {
		return try(mode)
	}
	nerr := try(Native)
	if nerr == nil || errors.Is(nerr, ErrForeignProgram) {
		return nerr
	}
	if gerr := try(Generic); gerr != nil {
		return errors.Join(nerr, gerr)
	}
	return nil
}

// Mode is the attach mode in force (never Auto).
func (p *Program) Mode() Mode { return p.mode }

// Register puts the AF_XDP socket xskFD in the slot of the queue it is
// bound to; frames of the stack arriving on that queue go to it from now
// on. The kernel takes its own reference: closing xskFD later removes the
// socket from the map (xsk_release deletes its map entries).
func (p *Program) Register(queue, xskFD int) error {
	if p.objs == nil {
		return fmt.Errorf("steer: register queue %d: %w", queue, errClosed)
	}
	if queue < 0 || queue >= p.queues {
		return fmt.Errorf("steer: register queue %d: the interface has queues 0..%d", queue, p.queues-1)
	}
	if err := p.xsks.Put(uint32(queue), uint32(xskFD)); err != nil {
		return fmt.Errorf("steer: register socket fd %d on queue %d: %w", xskFD, queue, err)
	}
	return nil
}

// Unregister empties the slot of queue: its frames of the stack are passed
// to the kernel until a socket is registered again. An empty slot is not an
// error.
func (p *Program) Unregister(queue int) error {
	if p.objs == nil {
		return fmt.Errorf("steer: unregister queue %d: %w", queue, errClosed)
	}
	if err := p.xsks.Delete(uint32(queue)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("steer: unregister queue %d: %w", queue, err)
	}
	return nil
}

// AddAddr makes a an address of the stack: IPv4 packets to it and ARP for
// it are steered from now on. Adding an address twice is not an error.
func (p *Program) AddAddr(a netip.Addr) error {
	if p.objs == nil {
		return fmt.Errorf("steer: add %s: %w", a, errClosed)
	}
	k, err := addrKey(a)
	if err != nil {
		return fmt.Errorf("steer: %w", err)
	}
	if err := p.addrs.Put(k, uint8(1)); err != nil {
		return fmt.Errorf("steer: add %s: %w", a, err)
	}
	return nil
}

// RemoveAddr stops steering traffic for a. Removing an address that is not
// there is not an error.
func (p *Program) RemoveAddr(a netip.Addr) error {
	if p.objs == nil {
		return fmt.Errorf("steer: remove %s: %w", a, errClosed)
	}
	k, err := addrKey(a)
	if err != nil {
		return fmt.Errorf("steer: %w", err)
	}
	if err := p.addrs.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("steer: remove %s: %w", a, err)
	}
	return nil
}

// Stats reads the program's counters.
func (p *Program) Stats() (Stats, error) {
	if p.objs == nil {
		return Stats{}, fmt.Errorf("steer: stats: %w", errClosed)
	}
	var s Stats
	for slot, dst := range map[uint32]*uint64{
		statRedirected: &s.Redirected,
		statNoSocket:   &s.NoSocket,
		statPassed:     &s.Passed,
	} {
		var perCPU []uint64
		if err := p.stats.Lookup(slot, &perCPU); err != nil {
			return Stats{}, fmt.Errorf("steer: read counter %d: %w", slot, err)
		}
		for _, v := range perCPU {
			*dst += v
		}
	}
	return s, nil
}

// Close detaches the program and frees it and its maps. It is idempotent.
func (p *Program) Close() error {
	var err error
	if p.link != nil {
		if lerr := p.link.Close(); lerr != nil {
			err = fmt.Errorf("steer: detach: %w", lerr)
		}
		p.link = nil
	}
	if p.objs != nil {
		p.objs.Close()
		p.objs = nil
	}
	return err
}

// addrKey is a's key in addrsMap: the four address bytes in network order,
// as they appear in the packet.
func addrKey(a netip.Addr) ([4]byte, error) {
	a = a.Unmap()
	if !a.Is4() {
		return [4]byte{}, fmt.Errorf("%v is not an IPv4 address", a)
	}
	return a.As4(), nil
}
