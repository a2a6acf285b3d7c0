package arp

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// TestLockTimeFirstReplyWins: when two hosts answer one request, the first
// reply gives the MAC and a different one within LockTime is refused, as
// Linux's locktime (a reply at exactly LockTime is still refused: Linux
// overrides only after it).
func TestLockTimeFirstReplyWins(t *testing.T) {
	c := newCache(t, Config{})
	c.Resolve(0, ipA, ipPacket(1))
	poll(c, 0)
	at := 100 * time.Millisecond
	c.Input(at, reply(macA, ipA, ourMAC, ourIP))
	c.Input(at+time.Second/2, reply(macA2, ipA, ourMAC, ourIP))
	c.Input(at+time.Second, reply(macA2, ipA, ourMAC, ourIP))
	e, _ := c.Lookup(at+time.Second, ipA)
	assert.Equal(t, macA, e.MAC)
	assert.Equal(t, Reachable, e.State)
	assert.Equal(t, uint64(2), c.Stats().LockedOut)
	assert.Equal(t, []frame{{Dst: macA, IP: ipPacket(1)}}, poll(c, at+time.Second))
	checkInvariants(t, c)
}

// TestProbeAnsweredFromNewMAC: a neighbour that moved to another MAC is
// found by the probe's broadcast retry; its reply within LockTime of the
// probe's start is refused, its reply to the retry accepted.
func TestProbeAnsweredFromNewMAC(t *testing.T) {
	c := newCache(t, Config{})
	c.Input(0, reply(macA, ipA, ourMAC, ourIP))
	now := time.Minute // stale
	_, v := c.Resolve(now, ipA, nil)
	assert.Equal(t, Send, v)
	assert.Equal(t, []frame{wantRequest(ipA, macA)}, poll(c, now), "unicast poll to the old MAC")

	c.Input(now+time.Second/2, reply(macA2, ipA, ourMAC, ourIP))
	assert.Equal(t, uint64(1), c.Stats().LockedOut, "within LockTime of the probe's start")

	now += time.Second
	assert.Equal(t, []frame{wantRequest(ipA, nil)}, poll(c, now), "broadcast retry")
	c.Input(now+time.Millisecond, reply(macA2, ipA, ourMAC, ourIP))
	e, _ := c.Lookup(now+time.Millisecond, ipA)
	assert.Equal(t, Entry{IP: ipA, MAC: macA2, State: Reachable}, e, "the reply answers our probe")
	_, ok := c.Deadline()
	assert.False(t, ok, "the probe stopped")
	assert.Zero(t, c.Stats().Unsolicited)
	checkInvariants(t, c)
}

// TestUnsolicitedReplyRefused: a spoofed reply to us that remaps a
// confirmed neighbour, past LockTime, is refused (Linux takes it); the
// entry goes Stale with the real MAC, its next use probes that MAC, the
// real neighbour answers, and the spoofer's replies during the probe are
// locked out. Traffic never goes to the spoofed MAC.
func TestUnsolicitedReplyRefused(t *testing.T) {
	c := newCache(t, Config{})
	c.Input(0, reply(macA, ipA, ourMAC, ourIP))
	spoof := reply(macA2, ipA, ourMAC, ourIP)

	now := 5 * time.Second
	c.Input(now, spoof)
	e, _ := c.Lookup(now, ipA)
	assert.Equal(t, Entry{IP: ipA, MAC: macA, State: Stale}, e)
	assert.Equal(t, uint64(1), c.Stats().Unsolicited)

	mac, v := c.Resolve(now, ipA, ipPacket(1))
	assert.Equal(t, Send, v)
	assert.Equal(t, macA, mac, "still the real MAC")
	assert.Equal(t, []frame{wantRequest(ipA, macA)}, poll(c, now), "the old MAC is probed")
	c.Input(now+time.Millisecond, spoof)
	c.Input(now+2*time.Millisecond, reply(macA, ipA, ourMAC, ourIP))
	c.Input(now+time.Second, spoof)
	c.Input(now+3*time.Second, spoof)
	e, _ = c.Lookup(now+3*time.Second, ipA)
	assert.Equal(t, macA, e.MAC)
	s := c.Stats()
	assert.Equal(t, uint64(2), s.LockedOut, "during the probe and right after the confirmation")
	assert.Equal(t, uint64(2), s.Unsolicited)
	mac, v = c.Resolve(now+3*time.Second, ipA, ipPacket(2))
	assert.Equal(t, Send, v)
	assert.Equal(t, macA, mac)
	checkInvariants(t, c)
}

