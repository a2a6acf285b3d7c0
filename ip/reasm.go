package ip

import (
	"time"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// Reassembly limits.
const (
	// blockSize is the unit of reassembly memory: a fragment's data
	// occupies whole blocks, so tiny fragments cost as much memory as
	// 512-byte ones and cannot stretch the cap.
	blockSize = 512
	// maxFrags caps the fragments of one datagram, so that the overlap
	// check (a scan of the datagram's fragments) stays cheap whatever a
	// peer sends. 128 lets a 65,535-byte datagram through a path MTU of
	// 552 bytes, the floor of path MTU discovery (125 fragments).
	maxFrags = 128
	// minReasmMemory holds one datagram of the maximum size whatever its
	// fragment sizes: at most 65,515/512 full blocks plus one partial block
	// per fragment.
	minReasmMemory = 2 * maxFrags * blockSize
	// maxFragEnd is where a fragment's data may end at most: a reassembled
	// datagram has a header of 20 bytes or more and at most 65,535 bytes
	// in all (RFC 791 section 3.1; the "ping of death" overflows it).
	maxFragEnd = maxPacket - headerLen
)

// fragKey identifies the datagram a fragment belongs to (RFC 791 section
// 3.2: source, destination, protocol and identification).
type fragKey struct {
	src, dst uint32
	id       uint16
	proto    uint8
}

// fragment is one received fragment, as Input hands it to the reassembler.
type fragment struct {
	key  fragKey
	off  int    // the data's offset in the datagram, in bytes
	more bool   // MF: not the last fragment
	hdr  []byte // the fragment's header, options included
	data []byte
}

// fragRec is a fragment held for reassembly: payload bytes [off, end) of
// its datagram, stored in a chain of blocks.
type fragRec struct {
	off, end int
	block    int32 // the first block of its data
	next     int32 // the datagram's next fragment (in arrival order); -1 ends
}

// pending is a datagram under reassembly.
type pending struct {
	key     fragKey
	created time.Duration
	frags   int32 // its fragments, newest first; -1 none
	nfrags  int
	have    int                // payload bytes held
	maxEnd  int                // the furthest byte any fragment reached
	total   int                // the payload length, known from the last fragment; -1 before
	first   int32              // fragment zero's record; -1 until it comes
	hdr     [maxHeaderLen]byte // fragment zero's header
	hdrLen  int
	older   int // the age list, by creation; -1 ends
	newer   int
}

// reassembler reassembles IPv4 datagrams (RFC 791 section 3.2, RFC 815)
// in memory allocated once, in New: an arena of 512-byte blocks with a
// free list, one record per block (every fragment holds at least one
// block, so records never run out first), a fixed number of datagram
// slots, and the 65,535-byte buffer where complete datagrams are gathered.
//
// Overlaps are never resolved: any overlap between two fragments of a
// datagram drops the whole datagram (RFC 5722 section 4's rule for IPv6,
// which Linux applies to IPv4 since 2018). That defeats the teardrop
// attack, the overlapping rewrite of RFC 1858 section 4, and any ambiguity
// between receivers about which bytes win. Exact duplicates (same offset,
// same length) are dropped and the datagram kept, as RFC 5722's erratum
// 3089 allows. When memory or slots run out, the oldest datagram is
// evicted, so a flood can waste the cap but never grow it.
type reassembler struct {
	timeout time.Duration
	st      *IPStats

	arena     []byte
	blockNext []int32 // a block's successor in its chain or in the free list
	freeBlock int32
	nfree     int

	recs    []fragRec
	freeRec int32

	slots          []pending
	freeSlots      []int // a stack
	oldest, newest int

	out []byte // where a datagram is gathered; valid until the next Input
}

func newReassembler(memory, datagrams int, timeout time.Duration, st *IPStats) reassembler {
	n := memory / blockSize
	r := reassembler{
		timeout:   timeout,
		st:        st,
		arena:     make([]byte, n*blockSize),
		blockNext: make([]int32, n),
		nfree:     n,
		recs:      make([]fragRec, n),
		slots:     make([]pending, datagrams),
		freeSlots: make([]int, 0, datagrams),
		oldest:    -1,
		newest:    -1,
		out:       make([]byte, maxPacket),
	}
	for i := range n {
		r.blockNext[i] = int32(i + 1)
		r.recs[i].next = int32(i + 1)
	}
	r.blockNext[n-1], r.recs[n-1].next = -1, -1
	for i := datagrams - 1; i >= 0; i-- {
		r.freeSlots = append(r.freeSlots, i)
	}
	return r
}

// add takes one fragment at now. When it completes its datagram, add
// returns the whole datagram, a 20-byte header and the payload, in r.out.
func (r *reassembler) add(now time.Duration, f fragment) ([]byte, bool) {
	r.st.ReasmReqds++
	end := f.off + len(f.data)
	i := r.find(f.key)
	// RFC 791 section 3.2: every fragment but the last carries a multiple
	// of 8 bytes. An empty fragment carries nothing to reassemble, and one
	// reaching past maxFragEnd would overflow the datagram. Such a
	// fragment spoils its datagram.
	if len(f.data) == 0 || f.more && len(f.data)%8 != 0 || end > maxFragEnd {
		if i >= 0 {
			r.kill(i)
		}
		r.st.ReasmFails++
		return nil, false
	}
	if i < 0 {
		i = r.alloc(now, f.key)
	}
	p := &r.slots[i]
	// The last fragment fixes the length; no fragment may reach past it,
	// and only one last fragment may come.
	if !f.more && (p.total >= 0 && end != p.total || p.maxEnd > end) || f.more && p.total >= 0 && end > p.total {
		return r.fail(i)
	}
	for j := p.frags; j >= 0; j = r.recs[j].next {
		q := &r.recs[j]
		if q.off == f.off && q.end == end {
			return nil, false // a duplicate: keep the first copy
		}
		if f.off < q.end && q.off < end {
			r.st.ReasmOverlaps++
			return r.fail(i)
		}
	}
	if p.nfrags == maxFrags {
		return r.fail(i)
	}
	need := (len(f.data) + blockSize - 1) / blockSize
	for r.nfree < need {
		// Evict the oldest other datagram. There is one: datagram i alone
		// never fills the memory (minReasmMemory, maxFrags).
		v := r.oldest
		if v == i {
			v = r.slots[v].newer
		}
		r.kill(v)
		r.st.ReasmFails++
	}
	rec := r.freeRec
	r.freeRec = r.recs[rec].next
	r.recs[rec] = fragRec{off: f.off, end: end, block: r.store(f.data), next: p.frags}
	p.frags = rec
	p.nfrags++
	p.have += len(f.data)
	p.maxEnd = max(p.maxEnd, end)
	if !f.more {
		p.total = end
	}
	if f.off == 0 {
		p.first = rec
		p.hdrLen = copy(p.hdr[:], f.hdr)
	}
	if p.total < 0 || p.have != p.total {
		return nil, false
	}
	// Fragments are disjoint, so holding total bytes means holding all of
	// [0, total): fragment zero included.
	return r.complete(i), true
}

// complete gathers pending datagram i into r.out and frees it. The header
// is rebuilt from fragment zero's without options (nothing above IP reads
// them), with the total length of the whole and no fragment fields.
func (r *reassembler) complete(i int) []byte {
	p := &r.slots[i]
	h := wire.IPv4(p.hdr[:p.hdrLen])
	n := headerLen + p.total
	out := r.out[:n]
	// Encode writes a TTL of 0 as 64; nothing above IP reads it.
	wire.IPv4Fields{
		TOS: h.TOS(), TotalLen: n, ID: h.ID(), DontFragment: h.DontFragment(),
		TTL: h.TTL(), Protocol: h.Protocol(), Src: h.Src(), Dst: h.Dst(),
	}.Encode(out)
	for j := p.frags; j >= 0; j = r.recs[j].next {
		q := &r.recs[j]
		r.load(out[headerLen+q.off:headerLen+q.end], q.block)
	}
	r.kill(i)
	r.st.ReasmOKs++
	return out
}

// fail drops pending datagram i as a reassembly failure.
func (r *reassembler) fail(i int) ([]byte, bool) {
	r.kill(i)
	r.st.ReasmFails++
	return nil, false
}

func (r *reassembler) find(k fragKey) int {
	for i := r.newest; i >= 0; i = r.slots[i].older {
		if r.slots[i].key == k {
			return i
		}
	}
	return -1
}

// alloc starts a datagram at now, evicting the oldest if every slot is
// taken.
func (r *reassembler) alloc(now time.Duration, k fragKey) int {
	if len(r.freeSlots) == 0 {
		r.kill(r.oldest)
		r.st.ReasmFails++
	}
	i := r.freeSlots[len(r.freeSlots)-1]
	r.freeSlots = r.freeSlots[:len(r.freeSlots)-1]
	r.slots[i] = pending{key: k, created: now, frags: -1, total: -1, first: -1, older: r.newest, newer: -1}
	if r.newest >= 0 {
		r.slots[r.newest].newer = i
	} else {
		r.oldest = i
	}
	r.newest = i
	return i
}

// kill frees pending datagram i and everything it holds.
func (r *reassembler) kill(i int) {
	p := &r.slots[i]
	for j := p.frags; j >= 0; {
		q := &r.recs[j]
		r.release(q.block)
		next := q.next
		q.next = r.freeRec
		r.freeRec = j
		j = next
	}
	if p.older >= 0 {
		r.slots[p.older].newer = p.newer
	} else {
		r.oldest = p.newer
	}
	if p.newer >= 0 {
		r.slots[p.newer].older = p.older
	} else {
		r.newest = p.older
	}
	r.freeSlots = append(r.freeSlots, i)
}

// store copies data into a chain of free blocks and returns its first.
// The caller has made sure enough blocks are free.
func (r *reassembler) store(data []byte) int32 {
	head := r.freeBlock
	for b := head; ; b = r.blockNext[b] {
		data = data[copy(r.arena[int(b)*blockSize:int(b+1)*blockSize], data):]
		r.nfree--
		if len(data) == 0 {
			r.freeBlock = r.blockNext[b]
			r.blockNext[b] = -1
			return head
		}
	}
}

// load copies len(dst) bytes from the chain that starts at block b.
func (r *reassembler) load(dst []byte, b int32) {
	for len(dst) > 0 {
		dst = dst[copy(dst, r.arena[int(b)*blockSize:int(b+1)*blockSize]):]
		b = r.blockNext[b]
	}
}

// release returns the chain that starts at block head to the free list.
func (r *reassembler) release(head int32) {
	b := head
	for {
		r.nfree++
		if r.blockNext[b] < 0 {
			break
		}
		b = r.blockNext[b]
	}
	r.blockNext[b] = r.freeBlock
	r.freeBlock = head
}

// deadline is when the oldest datagram times out.
func (r *reassembler) deadline() (time.Duration, bool) {
	if r.oldest < 0 {
		return 0, false
	}
	return r.slots[r.oldest].created + r.timeout, true
}

// due returns a datagram that has timed out at now, or -1.
func (r *reassembler) due(now time.Duration) int {
	if t, ok := r.deadline(); ok && now >= t {
		return r.oldest
	}
	return -1
}
