package ip

import "github.com/xdpnet/xdpnet/internal/wire"

// IP option types the fragmenter reads (RFC 791 section 3.1).
const (
	optEnd    = 0    // end of option list
	optNop    = 1    // no operation
	optCopied = 0x80 // the copied flag: the option goes in every fragment
)

// fragPlan returns how fragments of pkt for mtu are cut: per data bytes
// each (the last may carry fewer), n fragments. n is 1 when pkt goes
// whole and 0 when it cannot be cut.
func fragPlan(pkt wire.IPv4, mtu int) (per, n int) {
	hl, total := pkt.HeaderLen(), pkt.TotalLen()
	if total <= mtu || pkt.DontFragment() {
		return total - hl, 1
	}
	// RFC 791 section 3.2: every fragment but the last carries a multiple
	// of 8 data bytes (the offset counts 8-byte units). Every fragment
	// keeps the header's length (see WriteFragment), so all carry as
	// much.
	per = (mtu - hl) &^ 7
	if per < 8 || pkt.IsFragment() {
		return 0, 0
	}
	return per, (total - hl + per - 1) / per
}

// Fragments returns how many fragments WriteFragment makes of pkt, a whole
// IPv4 datagram (header, options and payload, as WriteHeader or an echo
// reply wrote it), to fit mtu: 1 when it fits, or when it carries DF (it
// then goes whole, for the path to refuse it: RFC 791 section 3.2); 0 when
// mtu cannot hold its header and 8 data bytes, or pkt is a fragment
// already. A 65,535-byte datagram makes 45 fragments at MTU 1500.
func Fragments(pkt wire.IPv4, mtu int) int {
	_, n := fragPlan(pkt, mtu)
	return n
}

// WriteFragment writes fragment i of pkt for mtu (0 ≤ i < Fragments(pkt,
// mtu)) into b and returns its length, at most mtu unless pkt goes whole;
// b must hold that much. Fragments are cut as RFC 791 section 3.2's
// procedure does: all share pkt's identification, fragment i carries data
// bytes [i×per, (i+1)×per) of the payload with its offset in 8-byte units,
// and MF is set on all but the last. The first fragment keeps every
// option; in later ones the options without the copied flag become NOPs,
// as Linux's ip_options_fragment does, so every header has the same
// length. Cutting a datagram counts FragCreates per fragment and FragOKs
// at its last; nothing allocates.
func (l *Layer) WriteFragment(b []byte, pkt wire.IPv4, mtu, i int) int {
	per, n := fragPlan(pkt, mtu)
	total := pkt.TotalLen()
	if n == 1 {
		return copy(b, pkt[:total])
	}
	hl := pkt.HeaderLen()
	off := i * per
	end := min(off+per, total-hl)
	copy(b, pkt[:hl])
	if i > 0 {
		dropUncopiedOptions(b[headerLen:hl])
	}
	copy(b[hl:], pkt[hl+off:hl+end])
	wire.IPv4(b).SetFragment(hl+end-off, off, i < n-1)
	l.ipst.FragCreates++
	if i == n-1 {
		l.ipst.FragOKs++
	}
	return hl + end - off
}

// dropUncopiedOptions overwrites with NOPs the options of opts whose copied
// flag is clear (RFC 791 section 3.1: only those with it set go in every
// fragment). It stops at the end of the list or at a malformed length,
// leaving the rest as it is.
func dropUncopiedOptions(opts []byte) {
	for len(opts) > 0 {
		switch opts[0] {
		case optEnd:
			return
		case optNop:
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || int(opts[1]) < 2 || int(opts[1]) > len(opts) {
			return
		}
		n := int(opts[1])
		if opts[0]&optCopied == 0 {
			for j := range n {
				opts[j] = optNop
			}
		}
		opts = opts[n:]
	}
}
