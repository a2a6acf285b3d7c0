package arp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
)

// TestReplyToRequestForUs: RFC 826's reply, with exact fields, to a sender
// we did not know, who is learnt as Stale.
func TestReplyToRequestForUs(t *testing.T) {
	c := newCache(t, Config{})
	c.Input(time.Second, request(macA, ipA, ourIP))
	at, ok := c.Deadline()
	assert.True(t, ok)
	assert.Equal(t, time.Second, at)
	got := poll(c, time.Second)
	assert.Equal(t, []frame{wantReply(macA, ipA)}, got)
	assert.Equal(t, frame{Dst: macA, ARP: &wire.ARPFields{Op: wire.ARPReply,
		SenderMAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}, SenderIP: netip.MustParseAddr("198.18.0.1"),
		TargetMAC: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}, TargetIP: netip.MustParseAddr("198.18.0.10")}}, got[0],
		"spelt out")
	assert.Equal(t, Stale, state(c, time.Second, ipA), "a request proves nothing about reachability")

	c.Input(2*time.Second, request(macB, ipB, ipC))
	assert.Empty(t, poll(c, 2*time.Second), "not for us")
	s := c.Stats()
	assert.Equal(t, uint64(2), s.RequestsIn)
	assert.Equal(t, uint64(1), s.RepliesOut)
}

// TestMergeRule: RFC 826's merge: an unknown sender is learnt only from
// packets addressed to us; a known sender's MAC is confirmed by a reply to
// us, and a new one is taken only from gratuitous ARP (lock_test.go has
// the rest). Packets arrive 2 s after the entry was made, past LockTime.
func TestMergeRule(t *testing.T) {
	ours := func(mac net.HardwareAddr) wire.ARP { return reply(mac, ipA, ourMAC, ourIP) }
	for _, tc := range []struct {
		name   string
		before wire.ARP // received at 0 s, nil for no entry
		in     wire.ARP // received at 2 s
		want   Entry    // at 2 s; the zero Entry for none
	}{
		{"unknown, request for us: learnt stale", nil, request(macA, ipA, ourIP),
			Entry{IP: ipA, MAC: macA, State: Stale}},
		{"unknown, reply to us: learnt reachable", nil, ours(macA),
			Entry{IP: ipA, MAC: macA, State: Reachable}},
		{"unknown, request for another host: not learnt", nil, request(macA, ipA, ipB), Entry{}},
		{"unknown, gratuitous: not learnt", nil, request(macA, ipA, ipA), Entry{}},
		{"unknown, reply to another host: not learnt", nil, reply(macA, ipA, macB, ipB), Entry{}},
		{"known, request for another host, new MAC: refused, revalidated", ours(macA), request(macA2, ipA, ipB),
			Entry{IP: ipA, MAC: macA, State: Stale}},
		{"known, request for us, new MAC: refused, revalidated", ours(macA), request(macA2, ipA, ourIP),
			Entry{IP: ipA, MAC: macA, State: Stale}},
		{"known, gratuitous request with a new MAC: updated, stale", ours(macA), request(macA2, ipA, ipA),
			Entry{IP: ipA, MAC: macA2, State: Stale}},
		{"known, request for another host, same MAC: unchanged", ours(macA), request(macA, ipA, ipB),
			Entry{IP: ipA, MAC: macA, State: Reachable, Age: 2 * time.Second}},
		{"known, request for us, same MAC: unchanged", ours(macA), request(macA, ipA, ourIP),
			Entry{IP: ipA, MAC: macA, State: Reachable, Age: 2 * time.Second}},
		{"known stale, reply to us: confirmed", request(macA, ipA, ourIP), ours(macA),
			Entry{IP: ipA, MAC: macA, State: Reachable}},
		{"known, unsolicited reply to us with a new MAC: refused, revalidated", ours(macA), ours(macA2),
			Entry{IP: ipA, MAC: macA, State: Stale}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(t, Config{})
			if tc.before != nil {
				c.Input(0, tc.before)
			}
			c.Input(2*time.Second, tc.in)
			got, ok := c.Lookup(2*time.Second, ipA)
			assert.Equal(t, tc.want.IP.IsValid(), ok)
			assert.Equal(t, tc.want, got)
			checkInvariants(t, c)
		})
	}
}

