package arp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
)

func TestNewRefusesBadConfig(t *testing.T) {
	ok := Config{MAC: ourMAC, Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.1/15")}}
	for name, mod := range map[string]func(*Config){
		"short MAC":            func(c *Config) { c.MAC = ourMAC[:5] },
		"broadcast MAC":        func(c *Config) { c.MAC = wire.BroadcastMAC },
		"zero MAC":             func(c *Config) { c.MAC = zero },
		"no address":           func(c *Config) { c.Addrs = nil },
		"IPv6 address":         func(c *Config) { c.Addrs = []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")} },
		"multicast address":    func(c *Config) { c.Addrs = []netip.Prefix{netip.MustParsePrefix("224.0.0.1/4")} },
		"negative MaxQueue":    func(c *Config) { c.MaxQueue = -1 },
		"negative RetransTime": func(c *Config) { c.RetransTime = -time.Second },
		"MaxRetries 17":        func(c *Config) { c.MaxRetries = 17 },
		"negative LockTime":    func(c *Config) { c.LockTime = -1 },
	} {
		cfg := ok
		mod(&cfg)
		_, err := New(cfg)
		assert.Error(t, err, name)
	}
	c, err := New(ok)
	require.NoError(t, err)
	assert.Equal(t, Config{MAC: ourMAC, Addrs: ok.Addrs, MaxEntries: 1024, MaxQueue: 8, MaxQueueBytes: 64 << 10,
		ReachableTime: 30 * time.Second, RetransTime: time.Second, MaxRetries: 2, FailedTime: 5 * time.Second, LockTime: time.Second}, c.cfg)
}

// TestAnnounceAtStart: the first Output sends one RFC 5227 announcement per
// address, and nothing else is due.
func TestAnnounceAtStart(t *testing.T) {
	second := netip.MustParseAddr("10.0.0.1")
	c, err := New(Config{MAC: ourMAC, Addrs: []netip.Prefix{netip.PrefixFrom(ourIP, 15), netip.PrefixFrom(second, 8)}})
	require.NoError(t, err)
	at, ok := c.Deadline()
	assert.True(t, ok)
	assert.Equal(t, time.Duration(0), at, "announcements are due at once")

	announce := func(ip netip.Addr) frame {
		return frame{Dst: wire.BroadcastMAC, ARP: &wire.ARPFields{Op: wire.ARPRequest, SenderMAC: ourMAC, SenderIP: ip, TargetMAC: zero, TargetIP: ip}}
	}
	assert.Equal(t, []frame{announce(ourIP), announce(second)}, poll(c, time.Second))
	_, ok = c.Deadline()
	assert.False(t, ok)
	assert.Empty(t, poll(c, 2*time.Second), "announced once")
	assert.Equal(t, uint64(2), c.Stats().Announcements)
}

// TestResolveHappyPath: packets queue behind one request, the reply
// releases them in order, and later packets go straight out.
func TestResolveHappyPath(t *testing.T) {
	c := newCache(t, Config{})
	now := 10 * time.Second
	for i := range 3 {
		mac, v := c.Resolve(now, ipA, ipPacket(i))
		assert.Equal(t, Queued, v)
		assert.Nil(t, mac)
	}
	at, ok := c.Deadline()
	assert.True(t, ok)
	assert.Equal(t, now, at)
	assert.Equal(t, Incomplete, state(c, now, ipA))

	assert.Equal(t, []frame{wantRequest(ipA, nil)}, poll(c, now), "one request for three packets")
	at, _ = c.Deadline()
	assert.Equal(t, now+time.Second, at, "first retry")

	now += 200 * time.Millisecond
	c.Input(now, reply(macA, ipA, ourMAC, ourIP))
	assert.Equal(t, Reachable, state(c, now, ipA))
	at, _ = c.Deadline()
	assert.Equal(t, now, at, "queued packets are due")
	assert.Equal(t, []frame{{Dst: macA, IP: ipPacket(0)}, {Dst: macA, IP: ipPacket(1)}, {Dst: macA, IP: ipPacket(2)}}, poll(c, now))
	_, ok = c.Deadline()
	assert.False(t, ok, "no retry once resolved")

	mac, v := c.Resolve(now, ipA, ipPacket(3))
	assert.Equal(t, Send, v)
	assert.Equal(t, macA, mac)
	assert.Empty(t, poll(c, now+time.Hour))

	s := c.Stats()
	assert.Equal(t, Stats{RequestsOut: 1, RepliesIn: 1, Announcements: 1, Queued: 3, Released: 3, Entries: 1}, s)
	checkInvariants(t, c)
}

// TestResolveAhead: an empty packet starts a resolution and queues nothing.
func TestResolveAhead(t *testing.T) {
	c := newCache(t, Config{})
	mac, v := c.Resolve(0, ipA, nil)
	assert.Equal(t, Queued, v)
	assert.Nil(t, mac)
	assert.Equal(t, []frame{wantRequest(ipA, nil)}, poll(c, 0))
	c.Input(0, reply(macA, ipA, ourMAC, ourIP))
	assert.Empty(t, poll(c, 0))
	assert.Zero(t, c.Stats().Queued)
	assert.Equal(t, Reachable, state(c, 0, ipA))
}

// TestRetryAndFailure: requests at 0, 1 and 2 s, failure at 3 s (Linux's
// defaults), queued packets dropped and counted, the failure reported
// once by NextFailure, Unreachable for FailedTime, then a new resolution.
func TestRetryAndFailure(t *testing.T) {
	c := newCache(t, Config{})
	t0 := time.Minute
	for i := range 2 {
		_, v := c.Resolve(t0, ipA, ipPacket(i))
		require.Equal(t, Queued, v)
	}
	for _, step := range []struct {
		at   time.Duration // offset from t0
		sent int           // requests sent at that time
	}{{0, 1}, {time.Second, 1}, {2 * time.Second, 1}} {
		now := t0 + step.at
		at, ok := c.Deadline()
		require.True(t, ok)
		require.Equal(t, now, at, "deadline before the request at %v", step.at)
		assert.Empty(t, poll(c, now-time.Nanosecond), "nothing before the deadline")
		assert.Equal(t, []frame{wantRequest(ipA, nil)}, poll(c, now), "request at %v", step.at)
		checkInvariants(t, c)
	}
	at, _ := c.Deadline()
	require.Equal(t, t0+3*time.Second, at, "failure a RetransTime after the last request")
	assert.Equal(t, Incomplete, state(c, at-time.Nanosecond, ipA))
	_, ok := c.NextFailure()
	require.False(t, ok)
	assert.Empty(t, poll(c, at), "failure sends nothing")
	assert.Equal(t, Failed, state(c, at, ipA))
	failed, ok := c.NextFailure()
	require.True(t, ok)
	assert.Equal(t, ipA, failed)
	_, ok = c.NextFailure()
	assert.False(t, ok, "reported once")
	_, ok = c.Deadline()
	assert.False(t, ok)
	s := c.Stats()
	assert.Equal(t, uint64(3), s.RequestsOut)
	assert.Equal(t, uint64(1), s.Failures)
	assert.Equal(t, uint64(2), s.Unreachable, "the queued packets")
	assert.Zero(t, s.QueuedBytes)

	failedAt := at
	_, v := c.Resolve(failedAt+5*time.Second-1, ipA, ipPacket(9))
	assert.Equal(t, Unreachable, v, "within FailedTime")
	assert.Equal(t, uint64(3), c.Stats().Unreachable)
	_, v = c.Resolve(failedAt+5*time.Second, ipA, ipPacket(10))
	assert.Equal(t, Queued, v, "FailedTime is over: a new resolution")
	assert.Equal(t, []frame{wantRequest(ipA, nil)}, poll(c, failedAt+5*time.Second))
	checkInvariants(t, c)
}

// TestQueueBounds: a neighbour's queue keeps its latest MaxQueue packets
// (RFC 1122 2.3.2.2), and all queues together stay within MaxQueueBytes.
func TestQueueBounds(t *testing.T) {
	t.Run("per neighbour", func(t *testing.T) {
		c := newCache(t, Config{MaxQueue: 3})
		for i := range 5 {
			_, v := c.Resolve(0, ipA, ipPacket(i))
			assert.Equal(t, Queued, v, "the oldest packet makes room")
		}
		assert.Equal(t, uint64(2), c.Stats().QueueDrops)
		poll(c, 0)
		c.Input(0, reply(macA, ipA, ourMAC, ourIP))
		assert.Equal(t, []frame{{Dst: macA, IP: ipPacket(2)}, {Dst: macA, IP: ipPacket(3)}, {Dst: macA, IP: ipPacket(4)}}, poll(c, 0))
	})
	t.Run("all neighbours", func(t *testing.T) {
		c := newCache(t, Config{MaxQueueBytes: 100})
		big := make([]byte, 40)
		for range 2 {
			_, v := c.Resolve(0, ipA, big)
			require.Equal(t, Queued, v)
		}
		_, v := c.Resolve(0, ipB, big)
		assert.Equal(t, Dropped, v, "A holds 80 of the 100 bytes")
		_, v = c.Resolve(0, ipB, big[:20])
		assert.Equal(t, Queued, v)
		_, v = c.Resolve(0, ipA, big)
		assert.Equal(t, Queued, v, "A drops its oldest to make room")
		_, v = c.Resolve(0, ipC, make([]byte, 101))
		assert.Equal(t, Dropped, v, "larger than the bound")
		s := c.Stats()
		assert.Equal(t, 100, s.QueuedBytes)
		assert.Equal(t, uint64(3), s.QueueDrops)
		checkInvariants(t, c)
	})
}

// TestReachableStaleProbe: a confirmation lasts ReachableTime; the next use
// sends to the old MAC and probes it by unicast; a reply confirms it again,
// and silence ends in Failed.
func TestReachableStaleProbe(t *testing.T) {
	c := newCache(t, Config{})
	c.Input(0, reply(macA, ipA, ourMAC, ourIP))
	assert.Equal(t, Reachable, state(c, 30*time.Second-1, ipA))
	assert.Equal(t, Stale, state(c, 30*time.Second, ipA))
	_, ok := c.Deadline()
	assert.False(t, ok, "going stale needs no timer")

	now := 40 * time.Second
	mac, v := c.Resolve(now, ipA, nil)
	assert.Equal(t, Send, v, "a stale entry is used")
	assert.Equal(t, macA, mac)
	assert.Equal(t, Probe, state(c, now, ipA))
	assert.Equal(t, []frame{wantRequest(ipA, macA)}, poll(c, now), "unicast poll (RFC 1122 2.3.2.1)")
	_, v = c.Resolve(now, ipA, nil)
	assert.Equal(t, Send, v, "still used while probing")
	assert.Empty(t, poll(c, now), "one probe")

	c.Input(now+time.Second/2, reply(macA, ipA, ourMAC, ourIP))
	assert.Equal(t, Reachable, state(c, now+time.Second/2, ipA))
	_, ok = c.Deadline()
	assert.False(t, ok, "the probe stopped")

	// Silence this time: probes at +0, 1, 2 s, the first unicast and
	// the retries broadcast, and failure at 3 s.
	now += time.Minute
	c.Resolve(now, ipA, nil)
	var sent []frame
	for d := time.Duration(0); d <= 3*time.Second; d += 100 * time.Millisecond {
		sent = append(sent, poll(c, now+d)...)
	}
	bcast := wantRequest(ipA, nil)
	assert.Equal(t, []frame{wantRequest(ipA, macA), bcast, bcast}, sent)
	assert.Equal(t, Failed, state(c, now+3*time.Second, ipA))
	_, v = c.Resolve(now+3*time.Second, ipA, nil)
	assert.Equal(t, Unreachable, v)
	checkInvariants(t, c)
}

// TestStaticEntries: static entries are used at once, ignore ARP and are
// never evicted.
func TestStaticEntries(t *testing.T) {
	c := newCache(t, Config{MaxEntries: 2})
	_, v := c.Resolve(0, ipA, ipPacket(1))
	require.Equal(t, Queued, v)
	require.NoError(t, c.AddStatic(0, ipA, macA))
	assert.Equal(t, []frame{{Dst: macA, IP: ipPacket(1)}}, poll(c, 0), "the queue leaves; no request")
	_, ok := c.Deadline()
	assert.False(t, ok)

	c.Input(time.Second, reply(macB, ipA, ourMAC, ourIP))
	c.Input(time.Second, request(macB, ipA, ourIP))
	c.Input(time.Second, request(macB, ipA, ipA))
	e, _ := c.Lookup(time.Hour, ipA)
	assert.Equal(t, Entry{IP: ipA, MAC: macA, State: Static, Age: time.Hour}, e, "ARP cannot overwrite it, nor time age it out")
	assert.Len(t, poll(c, time.Second), 1, "the request for us still gets its reply")

	require.NoError(t, c.AddStatic(0, ipB, macB))
	_, v = c.Resolve(0, ipC, nil)
	assert.Equal(t, Dropped, v, "no room: every entry is static")
	assert.ErrorIs(t, c.AddStatic(0, ipC, macA), ErrFull)
	assert.Equal(t, uint64(2), c.Stats().TableFull)
	for i := range 1000 {
		c.Input(0, request(macB, netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), ourIP))
	}
	assert.Equal(t, Static, state(c, 0, ipA))
	assert.Equal(t, Static, state(c, 0, ipB))

	assert.Error(t, c.AddStatic(0, ourIP, macA), "our own address")
	assert.Error(t, c.AddStatic(0, ipA, wire.BroadcastMAC))
	require.NoError(t, c.AddStatic(0, ipA, macA2), "a static entry may be replaced")
	mac, _ := c.Resolve(0, ipA, nil)
	assert.Equal(t, macA2, mac)
	checkInvariants(t, c)
}

// TestEviction: a full table evicts failed entries first, then the least
// recently updated; unsolicited ARP may only displace failed or stale ones.
func TestEviction(t *testing.T) {
	c := newCache(t, Config{MaxEntries: 3})
	c.Input(0, reply(macA, ipA, ourMAC, ourIP))           // A: Reachable
	c.Input(time.Second, reply(macB, ipB, ourMAC, ourIP)) // B: Reachable
	c.Resolve(2*time.Second, ipC, nil)                    // C: Incomplete
	for d := 2 * time.Second; d <= 17*time.Second; d += time.Second {
		poll(c, d)
	}
	require.Equal(t, Failed, state(c, 17*time.Second, ipC))

	ipD, ipE, ipF := netip.MustParseAddr("198.18.0.13"), netip.MustParseAddr("198.18.0.14"), netip.MustParseAddr("198.18.0.15")
	now := 20 * time.Second
	c.Input(now, request(macA, ipD, ourIP))
	_, ok := c.Lookup(now, ipC)
	assert.False(t, ok, "the failed entry goes first")
	assert.Equal(t, Stale, state(c, now, ipD), "learnt from a request")

	c.Input(now, request(macA, ipE, ourIP))
	_, ok = c.Lookup(now, ipE)
	assert.False(t, ok, "A, B are reachable and D is newer: a request cannot displace them")
	assert.Equal(t, uint64(1), c.Stats().TableFull)

	_, v := c.Resolve(now, ipE, nil)
	assert.Equal(t, Queued, v, "the stack's own need evicts the least recently updated")
	_, ok = c.Lookup(now, ipA)
	assert.False(t, ok, "A was confirmed first")

	now = time.Minute // B has gone stale
	c.Input(now, request(macA, ipF, ourIP))
	_, ok = c.Lookup(now, ipB)
	assert.False(t, ok, "a stale entry may be displaced by a request")
	assert.Equal(t, uint64(3), c.Stats().Evictions)
	checkInvariants(t, c)
}

// TestDeadline: Deadline reports the earliest work: pending replies at the
// time they were queued, timers at their due time, nothing when idle.
func TestDeadline(t *testing.T) {
	c := newCache(t, Config{})
	_, ok := c.Deadline()
	assert.False(t, ok, "idle")

	c.Resolve(3*time.Second, ipA, nil)
	c.Resolve(5*time.Second, ipB, nil)
	at, _ := c.Deadline()
	assert.Equal(t, 3*time.Second, at, "the earliest timer")
	poll(c, 5*time.Second)
	at, _ = c.Deadline()
	assert.Equal(t, 6*time.Second, at, "both retries at 6 s")

	c.Input(5500*time.Millisecond, request(macB, ipB, ourIP))
	at, _ = c.Deadline()
	assert.Equal(t, 5500*time.Millisecond, at, "a reply is due")
	poll(c, 5500*time.Millisecond)
	at, _ = c.Deadline()
	assert.Equal(t, 6*time.Second, at, "B resolved (stale); A's retry remains")

	// Not taken (no transmit buffer): the item stays due.
	c.Input(5600*time.Millisecond, request(macB, ipB, ourIP))
	at, _ = c.Deadline()
	assert.Equal(t, 5600*time.Millisecond, at)
}

// TestOutputBackpressure: a caller that stops taking frames (out of
// transmit buffers) finds the rest, in order, at its next calls.
func TestOutputBackpressure(t *testing.T) {
	c := newCache(t, Config{})
	for i := range 4 {
		c.Resolve(0, ipA, ipPacket(i))
	}
	poll(c, 0)
	c.Input(0, reply(macA, ipA, ourMAC, ourIP))
	c.Input(0, request(macB, ipB, ourIP))

	var got []frame
	for range 10 {
		got = append(got, pollN(c, 0, 2)...)
	}
	assert.Equal(t, []frame{wantReply(macB, ipB),
		{Dst: macA, IP: ipPacket(0)}, {Dst: macA, IP: ipPacket(1)}, {Dst: macA, IP: ipPacket(2)}, {Dst: macA, IP: ipPacket(3)}}, got)
	checkInvariants(t, c)
}

// TestResolveRefusesNonNeighbours: addresses that ARP cannot resolve.
func TestResolveRefusesNonNeighbours(t *testing.T) {
	c := newCache(t, Config{})
	for _, ip := range []string{"2001:db8::1", "::ffff:198.18.0.10", "0.0.0.0", "127.0.0.1", "224.0.0.1", "255.255.255.255", "198.18.0.1"} {
		_, v := c.Resolve(0, netip.MustParseAddr(ip), nil)
		assert.Equal(t, Unreachable, v, ip)
	}
	_, v := c.Resolve(0, netip.Addr{}, nil)
	assert.Equal(t, Unreachable, v, "zero Addr")
	assert.Zero(t, c.Stats().Entries)
}

// TestRequestSource: a request goes out from our address on the target's
// link.
func TestRequestSource(t *testing.T) {
	other := netip.MustParseAddr("10.1.2.3")
	c := newCache(t, Config{Addrs: []netip.Prefix{netip.PrefixFrom(ourIP, 15), netip.PrefixFrom(other, 8)}})
	c.Resolve(0, netip.MustParseAddr("10.9.9.9"), nil)
	c.Resolve(0, netip.MustParseAddr("192.0.2.1"), nil)
	got := poll(c, 0)
	require.Len(t, got, 2)
	assert.Equal(t, other, got[0].ARP.SenderIP)
	assert.Equal(t, ourIP, got[1].ARP.SenderIP, "off every prefix: the first address")
}

func TestEntries(t *testing.T) {
	c := newCache(t, Config{})
	c.Input(0, reply(macA, ipA, ourMAC, ourIP))
	c.Resolve(time.Second, ipB, ipPacket(0))
	got := map[netip.Addr]Entry{}
	c.Entries(2*time.Second, func(e Entry) { got[e.IP] = e })
	assert.Equal(t, map[netip.Addr]Entry{
		ipA: {IP: ipA, MAC: macA, State: Reachable, Age: 2 * time.Second},
		ipB: {IP: ipB, State: Incomplete, Age: time.Second, Queued: 1},
	}, got)
	e, _ := c.Lookup(0, ipA)
	e.MAC[0] = 0xff
	mac, _ := c.Resolve(0, ipA, nil)
	assert.Equal(t, macA, mac, "an Entry's MAC is a copy")
	_, ok := c.Lookup(0, netip.MustParseAddr("2001:db8::1"))
	assert.False(t, ok)
	assert.Equal(t, "REACHABLE", Reachable.String())
	assert.Equal(t, "Unreachable", Unreachable.String())
}

// TestFailureNoticesBounded: failures nobody takes are kept up to 16,
// the rest counted, so an owner that never calls NextFailure costs no
// memory.
func TestFailureNoticesBounded(t *testing.T) {
	c := newCache(t, Config{})
	for i := range 20 {
		c.Resolve(0, netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), ipPacket(i))
	}
	for d := time.Duration(0); d <= 3*time.Second; d += 500 * time.Millisecond {
		poll(c, d)
	}
	n := 0
	for _, ok := c.NextFailure(); ok; _, ok = c.NextFailure() {
		n++
	}
	assert.Equal(t, 16, n)
	assert.Equal(t, uint64(20), c.Stats().Failures)
	assert.Equal(t, uint64(4), c.Stats().FailureNoticeDrops)
}
