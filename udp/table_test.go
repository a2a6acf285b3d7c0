package udp

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewConfig(t *testing.T) {
	tbl, err := New(Config{})
	require.NoError(t, err)
	assert.Equal(t, uint16(49152), tbl.cfg.EphemeralLo, "IANA dynamic range by default")
	assert.Equal(t, uint16(65535), tbl.cfg.EphemeralHi)
	assert.Equal(t, 65507, tbl.cfg.maxPayload(), "fragmented by the ip layer")
	tbl, err = New(Config{DontFragment: true})
	require.NoError(t, err)
	assert.Equal(t, 1472, tbl.cfg.maxPayload(), "DF: MTU − 28")
	tbl, err = New(Config{SendQueueBytes: 2000})
	require.NoError(t, err)
	assert.Equal(t, 2000, tbl.cfg.maxPayload(), "no more than the send queue holds")

	for name, cfg := range map[string]Config{
		"IPv6 address":       {Addrs: []netip.Addr{netip.MustParseAddr("::1")}},
		"wildcard address":   {Addrs: []netip.Addr{netip.IPv4Unspecified()}},
		"reversed range":     {EphemeralLo: 2000, EphemeralHi: 1000},
		"port 0 in range":    {EphemeralLo: 0, EphemeralHi: 10},
		"MTU below 68":       {MTU: 67},
		"MTU above 65535":    {MTU: 65536},
		"negative limit":     {RecvQueueDatagrams: -1},
		"small send queue":   {SendQueueBytes: 1471},
		"send queue for MTU": {MTU: 9000, SendQueueBytes: 8000},
	} {
		_, err := New(cfg)
		assert.Error(t, err, name)
	}
	_, err = New(Config{Addrs: []netip.Addr{netip.MustParseAddr("::ffff:198.18.0.1")}, SendQueueBytes: 1472})
	assert.NoError(t, err, "a 4-in-6 address is unmapped; a send queue of one full datagram is enough")
}

func TestBindSpecificAndWildcard(t *testing.T) {
	tbl := newTable(t, Config{})
	e := bind(t, tbl, "198.18.0.1:53")
	assert.Equal(t, netip.MustParseAddrPort("198.18.0.1:53"), e.LocalAddr())

	_, err := tbl.Bind(netip.MustParseAddrPort("198.18.0.1:53"))
	assert.ErrorIs(t, err, syscall.EADDRINUSE, "same address and port")
	assert.ErrorIs(t, err, ErrPortInUse)
	_, err = tbl.Bind(netip.MustParseAddrPort("0.0.0.0:53"))
	assert.ErrorIs(t, err, syscall.EADDRINUSE, "the wildcard overlaps a specific address")

	e2 := bind(t, tbl, "198.18.0.2:53")
	assert.Equal(t, uint16(53), e2.LocalAddr().Port(), "another of our addresses, same port")

	w := bind(t, tbl, "0.0.0.0:54")
	_, err = tbl.Bind(netip.MustParseAddrPort("198.18.0.2:54"))
	assert.ErrorIs(t, err, syscall.EADDRINUSE, "a specific address overlaps the wildcard")
	assert.True(t, w.LocalAddr().Addr().IsUnspecified())

	_, err = tbl.Bind(netip.MustParseAddrPort("198.18.9.9:55"))
	assert.ErrorIs(t, err, syscall.EADDRNOTAVAIL, "not one of ours")
	_, err = tbl.Bind(netip.MustParseAddrPort("[::1]:55"))
	assert.ErrorIs(t, err, syscall.EADDRNOTAVAIL, "not IPv4")

	e4, err := tbl.Bind(netip.MustParseAddrPort("[::ffff:198.18.0.1]:56"))
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("198.18.0.1:56"), e4.LocalAddr(), "4-in-6 unmapped")

	z, err := tbl.Bind(netip.AddrPort{})
	require.NoError(t, err)
	assert.True(t, z.LocalAddr().Addr().IsUnspecified(), "the zero AddrPort is the wildcard")
	assert.GreaterOrEqual(t, z.LocalAddr().Port(), uint16(49152), "and an ephemeral port")

	require.NoError(t, e.Close())
	bind(t, tbl, "198.18.0.1:53") // free again after Close
	_, err = tbl.Bind(netip.MustParseAddrPort("0.0.0.0:53"))
	assert.ErrorIs(t, err, syscall.EADDRINUSE, "e2 still holds 198.18.0.2:53")
}

