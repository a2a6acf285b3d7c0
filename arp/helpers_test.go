package arp

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
)

var (
	ourMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	ourIP  = netip.MustParseAddr("198.18.0.1")
	macA   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	macA2  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xa2} // A after a NIC swap
	macB   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
	ipA    = netip.MustParseAddr("198.18.0.10")
	ipB    = netip.MustParseAddr("198.18.0.11")
	ipC    = netip.MustParseAddr("198.18.0.12")
	zero   = net.HardwareAddr{0, 0, 0, 0, 0, 0}
)

// newCache returns a cache for ourMAC and ourIP/15 with cfg's other fields,
// its announcement already sent.
func newCache(t testing.TB, cfg Config) *Cache {
	t.Helper()
	cfg.MAC = ourMAC
	if cfg.Addrs == nil {
		cfg.Addrs = []netip.Prefix{netip.PrefixFrom(ourIP, 15)}
	}
	c, err := New(cfg)
	require.NoError(t, err)
	poll(c, 0)
	return c
}

// arpPacket encodes f as a wire.ARP view.
func arpPacket(f wire.ARPFields) wire.ARP {
	b := make([]byte, wire.ARPLen)
	f.Encode(b)
	return b
}

// request is an ARP request from (mac, from) asking for to.
func request(mac net.HardwareAddr, from, to netip.Addr) wire.ARP {
	return arpPacket(wire.ARPFields{Op: wire.ARPRequest, SenderMAC: mac, SenderIP: from, TargetIP: to})
}

// reply is an ARP reply from (mac, from) to (toMAC, to).
func reply(mac net.HardwareAddr, from netip.Addr, toMAC net.HardwareAddr, to netip.Addr) wire.ARP {
	return arpPacket(wire.ARPFields{Op: wire.ARPReply, SenderMAC: mac, SenderIP: from, TargetMAC: toMAC, TargetIP: to})
}

// frame is one frame Output wrote, with every slice copied.
type frame struct {
	Dst net.HardwareAddr
	ARP *wire.ARPFields // nil for an IP packet
	IP  []byte
}

func (f frame) String() string {
	if f.ARP != nil {
		return fmt.Sprintf("ARP op %d to %v: %v/%v asks %v/%v", f.ARP.Op, f.Dst, f.ARP.SenderMAC, f.ARP.SenderIP, f.ARP.TargetMAC, f.ARP.TargetIP)
	}
	return fmt.Sprintf("IP to %v: % x", f.Dst, f.IP)
}

func clone(m net.HardwareAddr) net.HardwareAddr { return net.HardwareAddr(bytes.Clone(m)) }

// pollN calls Output at now until it reports nothing, or limit frames
// came if limit is above 0 (a poller out of transmit buffers), and
// returns them, parsed as the poller's peer would. A frame that does not
// parse panics, failing the test.
func pollN(c *Cache, now time.Duration, limit int) []frame {
	var got []frame
	b := make([]byte, 2048)
	for limit <= 0 || len(got) < limit {
		out, ok := c.Output(now, b)
		if !ok {
			break
		}
		f := frame{Dst: clone(out.DstMAC[:])}
		switch out.EtherType {
		case wire.EtherTypeARP:
			a := wire.ARP(b[:out.Len])
			if err := a.Check(); err != nil {
				panic(err)
			}
			f.ARP = &wire.ARPFields{Op: a.Op(), SenderMAC: clone(a.SenderMAC()), SenderIP: a.SenderIP(), TargetMAC: clone(a.TargetMAC()), TargetIP: a.TargetIP()}
		case wire.EtherTypeIPv4:
			f.IP = bytes.Clone(b[:out.Len])
		default:
			panic(fmt.Sprintf("EtherType %#x", out.EtherType))
		}
		got = append(got, f)
	}
	return got
}

// poll calls Output at now until it reports nothing and returns what it
// wrote.
func poll(c *Cache, now time.Duration) []frame { return pollN(c, now, 0) }

// wantRequest is the broadcast (or, with unicast set, probe) request for ip.
func wantRequest(ip netip.Addr, unicast net.HardwareAddr) frame {
	dst := wire.BroadcastMAC
	if unicast != nil {
		dst = unicast
	}
	return frame{Dst: dst, ARP: &wire.ARPFields{Op: wire.ARPRequest, SenderMAC: ourMAC, SenderIP: ourIP, TargetMAC: zero, TargetIP: ip}}
}

