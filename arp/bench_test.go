package arp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSteadyStateDoesNotAllocate: the hit path (Resolve of a reachable
// neighbour), Input from a known neighbour, and Output sending replies and
// probes allocate nothing.
func TestSteadyStateDoesNotAllocate(t *testing.T) {
	c := newCache(t, Config{})
	c.Input(0, reply(macA, ipA, ourMAC, ourIP))
	pkt := ipPacket(0)
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		if _, v := c.Resolve(time.Second, ipA, pkt); v != Send {
			panic(v)
		}
	}), "Resolve hit")

	in := reply(macA, ipA, ourMAC, ourIP)
	req := request(macA, ipA, ourIP)
	var out discard
	now := time.Second
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		now += time.Second
		c.Input(now, in)
		c.Input(now, req)
		out.drain(c, now)
	}), "Input and a reply")
	require.Equal(t, 1001, out.arp)

	// Each round: A goes stale, is used, probed, confirmed.
	assert.Zero(t, testing.AllocsPerRun(100, func() {
		now += time.Minute
		c.Resolve(now, ipA, pkt)
		out.drain(c, now)
		c.Input(now, in)
	}), "probe")
	require.Equal(t, 1001+101, out.arp)
	assert.Equal(t, Reachable, state(c, now, ipA))
}

// BenchmarkResolveHit is the per-packet cost of finding a reachable
// neighbour's MAC.
func BenchmarkResolveHit(b *testing.B) {
	c := newCache(b, Config{})
	c.Input(0, reply(macA, ipA, ourMAC, ourIP))
	pkt := ipPacket(0)
	b.ReportAllocs()
	for b.Loop() {
		if _, v := c.Resolve(time.Second, ipA, pkt); v != Send {
			b.Fatal(v)
		}
	}
}

// BenchmarkInputReply is the cost of a reply from a known neighbour
// addressed to us: check, merge, re-confirm.
func BenchmarkInputReply(b *testing.B) {
	c := newCache(b, Config{})
	in := reply(macA, ipA, ourMAC, ourIP)
	c.Input(0, in)
	b.ReportAllocs()
	for b.Loop() {
		c.Input(time.Second, in)
	}
}

// BenchmarkRequestReply is the cost of answering a request for our
// address: Input, then an Output that writes the reply.
func BenchmarkRequestReply(b *testing.B) {
	c := newCache(b, Config{})
	in := request(macA, ipA, ourIP)
	var out discard
	b.ReportAllocs()
	for b.Loop() {
		c.Input(time.Second, in)
		out.drain(c, time.Second)
	}
}