func TestBindShared(t *testing.T) {
	tbl := newTable(t, Config{})
	a, err := tbl.BindShared(netip.MustParseAddrPort("0.0.0.0:4433"))
	require.NoError(t, err)
	b, err := tbl.BindShared(netip.MustParseAddrPort("0.0.0.0:4433"))
	require.NoError(t, err, "both share")
	_, err = tbl.Bind(netip.MustParseAddrPort("198.18.0.1:4433"))
	assert.ErrorIs(t, err, syscall.EADDRINUSE, "a new endpoint that does not share")

	assert.Equal(t, Delivered, deliver(tbl, "198.18.1.1:1000", "198.18.0.1:4433", []byte("x")))
	_, _, err = a.ReadFrom(make([]byte, 1))
	assert.ErrorIs(t, err, ErrWouldBlock, "among equals the newest wins")
	got, _ := read(t, b)
	assert.Equal(t, "x", got)
}

func TestEphemeral(t *testing.T) {
	tbl := newTable(t, Config{EphemeralLo: 40000, EphemeralHi: 40009})
	// Bind two ports of the range explicitly: port 0 must skip them.
	bind(t, tbl, "0.0.0.0:40003")
	bind(t, tbl, "198.18.0.2:40007")
	seen := map[uint16]bool{40003: true, 40007: true}
	for range 8 {
		e, err := tbl.Bind(netip.MustParseAddrPort("198.18.0.1:0"))
		require.NoError(t, err)
		p := e.LocalAddr().Port()
		assert.GreaterOrEqual(t, p, uint16(40000))
		assert.LessOrEqual(t, p, uint16(40009))
		assert.False(t, seen[p], "port %d handed out twice or in use", p)
		seen[p] = true
	}
	_, err := tbl.Bind(netip.MustParseAddrPort("0.0.0.0:0"))
	assert.ErrorIs(t, err, ErrNoEphemeralPort)
	assert.ErrorIs(t, err, syscall.EADDRINUSE)

	// A port freed by Close is found again.
	tbl2 := newTable(t, Config{EphemeralLo: 50000, EphemeralHi: 50000})
	e := bind(t, tbl2, "0.0.0.0:0")
	require.NoError(t, e.Close())
	e = bind(t, tbl2, "0.0.0.0:0")
	assert.Equal(t, uint16(50000), e.LocalAddr().Port())
}

func TestEphemeralRandomStart(t *testing.T) {
	first := func(seed uint64) uint16 {
		tbl := newTable(t, Config{Seed: seed})
		return bind(t, tbl, "0.0.0.0:0").LocalAddr().Port()
	}
	assert.Equal(t, first(7), first(7), "a seed reproduces the choice")
	ports := map[uint16]bool{}
	for seed := range uint64(20) {
		ports[first(seed+1)] = true
	}
	assert.Greater(t, len(ports), 15, "the start is random (RFC 6056)")
}

