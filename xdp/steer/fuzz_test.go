package steer

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// fuzzAddrs are the stack's addresses in the fuzzed programs' map; the
// last address of fuzzAims is not among them.
var (
	fuzzAddrs = []netip.Addr{ourAddr, netip.MustParseAddr("198.18.1.7")}
	fuzzAims  = append(slices.Clone(fuzzAddrs), otherAddr)
)

// fuzzRuleSets are the programs every frame runs through: no rules, and
// rule sets covering each kind of rule (protocol and port range, protocol
// alone, ports of any protocol, a one-port range, the whole port range).
var fuzzRuleSets = [][]Rule{
	nil,
	{{Proto: ProtoTCP, PortLo: 80, PortHi: 90}, {Proto: ProtoUDP, PortLo: 5000, PortHi: 5000}, {Proto: ProtoICMP}},
	{{PortLo: 22, PortHi: 22}},
	{{Proto: 47}, {Proto: ProtoUDP, PortLo: 1, PortHi: 65535}, {Proto: ProtoTCP, PortLo: 0, PortHi: 0x7fff}},
}

// wantRedirect is the verdict the package doc promises for frame, worked
// out in Go from the rules, apart from the program: ARP for IPv4 over
// Ethernet targeting one of addrs, or IPv4 to one of addrs that matches a
// rule (when there are rules). Frames too short for what a rule needs to
// look at are not ours.
func wantRedirect(rules []Rule, addrs []netip.Addr, frame []byte) bool {
	isOurs := func(b []byte) bool { return slices.Contains(addrs, netip.AddrFrom4([4]byte(b))) }
	switch binary.BigEndian.Uint16(frame[12:]) {
	case etherTypeARP:
		a := frame[ethLen:]
		return len(a) >= arpIPv4Len && binary.BigEndian.Uint16(a[0:]) == 1 && binary.BigEndian.Uint16(a[2:]) == etherTypeIP &&
			a[4] == 6 && a[5] == 4 && isOurs(a[24:28])
	case etherTypeIP:
	default:
		return false
	}
	p := frame[ethLen:]
	if len(p) < ipMinLen || p[0]>>4 != 4 || p[0]&0x0f < 5 || !isOurs(p[16:20]) {
		return false
	}
	if len(rules) == 0 {
		return true
	}
	proto, ihl := p[9], int(p[0]&0x0f)*4
	nonFirst := binary.BigEndian.Uint16(p[6:])&0x1fff != 0
	hasPort := !nonFirst && (proto == ProtoTCP || proto == ProtoUDP) && len(p) >= ihl+4
	var port uint16
	if hasPort {
		port = binary.BigEndian.Uint16(p[ihl+2:])
	}
	for _, r := range rules {
		if r.Proto != ProtoAny && r.Proto != proto {
			continue
		}
		if !r.hasPorts() || nonFirst || (hasPort && r.PortLo <= port && port <= r.PortHi) {
			return true
		}
	}
	return false
}