// TestUnsolicitedNewMAC: a new MAC for a known, unconfirmed neighbour from
// a request or a reply that answers nothing of ours is refused and leaves
// the entry as it was; the same MAC from a reply confirms it.
func TestUnsolicitedNewMAC(t *testing.T) {
	for _, tc := range []struct {
		in   wire.ARP
		sent []frame
	}{
		{request(macA2, ipA, ourIP), []frame{wantReply(macA2, ipA)}}, // RFC 826 answers the requester
		{request(macA2, ipA, ipB), nil},
		{reply(macA2, ipA, ourMAC, ourIP), nil},
	} {
		c := newCache(t, Config{})
		c.Input(0, request(macA, ipA, ourIP))
		poll(c, 0)
		c.Input(10*time.Second, tc.in)
		e, _ := c.Lookup(10*time.Second, ipA)
		assert.Equal(t, Entry{IP: ipA, MAC: macA, State: Stale, Age: 10 * time.Second}, e, "op %d", tc.in.Op())
		assert.Equal(t, uint64(1), c.Stats().Unsolicited)
		assert.Equal(t, tc.sent, poll(c, 10*time.Second))
	}
}

// TestGratuitousARP: gratuitous ARP, in request form and in reply form
// (target MAC = sender MAC, as Linux's arp_is_garp asks), is handled as
// Linux with arp_accept=0: it adds no entry, and it gives a known neighbour
// its new MAC at once, lock time or not, as Stale. The same MAC changes
// nothing; a static entry ignores it.
func TestGratuitousARP(t *testing.T) {
	garpReply := func(mac net.HardwareAddr) wire.ARP { return reply(mac, ipA, mac, ipA) }
	for _, tc := range []struct {
		name   string
		in     wire.ARP
		before bool  // ipA is Reachable at macA, confirmed at 0
		want   Entry // at 0.5 s, within LockTime
	}{
		{"request form, unknown sender: not learnt", request(macA2, ipA, ipA), false, Entry{}},
		{"reply form, unknown sender: not learnt", garpReply(macA2), false, Entry{}},
		{"request form, new MAC: taken", request(macA2, ipA, ipA), true, Entry{IP: ipA, MAC: macA2, State: Stale}},
		{"reply form, new MAC: taken", garpReply(macA2), true, Entry{IP: ipA, MAC: macA2, State: Stale}},
		{"request form, same MAC: unchanged", request(macA, ipA, ipA), true,
			Entry{IP: ipA, MAC: macA, State: Reachable, Age: time.Second / 2}},
		{"reply form with another target MAC: not gratuitous, locked out", reply(macA2, ipA, macB, ipA), true,
			Entry{IP: ipA, MAC: macA, State: Reachable, Age: time.Second / 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(t, Config{})
			if tc.before {
				c.Input(0, reply(macA, ipA, ourMAC, ourIP))
			}
			c.Input(time.Second/2, tc.in)
			e, _ := c.Lookup(time.Second/2, ipA)
			assert.Equal(t, tc.want, e)
			assert.Empty(t, poll(c, time.Second/2), "gratuitous ARP is not answered")
			checkInvariants(t, c)
		})
	}

	c := newCache(t, Config{})
	c.AddStatic(0, ipA, macA)
	c.Input(time.Second, request(macA2, ipA, ipA))
	e, _ := c.Lookup(time.Second, ipA)
	assert.Equal(t, macA, e.MAC, "static")
	assert.Equal(t, uint64(1), c.Stats().Gratuitous)
}