// wantReply is our reply to the requester (mac, ip).
func wantReply(mac net.HardwareAddr, ip netip.Addr) frame {
	return frame{Dst: mac, ARP: &wire.ARPFields{Op: wire.ARPReply, SenderMAC: ourMAC, SenderIP: ourIP, TargetMAC: mac, TargetIP: ip}}
}

// ipPacket is a stand-in IPv4 packet, distinct per n.
func ipPacket(n int) []byte { return []byte{0x45, 0, 0, 20, byte(n >> 8), byte(n)} }

// state returns ip's state at now, or 0 without an entry.
func state(c *Cache, now time.Duration, ip netip.Addr) State {
	e, _ := c.Lookup(now, ip)
	return e.State
}

// checkInvariants fails t if the cache is inconsistent (see invariants).
func checkInvariants(t testing.TB, c *Cache) {
	t.Helper()
	require.NoError(t, invariants(c))
}

// invariants checks the cache's internal consistency: the bounds, the
// eviction lists, the timer heap and the queue accounting. It returns an
// error rather than asserting, to keep the fuzz target fast.
func invariants(c *Cache) error {
	switch {
	case len(c.table) > c.cfg.MaxEntries:
		return fmt.Errorf("%d entries, more than %d", len(c.table), c.cfg.MaxEntries)
	case c.queuedBytes > c.cfg.MaxQueueBytes:
		return fmt.Errorf("%d bytes queued, more than %d", c.queuedBytes, c.cfg.MaxQueueBytes)
	case c.replyLen > len(c.replies):
		return fmt.Errorf("%d pending replies", c.replyLen)
	}
	inList := map[*entry]*list{}
	for _, l := range []*list{&c.lru, &c.failed} {
		var prev *entry
		for e := l.head; e != nil; e = e.next {
			if e.prev != prev {
				return fmt.Errorf("%v: bad back link", e.ip)
			}
			if inList[e] != nil {
				return fmt.Errorf("%v: in a list twice", e.ip)
			}
			inList[e] = l
			prev = e
		}
		if l.tail != prev {
			return fmt.Errorf("bad list tail")
		}
	}
	static, bytes := 0, 0
	for k, e := range c.table {
		n := 0
		for _, p := range e.queue {
			n += len(p)
		}
		bytes += n
		if e.state == Static {
			static++
		}
		switch {
		case netip.AddrFrom4(k) != e.ip:
			return fmt.Errorf("%v filed under %v", e.ip, netip.AddrFrom4(k))
		case !neighbourIP(e.ip) || c.own(e.ip):
			return fmt.Errorf("entry for %v", e.ip)
		case c.listOf(e.state) != inList[e]:
			return fmt.Errorf("%v: %v, in the wrong list", e.ip, e.state)
		case len(e.queue) > c.cfg.MaxQueue:
			return fmt.Errorf("%v: %d packets queued", e.ip, len(e.queue))
		case n != e.queueBytes:
			return fmt.Errorf("%v: %d bytes queued, %d counted", e.ip, n, e.queueBytes)
		case (e.state == Incomplete || e.state == Probe) && e.index < 0:
			return fmt.Errorf("%v: %v without a timer", e.ip, e.state)
		case len(e.queue) > 0 && e.index < 0:
			return fmt.Errorf("%v: %v with packets queued but no timer", e.ip, e.state)
		case len(e.queue) > 0 && e.state == Failed:
			return fmt.Errorf("%v: failed with packets queued", e.ip)
		}
	}
	if len(inList) != len(c.table)-static {
		return fmt.Errorf("%d entries in lists, %d non-static", len(inList), len(c.table)-static)
	}
	if bytes != c.queuedBytes {
		return fmt.Errorf("%d bytes queued, %d counted", bytes, c.queuedBytes)
	}
	for i, e := range c.timers {
		switch {
		case e.index != i:
			return fmt.Errorf("%v: timer index %d at %d", e.ip, e.index, i)
		case c.table[e.ip.As4()] != e:
			return fmt.Errorf("%v: timer for an entry not in the table", e.ip)
		case i > 0 && c.less(i, (i-1)/2):
			return fmt.Errorf("heap order broken at %d", i)
		}
	}
	return nil
}