func TestDemuxExactBeforeWildcard(t *testing.T) {
	tbl := newTable(t, Config{})
	wild := bind(t, tbl, "0.0.0.0:7")
	conn, err := tbl.BindShared(netip.MustParseAddrPort("0.0.0.0:8"))
	require.NoError(t, err)
	wild8, err := tbl.BindShared(netip.MustParseAddrPort("0.0.0.0:8"))
	require.NoError(t, err)
	spec8, err := tbl.BindShared(netip.MustParseAddrPort("198.18.0.1:8"))
	require.NoError(t, err)
	require.NoError(t, conn.Connect(netip.MustParseAddrPort("198.18.1.1:1000")))

	for _, c := range []struct {
		src, dst string
		want     *Endpoint
	}{
		{"198.18.1.1:1000", "198.18.0.1:7", wild},
		{"198.18.1.1:1000", "198.18.0.2:7", wild},
		{"198.18.1.1:1000", "198.18.0.1:8", conn},  // connected peer beats all
		{"198.18.1.1:1000", "198.18.0.2:8", conn},  // on any local address
		{"198.18.1.1:1001", "198.18.0.1:8", spec8}, // another peer port: specific address
		{"198.18.1.2:1000", "198.18.0.2:8", wild8}, // wildcard last
	} {
		src, dst := netip.MustParseAddrPort(c.src), netip.MustParseAddrPort(c.dst)
		assert.Same(t, c.want, tbl.lookup(dst.Addr(), dst.Port(), src.Addr(), src.Port()), "%s -> %s", c.src, c.dst)
	}
}

func TestConnectedFiltering(t *testing.T) {
	tbl := newTable(t, Config{})
	e := bind(t, tbl, "198.18.0.1:9000")
	require.NoError(t, e.Connect(netip.MustParseAddrPort("198.18.1.1:53")))
	assert.Equal(t, netip.MustParseAddrPort("198.18.1.1:53"), e.RemoteAddr())

	assert.Equal(t, Delivered, deliver(tbl, "198.18.1.1:53", "198.18.0.1:9000", []byte("peer")))
	assert.Equal(t, NoPort, deliver(tbl, "198.18.1.1:54", "198.18.0.1:9000", []byte("other port")))
	assert.Equal(t, NoPort, deliver(tbl, "198.18.1.2:53", "198.18.0.1:9000", []byte("other host")))
	assert.Equal(t, NoPort, deliver(tbl, "198.18.1.1:53", "198.18.0.2:9000", []byte("other local address")))
	got, src := read(t, e)
	assert.Equal(t, "peer", got)
	assert.Equal(t, netip.MustParseAddrPort("198.18.1.1:53"), src)
	s := tbl.Stats()
	assert.Equal(t, uint64(1), s.InDatagrams)
	assert.Equal(t, uint64(3), s.NoPorts)
	assert.Zero(t, s.InErrors)

	assert.ErrorIs(t, e.Connect(netip.MustParseAddrPort("198.18.1.1:0")), syscall.EINVAL)
	assert.ErrorIs(t, e.Connect(netip.MustParseAddrPort("[2001:db8::1]:53")), syscall.EINVAL)
	require.NoError(t, e.Connect(netip.MustParseAddrPort("198.18.1.2:53")), "connect again: a new peer")
	assert.Equal(t, Delivered, deliver(tbl, "198.18.1.2:53", "198.18.0.1:9000", nil))
	assert.Equal(t, NoPort, deliver(tbl, "198.18.1.1:53", "198.18.0.1:9000", nil))
}