// FuzzClassify runs random frames through the steering program with
// BPF_PROG_TEST_RUN, under each rule set, and compares the kernel's
// verdict with wantRedirect's: the program must never redirect a frame
// that is not the stack's (the host's own traffic would vanish), nor pass
// one that is. aim steers the fuzzer towards the interesting shapes: its
// low bits make the frame IPv4 or ARP, its next bits put one of
// fuzzAims where the program looks for an address, and the bits above
// make the IPv4 version and IHL, or the ARP hardware and protocol fields,
// valid. Frames too short for
// an Ethernet header cannot be test-run (the kernel answers EINVAL).
func FuzzClassify(f *testing.F) {
	lab.RequireRoot(f) // loading BPF programs needs CAP_BPF and CAP_NET_ADMIN
	var progs []*Program
	for _, rules := range fuzzRuleSets {
		p, err := load(rules, fuzzAddrs, 1)
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { p.Close() })
		progs = append(progs, p)
	}
	for _, p := range progs {
		if err := p.Register(0, xskFD(f)); err != nil {
			f.Fatal(err)
		}
	}
	other := fuzzAims[2]
	for _, seed := range [][]byte{
		arp(1, ourAddr, 6), arp(2, fuzzAddrs[1], 6), arp(1, other, 6), arp(1, ourAddr, 8),
		arp(1, ourAddr, 6)[:ethLen+arpIPv4Len-1],
		ipv4{}.frame(), ipv4{dst: other}.frame(), ipv4{dst: fuzzAddrs[1], proto: ProtoTCP, dport: 85}.frame(),
		ipv4{proto: ProtoTCP, dport: 80}.frame(), ipv4{proto: ProtoTCP, dport: 91}.frame(),
		ipv4{proto: ProtoUDP, dport: 5000}.frame(), ipv4{proto: ProtoUDP, dport: 22}.frame(),
		ipv4{proto: ProtoTCP, dport: 22}.frame(), ipv4{proto: ProtoICMP}.frame(), ipv4{proto: 47}.frame(),
		ipv4{proto: 132, dport: 80}.frame(),
		ipv4{proto: ProtoTCP, ihl: 15, dport: 85}.frame(), ipv4{proto: ProtoTCP, ihl: 6, dport: 443}.frame(),
		ipv4{ihl: 4}.frame(), ipv4{version: 6}.frame(), ipv4{noL4: true}.frame(),
		ipv4{proto: ProtoTCP, dport: 80, l4Length: 3}.frame(), ipv4{proto: ProtoTCP, dport: 80, l4Length: 4}.frame(),
		ipv4{proto: ProtoTCP, fragOff: 185, dport: 100}.frame(), ipv4{proto: ProtoUDP, mf: true, dport: 5000}.frame(),
		ipv4{proto: 47, fragOff: 185, mf: true}.frame(), ipv4{dst: other, proto: ProtoTCP, fragOff: 1}.frame(),
		ipv4{}.frame()[:ethLen+ipMinLen-1],
		ethernet(0x8100, ipv4{}.frame()[12:]), ethernet(0x86dd, make([]byte, 40)),
		make([]byte, ethLen), make([]byte, ethLen-1),
	} {
		f.Add(seed, uint8(0))
	}
	f.Add(make([]byte, 60), uint8(1|1<<2))           // zeros made IPv4 to ourAddr
	f.Add(make([]byte, 60), uint8(3|3<<2))           // zeros made ARP for another
	f.Add(make([]byte, 80), uint8(1|1<<2))           // zeros made IPv4 to ourAddr, IHL zero
	f.Add(make([]byte, 80), uint8(1|1<<2|0x10|3<<5)) // zeros made IPv4 to ourAddr, IHL 8
	f.Add(make([]byte, 60), uint8(3|2<<2|0x10))      // zeros made ARP for our second address
	f.Fuzz(func(t *testing.T, frame []byte, aim uint8) {
		frame = frame[:min(len(frame), 1600)] // a test run takes one page at most
		if len(frame) >= ethLen && aim&1 != 0 {
			typ := uint16(etherTypeIP)
			if aim&2 != 0 {
				typ = etherTypeARP
			}
			binary.BigEndian.PutUint16(frame[12:], typ)
		}
		if i := int(aim>>2) % 4; i > 0 && len(frame) >= ethLen+arpIPv4Len {
			a := fuzzAims[i-1].As4()
			if binary.BigEndian.Uint16(frame[12:]) == etherTypeARP {
				copy(frame[arpTPAOff:], a[:])
			} else {
				copy(frame[ipDstOff:], a[:])
			}
		}
		if aim&0x10 != 0 && len(frame) >= ethLen+arpIPv4Len {
			// The fixed fields right: IPv4 version 4 and an IHL of 5
			// to 12 words, or ARP for IPv4 over Ethernet.
			if binary.BigEndian.Uint16(frame[12:]) == etherTypeARP {
				copy(frame[arpHTypeOff:], []byte{0, 1, 8, 0, 6, 4})
			} else {
				frame[ipVerIHLOff] = 0x45 + aim>>5
			}
		}
		for i, p := range progs {
			got, err := p.prog.Run(&ebpf.RunOptions{Data: frame})
			if len(frame) < ethLen {
				if !errors.Is(err, syscall.EINVAL) {
					t.Fatalf("a %d-byte frame: test run error %v, want EINVAL", len(frame), err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("test run of a %d-byte frame: %v", len(frame), err)
			}
			want := uint32(xdpPass)
			if wantRedirect(fuzzRuleSets[i], fuzzAddrs, frame) {
				want = xdpRedirect
			}
			if got != want {
				t.Fatalf("rules %v: %s, want %s for % x", fuzzRuleSets[i], actionName(got), actionName(want), frame)
			}
		}
	})
}
