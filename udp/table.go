package udp

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
)

// Table holds the UDP endpoints of one poller: the demux table by local
// port, the endpoints with datagrams to send, and the counters. Only its
// owner calls it; it is not safe for concurrent use.
type Table struct {
	cfg Config
	rng *rand.Rand

	// ports[p] is the newest endpoint bound to port p; older ones follow
	// through Endpoint.next. A 65536-slot array costs 512 KiB per poller
	// and beat a map[uint16]*Endpoint in BenchmarkDemux: 4.5 against 22 ns
	// per lookup with 1 port bound, 5.2 against 47 ns with 16,000 (and 46
	// against 64 ns per 64-byte Input+ReadFrom).
	ports *[1 << 16]*Endpoint

	// every bound endpoint, for Endpoints: a walk of ports would read
	// 512 KiB to find a few. Endpoint.index is each one's place.
	bound []*Endpoint

	// Endpoints with datagrams to send, served round robin.
	ready readyList
	// Endpoints with news for their app layer (NextNews).
	news []*Endpoint

	stats Stats
}

// Stats are the counters of /proc/net/snmp's Udp line. As in Linux,
// InErrors includes RcvbufErrors and InCsumErrors.
type Stats struct {
	// InDatagrams: datagrams queued to an endpoint (Linux counts them
	// when read).
	InDatagrams uint64
	// NoPorts: datagrams to a port no endpoint takes.
	NoPorts uint64
	// InErrors: datagrams dropped for any other reason: malformed,
	// checksum error, receive queue full.
	InErrors uint64
	// OutDatagrams: datagrams handed to the poller for sending.
	OutDatagrams uint64
	// RcvbufErrors: datagrams dropped because the receive queue was full.
	RcvbufErrors uint64
	// SndbufErrors: writes refused because the send queue was full.
	SndbufErrors uint64
	// InCsumErrors: datagrams dropped for a bad checksum.
	InCsumErrors uint64
}

// New returns an empty table for cfg, or an error if cfg is invalid.
func New(cfg Config) (*Table, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var seed [32]byte
	s := cfg.Seed
	if s == 0 {
		s = rand.Uint64()
	}
	binary.LittleEndian.PutUint64(seed[:], s)
	return &Table{cfg: cfg, rng: rand.New(rand.NewChaCha8(seed)), ports: new([1 << 16]*Endpoint)}, nil
}

// Stats returns a copy of the counters.
func (t *Table) Stats() Stats { return t.stats }

// Bind returns an endpoint bound to local. The zero address (or an invalid
// one) is the wildcard: the endpoint receives on every local address.
// Port 0 picks a free port from the ephemeral range. Errors:
// ErrAddrNotAvailable, ErrPortInUse, ErrNoEphemeralPort.
func (t *Table) Bind(local netip.AddrPort) (*Endpoint, error) {
	return t.bind(local, false)
}

// BindShared is Bind with SO_REUSEADDR: the endpoint may share its port
// with other shared endpoints, also on the same address. A datagram goes to
// the most specific match (see Input); among equals, to the newest.
func (t *Table) BindShared(local netip.AddrPort) (*Endpoint, error) {
	return t.bind(local, true)
}

func (t *Table) bind(local netip.AddrPort, shared bool) (*Endpoint, error) {
	addr := local.Addr().Unmap()
	if !addr.IsValid() {
		addr = netip.IPv4Unspecified()
	}
	if !addr.Is4() || !addr.IsUnspecified() && !slices.Contains(t.cfg.Addrs, addr) {
		return nil, fmt.Errorf("bind %v: %w", local, ErrAddrNotAvailable)
	}
	port := local.Port()
	if port == 0 {
		var ok bool
		if port, ok = t.ephemeral(); !ok {
			return nil, fmt.Errorf("bind %v: %w", local, ErrNoEphemeralPort)
		}
	} else if t.conflicts(addr, port, shared) {
		return nil, fmt.Errorf("bind %v: %w", local, ErrPortInUse)
	}
	e := &Endpoint{
		t:      t,
		local:  netip.AddrPortFrom(addr, port),
		shared: shared,
		rcv:    newQueue(t.cfg.RecvQueueBytes, t.cfg.RecvQueueDatagrams),
		snd:    newQueue(t.cfg.SendQueueBytes, t.cfg.SendQueueDatagrams),
		next:   t.ports[port],
	}
	t.ports[port] = e
	e.index = len(t.bound)
	t.bound = append(t.bound, e)
	return e, nil
}

