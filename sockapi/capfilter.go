package sockapi

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// CaptureFilter is a parsed capture expression: which frames a capture
// keeps. The zero value keeps every frame.
type CaptureFilter struct {
	terms []filterTerm // all must match
}

// filterTerm is one primitive of an expression.
type filterTerm struct {
	kind  termKind
	host  netip.Addr // termHost
	port  uint16     // termPort
	proto uint8      // termProto: wire.ProtoTCP, ProtoUDP, ProtoICMP
}

type termKind uint8

const (
	termHost  termKind = iota // IPv4 source or destination, or ARP sender or target
	termPort                  // TCP or UDP source or destination port
	termProto                 // an IPv4 protocol
	termARP                   // an ARP frame
)

// ParseCaptureFilter parses a capture expression in tcpdump's words:
// the primitives `host H` (an IPv4 source or destination, or an ARP
// sender or target address), `port P` (a TCP or UDP source or
// destination port), `tcp`, `udp`, `icmp` and `arp`, joined by `and`
// (or `&&`; two primitives side by side are joined so too, so `tcp port
// 80` reads as tcpdump's). Every primitive must match. An empty
// expression keeps every frame. Stack.Capture parses its
// CaptureConfig.Filter with it; programs call it to check an expression
// before they attach.
func ParseCaptureFilter(expr string) (CaptureFilter, error) {
	var f CaptureFilter
	words := strings.Fields(expr)
	bad := func(format string, args ...any) (CaptureFilter, error) {
		return CaptureFilter{}, fmt.Errorf("sockapi: capture filter %q: %s", expr, fmt.Sprintf(format, args...))
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		if w == "and" || w == "&&" {
			if len(f.terms) == 0 || i == len(words)-1 || words[i+1] == "and" || words[i+1] == "&&" {
				return bad("%q needs a primitive on each side", w)
			}
			continue
		}
		var t filterTerm
		switch w {
		case "tcp":
			t = filterTerm{kind: termProto, proto: wire.ProtoTCP}
		case "udp":
			t = filterTerm{kind: termProto, proto: wire.ProtoUDP}
		case "icmp":
			t = filterTerm{kind: termProto, proto: wire.ProtoICMP}
		case "arp":
			t = filterTerm{kind: termARP}
		case "host", "port":
			if i == len(words)-1 {
				return bad("%q needs a value", w)
			}
			i++
			if w == "host" {
				a, err := netip.ParseAddr(words[i])
				if err != nil || !a.Is4() {
					return bad("host %q is not an IPv4 address", words[i])
				}
				t = filterTerm{kind: termHost, host: a}
				break
			}
			p, err := strconv.ParseUint(words[i], 10, 16)
			if err != nil {
				return bad("port %q is not a port number (0-65535)", words[i])
			}
			t = filterTerm{kind: termPort, port: uint16(p)}
		default:
			return bad("unknown word %q: expected host H, port P, tcp, udp, icmp, arp or and", w)
		}
		f.terms = append(f.terms, t)
	}
	return f, nil
}

// Match reports whether the Ethernet frame passes the filter. The frame
// is any bytes from the wire: what does not parse matches only the empty
// filter.
func (f CaptureFilter) Match(frame []byte) bool {
	if len(f.terms) == 0 {
		return true
	}
	e := wire.Ethernet(frame)
	if e.Check() != nil {
		return false
	}
	var ipv4 wire.IPv4
	var arp wire.ARP
	switch e.Type() {
	case wire.EtherTypeIPv4:
		if ipv4 = wire.IPv4(e.Payload()); ipv4.Check() != nil {
			return false
		}
	case wire.EtherTypeARP:
		if arp = wire.ARP(e.Payload()); arp.Check() != nil {
			return false
		}
	default:
		return false
	}
	for _, t := range f.terms {
		if !t.match(ipv4, arp) {
			return false
		}
	}
	return true
}

// match reports whether a checked IPv4 packet or ARP packet (one of them
// nil) passes t.
func (t filterTerm) match(ipv4 wire.IPv4, arp wire.ARP) bool {
	switch t.kind {
	case termARP:
		return arp != nil
	case termHost:
		if arp != nil {
			return arp.SenderIP() == t.host || arp.TargetIP() == t.host
		}
		return ipv4.Src() == t.host || ipv4.Dst() == t.host
	case termProto:
		return ipv4 != nil && ipv4.Protocol() == t.proto
	}
	// termPort: the ports are in the first fragment only, as tcpdump's.
	if ipv4 == nil || ipv4.FragmentOffset() != 0 {
		return false
	}
	if p := ipv4.Protocol(); p != wire.ProtoTCP && p != wire.ProtoUDP {
		return false
	}
	l4 := ipv4.Payload()
	if len(l4) < 4 {
		return false
	}
	// TCP's ports sit where UDP's do.
	return wire.UDP(l4).SrcPort() == t.port || wire.UDP(l4).DstPort() == t.port
}