func TestPortUnreachable(t *testing.T) {
	tbl := newTable(t, Config{})
	peer := netip.MustParseAddrPort("198.18.1.1:53")
	conn := bind(t, tbl, "0.0.0.0:9000")
	require.NoError(t, conn.Connect(peer))
	unconn := bind(t, tbl, "198.18.0.1:9001")

	// The ICMP message quotes our datagram: from our address to the peer.
	assert.True(t, tbl.PortUnreachable(netip.MustParseAddrPort("198.18.0.1:9000"), peer))
	assert.False(t, tbl.PortUnreachable(netip.MustParseAddrPort("198.18.0.1:9000"), netip.MustParseAddrPort("198.18.1.1:54")),
		"not the connected peer")
	assert.False(t, tbl.PortUnreachable(netip.MustParseAddrPort("198.18.0.1:9001"), peer), "unconnected: ignored, as Linux does")
	assert.False(t, tbl.PortUnreachable(netip.MustParseAddrPort("198.18.0.1:9999"), peer), "no endpoint")

	_, _, err := conn.ReadFrom(make([]byte, 10))
	assert.ErrorIs(t, err, syscall.ECONNREFUSED, "surfaces on the next receive")
	assert.ErrorIs(t, err, ErrConnRefused)
	_, _, err = conn.ReadFrom(make([]byte, 10))
	assert.ErrorIs(t, err, ErrWouldBlock, "once")

	assert.True(t, tbl.PortUnreachable(netip.MustParseAddrPort("198.18.0.2:9000"), peer))
	_, err = conn.Write([]byte("x"))
	assert.ErrorIs(t, err, syscall.ECONNREFUSED, "or on the next send")
	_, err = conn.Write([]byte("x"))
	assert.NoError(t, err)

	_, err = unconn.WriteTo([]byte("x"), peer)
	assert.NoError(t, err)
	_, _, err = unconn.ReadFrom(make([]byte, 10))
	assert.ErrorIs(t, err, ErrWouldBlock)
}

func TestClosed(t *testing.T) {
	tbl := newTable(t, Config{})
	e := bind(t, tbl, "198.18.0.1:7")
	require.Equal(t, Delivered, deliver(tbl, "198.18.1.1:1", "198.18.0.1:7", []byte("lost")))
	require.NoError(t, e.Close())

	assert.ErrorIs(t, e.Close(), net.ErrClosed)
	_, _, err := e.ReadFrom(make([]byte, 10))
	assert.ErrorIs(t, err, net.ErrClosed, "the queue is discarded")
	_, err = e.WriteTo([]byte("x"), netip.MustParseAddrPort("198.18.1.1:1"))
	assert.ErrorIs(t, err, net.ErrClosed)
	_, err = e.Write([]byte("x"))
	assert.ErrorIs(t, err, net.ErrClosed, "not ErrNoDestination")
	assert.ErrorIs(t, e.Connect(netip.MustParseAddrPort("198.18.1.1:1")), net.ErrClosed)
	assert.True(t, errors.Is(err, net.ErrClosed))

	assert.Equal(t, NoPort, deliver(tbl, "198.18.1.1:1", "198.18.0.1:7", []byte("x")), "the port is free")
	assert.Nil(t, tbl.ports[7])
}

// Endpoints walks the bound endpoints only, without allocating, and
// forgets a closed one whatever its place.
func TestEndpoints(t *testing.T) {
	tbl := newTable(t, Config{})
	a, b, c := bind(t, tbl, "0.0.0.0:53"), bind(t, tbl, "198.18.0.1:7"), bind(t, tbl, "0.0.0.0:0")
	list := func() (eps []*Endpoint) {
		tbl.Endpoints(func(e *Endpoint) { eps = append(eps, e) })
		return eps
	}
	assert.ElementsMatch(t, []*Endpoint{a, b, c}, list())
	require.NoError(t, a.Close())
	assert.ElementsMatch(t, []*Endpoint{b, c}, list())
	require.NoError(t, c.Close())
	assert.ElementsMatch(t, []*Endpoint{b}, list())
	d := bind(t, tbl, "198.18.0.2:7")
	assert.ElementsMatch(t, []*Endpoint{b, d}, list())
	assert.Zero(t, testing.AllocsPerRun(10, func() { tbl.Endpoints(func(*Endpoint) {}) }))

	// Queued is the payload bytes waiting, as netstat's Recv-Q.
	assert.Equal(t, Delivered, deliver(tbl, "198.18.1.1:9", "198.18.0.1:7", []byte("hello")))
	rcv, snd := b.Queued()
	assert.Equal(t, [2]int{5, 0}, [2]int{rcv, snd})
}