// Endpoints calls f for every bound endpoint, for the socket table; order
// is random. It allocates nothing. Like every Table method it is for the
// owner's goroutine, and f must not bind or close endpoints.
func (t *Table) Endpoints(f func(*Endpoint)) {
	for _, e := range t.bound {
		f(e)
	}
}

// conflicts reports whether binding addr:port would clash with an endpoint
// bound already: the addresses overlap (equal, or either is the wildcard)
// and not both endpoints share, as with Linux's SO_REUSEADDR.
func (t *Table) conflicts(addr netip.Addr, port uint16, shared bool) bool {
	for e := t.ports[port]; e != nil; e = e.next {
		a := e.local.Addr()
		if (a == addr || a.IsUnspecified() || addr.IsUnspecified()) && !(shared && e.shared) {
			return true
		}
	}
	return false
}

// ephemeral picks a port that no endpoint uses from the ephemeral range:
// RFC 6056 section 3.3.1 (Algorithm 1), a random start and a linear search
// from there.
func (t *Table) ephemeral() (uint16, bool) {
	lo, n := uint32(t.cfg.EphemeralLo), uint32(t.cfg.EphemeralHi)-uint32(t.cfg.EphemeralLo)+1
	start := t.rng.Uint32N(n)
	for i := range n {
		p := uint16(lo + (start+i)%n)
		if t.ports[p] == nil {
			return p, true
		}
	}
	return 0, false
}

// unlink removes e from its port's chain and from bound.
func (t *Table) unlink(e *Endpoint) {
	last := t.bound[len(t.bound)-1]
	t.bound[e.index], last.index = last, e.index
	t.bound[len(t.bound)-1] = nil
	t.bound = t.bound[:len(t.bound)-1]
	for p := &t.ports[e.local.Port()]; *p != nil; p = &(*p).next {
		if *p == e {
			*p = e.next
			return
		}
	}
}

// lookup returns the endpoint for a datagram from raddr:rport to
// laddr:lport, or nil. Of the endpoints on lport, those bound to another
// address or connected to another peer are out; of the rest, a connected
// one beats an unconnected one, then a specific local address beats the
// wildcard; among equals the newest wins (it is first in the chain).
func (t *Table) lookup(laddr netip.Addr, lport uint16, raddr netip.Addr, rport uint16) *Endpoint {
	var best *Endpoint
	bestScore := -1
	for e := t.ports[lport]; e != nil; e = e.next {
		score := 0
		if a := e.local.Addr(); !a.IsUnspecified() {
			if a != laddr {
				continue
			}
			score++
		}
		if e.remote.IsValid() {
			if e.remote.Addr() != raddr || e.remote.Port() != rport {
				continue
			}
			score += 2
		}
		if score > bestScore {
			best, bestScore = e, score
		}
	}
	return best
}

// PortUnreachable reports an ICMP port unreachable that came back for a
// datagram we sent from local to remote (the addresses of the datagram the
// ICMP message quotes). RFC 1122 section 4.1.3.3 says UDP passes ICMP
// errors up; as Linux does without IP_RECVERR, only a connected endpoint
// takes it, as ErrConnRefused on its next read or write. It reports
// whether an endpoint took it.
func (t *Table) PortUnreachable(local, remote netip.AddrPort) bool {
	e := t.lookup(local.Addr(), local.Port(), remote.Addr(), remote.Port())
	if e == nil || !e.remote.IsValid() {
		return false
	}
	e.err = ErrConnRefused
	e.refused.Store(true)
	t.notify(e)
	return true
}
