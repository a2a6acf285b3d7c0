package steer

import (
	"encoding/binary"
	"strconv"

	"github.com/cilium/ebpf/asm"
)

// Object names, as the program references them and bpftool shows them
// (the kernel keeps 15 characters).
const (
	progName = "xdpnet_steer"

	xsksMap  = "xdpnet_xsks"  // XSKMAP: rx queue index -> AF_XDP socket
	addrsMap = "xdpnet_addrs" // hash: IPv4 address (network order) -> 1
	statsMap = "xdpnet_stats" // per-CPU array of counters, indexed by stat*
)

// Counter slots in statsMap.
const (
	statRedirected = iota // ours, and bpf_redirect_map found a socket
	statNoSocket          // ours, but the frame's queue has no socket: passed
	statPassed            // not ours: passed
	statCount
)

// XDP actions (enum xdp_action in include/uapi/linux/bpf.h).
const (
	xdpPass     = 2
	xdpRedirect = 4
)

// Offsets into struct xdp_md (include/uapi/linux/bpf.h).
const (
	mdData         = 0
	mdDataEnd      = 4
	mdRxQueueIndex = 16
)

// Frame layout: Ethernet II (14 bytes), then IPv4 (RFC 791) or ARP for
// IPv4 over Ethernet (RFC 826).
const (
	ethLen       = 14
	ethTypeOff   = 12
	ipVerIHLOff  = ethLen + 0
	ipFragOff    = ethLen + 6 // flags (3 bits) and fragment offset (13 bits)
	ipProtoOff   = ethLen + 9
	ipDstOff     = ethLen + 16
	ipMinLen     = 20
	arpHTypeOff  = ethLen + 0 // hardware type, then protocol type: one 32-bit word
	arpHLenOff   = ethLen + 4 // hardware and protocol address lengths
	arpTPAOff    = ethLen + 24
	arpIPv4Len   = 28
	etherTypeIP  = 0x0800
	etherTypeARP = 0x0806
)

// Port register values that no 16-bit port can take: the packet has no
// port to match (not TCP or UDP, or cut short), or it is a non-first
// fragment, which carries no transport header at all (RFC 791).
const (
	noPort   = 0x10000
	fragPort = 0x20000
)

// Registers kept across helper calls (R6-R9 are callee-saved).
const (
	rCtx     = asm.R6
	rData    = asm.R7
	rDataEnd = asm.R8
	rSaved   = asm.R9 // the IHL before the address lookup, the action after redirect
)

// Stack slots (R10 is the read-only frame pointer).
const (
	keySlot  = -4 // address key for addrsMap
	statSlot = -8 // counter index for statsMap
)

// builder appends instructions and labels the next one emitted.
type builder struct {
	insns asm.Instructions
	label string
}

// mark makes label refer to the next instruction emitted.
func (b *builder) mark(label string) { b.label = label }

func (b *builder) emit(insns ...asm.Instruction) {
	for _, ins := range insns {
		if b.label != "" {
			ins = ins.WithSymbol(b.label)
			b.label = ""
		}
		b.insns = append(b.insns, ins)
	}
}

// needBytes jumps to fail unless the frame has at least n bytes. The
// verifier learns from this comparison which packet bytes are safe to read
// and rejects any read it cannot prove in bounds, so no frame, however
// short, is read past its end.
func (b *builder) needBytes(n int32, fail string) {
	b.emit(
		asm.Mov.Reg(asm.R1, rData),
		asm.Add.Imm(asm.R1, n),
		asm.JGT.Reg(asm.R1, rDataEnd, fail),
	)
}

// lookupAddr jumps to "pass" unless the IPv4 address in R2 (network byte
// order) is in addrsMap. It clobbers R0-R5.
func (b *builder) lookupAddr() {
	b.emit(
		asm.StoreMem(asm.R10, keySlot, asm.R2, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference(addrsMap),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, keySlot),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
	)
}