// TestMergeResolvesIncomplete: any ARP from a neighbour being resolved
// gives its MAC and releases its queue (RFC 826's merge), even a packet
// not addressed to us.
func TestMergeResolvesIncomplete(t *testing.T) {
	c := newCache(t, Config{})
	c.Resolve(0, ipA, ipPacket(1))
	poll(c, 0)
	c.Input(time.Second/2, request(macA, ipA, ipB))
	assert.Equal(t, Stale, state(c, time.Second/2, ipA))
	assert.Equal(t, []frame{{Dst: macA, IP: ipPacket(1)}}, poll(c, time.Second/2))
	_, ok := c.Deadline()
	assert.False(t, ok, "the retry is cancelled")
	checkInvariants(t, c)
}

// TestBogusSenders: packets that must not touch the table, nor be answered.
func TestBogusSenders(t *testing.T) {
	multicast := net.HardwareAddr{0x01, 0, 0x5e, 0, 0, 1}
	malformed := request(macA, ipA, ourIP)
	malformed[1] = 6 // htype 6 (IEEE 802)
	badOp := request(macA, ipA, ourIP)
	badOp[7] = 3 // RARP request
	for _, tc := range []struct {
		name string
		in   []byte
		want Stats
	}{
		{"truncated", request(macA, ipA, ourIP)[:27], Stats{Malformed: 1}},
		{"not Ethernet", malformed, Stats{Malformed: 1}},
		{"RARP op", badOp, Stats{Malformed: 1}},
		{"broadcast sender MAC", request(wire.BroadcastMAC, ipA, ourIP), Stats{RequestsIn: 1, BadSender: 1}},
		{"multicast sender MAC", request(multicast, ipA, ourIP), Stats{RequestsIn: 1, BadSender: 1}},
		{"zero sender MAC", request(zero, ipA, ourIP), Stats{RequestsIn: 1, BadSender: 1}},
		{"our MAC", reply(ourMAC, ipA, ourMAC, ourIP), Stats{RepliesIn: 1, BadSender: 1}},
		{"our IP from another MAC", request(macA, ourIP, ourIP), Stats{RequestsIn: 1, Conflicts: 1}},
		{"our IP in a reply", reply(macA, ourIP, ourMAC, ourIP), Stats{RepliesIn: 1, Conflicts: 1}},
		{"multicast sender IP", request(macA, netip.MustParseAddr("224.0.0.5"), ourIP), Stats{RequestsIn: 1, BadSender: 1}},
		{"broadcast sender IP", request(macA, limitedBroadcast, ourIP), Stats{RequestsIn: 1, BadSender: 1}},
		{"loopback sender IP", request(macA, netip.MustParseAddr("127.0.0.1"), ourIP), Stats{RequestsIn: 1, BadSender: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(t, Config{})
			c.Resolve(0, ipA, nil) // an entry a bogus packet must not resolve
			poll(c, 0)
			now := time.Second / 2 // before the retry
			c.Input(now, tc.in)
			tc.want.Announcements, tc.want.RequestsOut, tc.want.Entries = 1, 1, 1
			assert.Equal(t, tc.want, c.Stats())
			assert.Equal(t, Incomplete, state(c, now, ipA))
			assert.Empty(t, poll(c, now))
		})
	}
}

// TestProbeForOurAddress: an RFC 5227 probe for our address is answered
// (so the prober backs off) and teaches nothing; a probe for another
// address is ignored.
func TestProbeForOurAddress(t *testing.T) {
	c := newCache(t, Config{})
	unspecified := netip.IPv4Unspecified()
	c.Input(0, request(macA, unspecified, ourIP))
	c.Input(0, request(macB, unspecified, ipC))
	assert.Equal(t, []frame{wantReply(macA, unspecified)}, poll(c, 0))
	assert.Zero(t, c.Stats().Entries)
}

// TestPendingRepliesBounded: a burst of requests between two Outputs costs
// at most maxPendingReplies replies; the rest are counted.
func TestPendingRepliesBounded(t *testing.T) {
	c := newCache(t, Config{})
	for i := range maxPendingReplies + 10 {
		c.Input(0, request(macA, netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), ourIP))
	}
	assert.Equal(t, uint64(10), c.Stats().RepliesDropped)
	got := poll(c, 0)
	require.Len(t, got, maxPendingReplies)
	assert.Equal(t, netip.MustParseAddr("198.18.1.0"), got[0].ARP.TargetIP, "oldest first")
	c.Input(0, request(macA, ipA, ourIP))
	assert.Len(t, poll(c, 0), 1, "the ring wraps")
}