// instructions assembles the steering program. Rules are compiled in as
// constants: they are fixed for a program's life, and constants keep the
// verifier's job and the per-packet cost trivial.
func instructions(rules []Rule) asm.Instructions {
	var b builder
	b.emit(
		asm.Mov.Reg(rCtx, asm.R1),
		asm.LoadMem(rData, rCtx, mdData, asm.Word),
		asm.LoadMem(rDataEnd, rCtx, mdDataEnd, asm.Word),
	)
	b.needBytes(ethLen, "pass")
	b.emit(
		asm.LoadMem(asm.R2, rData, ethTypeOff, asm.Half),
		asm.JEq.Imm(asm.R2, be16(etherTypeIP), "ipv4"),
		asm.JEq.Imm(asm.R2, be16(etherTypeARP), "arp"),
		asm.Ja.Label("pass"),
	)

	// ARP: ours if it asks for or answers to one of our addresses (the
	// target protocol address, TPA). Only Ethernet/IPv4 ARP (htype 1, ptype
	// 0x0800, hlen 6, plen 4; RFC 826) has the TPA where we look.
	b.mark("arp")
	b.needBytes(ethLen+arpIPv4Len, "pass")
	b.emit(
		asm.LoadMem(asm.R2, rData, arpHTypeOff, asm.Word),
		asm.JNE.Imm32(asm.R2, be32(1<<16|etherTypeIP), "pass"),
		asm.LoadMem(asm.R2, rData, arpHLenOff, asm.Half),
		asm.JNE.Imm(asm.R2, be16(6<<8|4), "pass"),
		asm.LoadMem(asm.R2, rData, arpTPAOff, asm.Word),
	)
	b.lookupAddr()
	b.emit(asm.Ja.Label("redirect"))

	// IPv4: ours if the destination is one of our addresses and, when there
	// are rules, one of them matches.
	b.mark("ipv4")
	b.needBytes(ethLen+ipMinLen, "pass")
	b.emit(
		asm.LoadMem(asm.R2, rData, ipVerIHLOff, asm.Byte),
		asm.Mov.Reg(asm.R3, asm.R2),
		asm.RSh.Imm(asm.R3, 4),
		asm.JNE.Imm(asm.R3, 4, "pass"), // version 4
		asm.And.Imm(asm.R2, 0x0f),
		asm.JLT.Imm(asm.R2, 5, "pass"), // an IHL under 5 words is malformed (RFC 791)
		asm.Mov.Reg(rSaved, asm.R2),
		asm.LoadMem(asm.R2, rData, ipDstOff, asm.Word),
	)
	b.lookupAddr()
	if len(rules) > 0 {
		b.matchRules(rules)
	}

	// Ours: redirect to the socket of the frame's queue, or pass when that
	// queue has none (bpf_redirect_map returns its flags argument's low bits
	// as the action when the lookup fails).
	b.mark("redirect")
	b.emit(
		asm.LoadMem(asm.R2, rCtx, mdRxQueueIndex, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference(xsksMap),
		asm.Mov.Imm(asm.R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.Mov.Reg(rSaved, asm.R0),
		asm.StoreImm(asm.R10, statSlot, statRedirected, asm.Word),
		asm.JEq.Imm(asm.R0, xdpRedirect, "count"),
		asm.StoreImm(asm.R10, statSlot, statNoSocket, asm.Word),
		asm.Ja.Label("count"),
	)
	b.mark("pass")
	b.emit(
		asm.Mov.Imm(rSaved, xdpPass),
		asm.StoreImm(asm.R10, statSlot, statPassed, asm.Word),
	)
	// count: stats[*statSlot]++ on this CPU (a per-CPU slot has one writer
	// at a time: XDP runs with preemption off), then return rSaved.
	b.mark("count")
	b.emit(
		asm.LoadMapPtr(asm.R1, 0).WithReference(statsMap),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, statSlot),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
	)
	b.mark("exit")
	b.emit(
		asm.Mov.Reg(asm.R0, rSaved),
		asm.Return(),
	)
	return b.insns
}

// matchRules falls through when a rule matches the IPv4 packet and jumps to
// "pass" when none does. It expects the IHL (5..15) in rSaved.
//
// A rule with ports matches only TCP and UDP packets whose destination port
// is in range; a packet cut short before its port has none and matches no
// such rule. Non-first fragments carry no transport header (RFC 791), so
// they match a rule on its protocol alone: the stack owns reassembly, and
// every fragment of a datagram it owns must reach it.
func (b *builder) matchRules(rules []Rule) {
	b.emit(
		asm.LoadMem(asm.R2, rData, ipProtoOff, asm.Byte),
		asm.Mov.Imm(asm.R4, noPort),
		asm.LoadMem(asm.R3, rData, ipFragOff, asm.Half),
		asm.And.Imm(asm.R3, be16(0x1fff)), // fragment offset, flags masked off
		asm.JEq.Imm(asm.R3, 0, "first"),
		asm.Mov.Imm(asm.R4, fragPort),
		asm.Ja.Label("rules"),
	)
	b.mark("first")
	b.emit(
		asm.JEq.Imm(asm.R2, ProtoTCP, "ports"),
		asm.JEq.Imm(asm.R2, ProtoUDP, "ports"),
		asm.Ja.Label("rules"),
	)
	// The transport header starts IHL*4 (20..60) bytes into the IPv4
	// header. The verifier tracks that range through the shift, so the
	// bounds check below covers a variable offset.
	b.mark("ports")
	b.emit(
		asm.Mov.Reg(asm.R1, rSaved),
		asm.LSh.Imm(asm.R1, 2),
		asm.Add.Reg(asm.R1, rData),
		asm.Mov.Reg(asm.R3, asm.R1),
		asm.Add.Imm(asm.R3, ethLen+4), // source and destination ports
		asm.JGT.Reg(asm.R3, rDataEnd, "rules"),
		asm.LoadMem(asm.R4, asm.R1, ethLen+2, asm.Half),
		asm.HostTo(asm.BE, asm.R4, asm.Half),
	)
	for i, r := range rules {
		next := "rule" + strconv.Itoa(i+1)
		if i == 0 {
			b.mark("rules")
		} else {
			b.mark("rule" + strconv.Itoa(i))
		}
		if r.Proto != 0 {
			b.emit(asm.JNE.Imm(asm.R2, int32(r.Proto), next))
		}
		if r.hasPorts() {
			b.emit(
				asm.JEq.Imm(asm.R4, fragPort, "redirect"),
				asm.JLT.Imm(asm.R4, int32(r.PortLo), next),
				asm.JGT.Imm(asm.R4, int32(r.PortHi), next),
			)
		}
		b.emit(asm.Ja.Label("redirect"))
	}
	b.mark("rule" + strconv.Itoa(len(rules)))
	b.emit(asm.Ja.Label("pass"))
}

// be16 and be32 give the value a load from the packet yields for the given
// big-endian (network order) field, so comparisons need no byte swap.
func be16(v uint16) int32 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return int32(binary.NativeEndian.Uint16(b[:]))
}

func be32(v uint32) int32 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return int32(binary.NativeEndian.Uint32(b[:]))
}
