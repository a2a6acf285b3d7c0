package sockapi

import (
	"io"
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/nic"
)

// fillDistinct sets every counter of struct v, arrays' elements
// included, to a value no other has, from *next on, and records where
// each value came from.
func fillDistinct(t *testing.T, v reflect.Value, path string, next *uint64, from map[uint64]string) {
	for i := range v.NumField() {
		f, name := v.Field(i), path+"."+v.Type().Field(i).Name
		switch {
		case f.Kind() == reflect.Struct:
			fillDistinct(t, f, name, next, from)
		case f.Kind() == reflect.Array:
			for j := range f.Len() {
				f.Index(j).SetUint(*next)
				from[*next] = name
				*next++
			}
		case f.CanUint():
			f.SetUint(*next)
		case f.CanInt():
			f.SetInt(int64(*next))
		default:
			t.Fatalf("%s: a %s is no counter", name, f.Type())
		}
		if f.Kind() != reflect.Struct && f.Kind() != reflect.Array {
			from[*next] = name
			*next++
		}
	}
}

// TestCountersTranslation: every counter of the cores, the poller, the
// link and the rings, each set to a value of its own, comes out of List
// under some name, and every listed value comes from one of them: no
// core counter is lost and none is made up. The names are unique, in
// nstat's groups and order, Linux's before xdpnet's own; a few are
// checked against the core counter they must name.
func TestCountersTranslation(t *testing.T) {
	var q queueStats
	from := map[uint64]string{}
	next := uint64(1000)
	for name, p := range map[string]any{"link": &q.link, "ring": &q.ring, "poller": &q.poller, "arp": &q.arp,
		"ip": &q.ip, "udp": &q.udp, "tcp": &q.tcp} {
		fillDistinct(t, reflect.ValueOf(p).Elem(), name, &next, from)
	}
	require.Equal(t, 7, reflect.TypeFor[queueStats]().NumField(), "a queueStats field the test does not fill")
	var c Counters
	c.add(q)
	list := c.List()

	listed := map[uint64]bool{}
	names := map[string]uint64{}
	groups := []string{"IpExt", "IcmpMsg", "Icmp", "TcpExt", "Tcp", "Udp", "Ip", "Xdpnet"}
	order := map[string]int{"Ip": 0, "Icmp": 1, "IcmpMsg": 2, "Tcp": 3, "Udp": 4, "TcpExt": 5, "IpExt": 6, "Xdpnet": 7}
	last := 0
	for _, n := range list {
		_, dup := names[n.Name]
		assert.False(t, dup, "%s listed twice", n.Name)
		names[n.Name] = n.Value
		listed[n.Value] = true
		assert.Contains(t, from, n.Value, "%s = %d comes from no core counter", n.Name, n.Value)
		group := ""
		for _, g := range groups {
			if strings.HasPrefix(n.Name, g) && len(n.Name) > len(g) {
				group = g
				break
			}
		}
		require.NotEmpty(t, group, "%s: in no nstat group and not Xdpnet…", n.Name)
		assert.GreaterOrEqual(t, order[group], last, "%s out of nstat's order", n.Name)
		last = order[group]
	}
	for val, field := range from {
		assert.True(t, listed[val], "%s is in no counter", field)
	}

	for name, want := range map[string]uint64{
		"IpInReceives":          q.ip.IP.InReceives,
		"IpExtInCsumErrors":     q.ip.IP.InCsumErrors,
		"IcmpInEchos":           q.ip.ICMP.InEchos,
		"IcmpMsgInType8":        q.ip.ICMP.InType[8],
		"IcmpMsgOutType0":       q.ip.ICMP.OutType[0],
		"UdpInDatagrams":        q.udp.InDatagrams,
		"TcpActiveOpens":        q.tcp.ActiveOpens,
		"TcpRetransSegs":        q.tcp.RetransSegs,
		"TcpExtTCPSackRecovery": q.tcp.SackRecovery,
		"TcpExtPAWSEstab":       q.tcp.PAWSDrops,
		"TcpExtListenOverflows": q.tcp.ListenOverflows,
		"XdpnetPollerRounds":    q.poller.Rounds,
		"XdpnetRingRxRingFull":  q.ring.RxRingFull,
		"XdpnetArpEntries":      uint64(q.arp.Entries),
	} {
		assert.Equal(t, want, names[name], name)
	}

	// Two queues: the stack's counters and the queues' summed figures
	// double, name by name; each queue keeps its own.
	c.add(q)
	for i, n := range c.List() {
		assert.Equal(t, list[i].Name, n.Name)
		assert.Equal(t, 2*list[i].Value, n.Value, n.Name)
	}
	require.Len(t, c.Queues, 2)
	assert.Equal(t, c.Queues[0], c.Queues[1])
}

// TestCountersExchange: between two stacks on a pipe, three TCP
// connections (dial, one echoed message, close) and six UDP datagrams,
// one to a port nobody holds, move the counters by exactly what
// happened: the opens on each side, the datagrams, the port unreachable
// and its ICMP error; and, once the pipe is quiet, every IP packet one
// stack sent is one the other received, each counted in the protocol it
// carried and each a frame of the link.
func TestCountersExchange(t *testing.T) {
	la, lb := nic.NewPipe(nic.PipeConfig{})
	a, err := New(Config{Addr: netip.MustParsePrefix("198.18.0.2/24")}, la)
	require.NoError(t, err)
	defer a.Close()
	b, err := New(Config{Addr: netip.MustParsePrefix("198.18.0.3/24")}, lb)
	require.NoError(t, err)
	defer b.Close()
	ln, err := b.Listen("tcp", ":7")
	require.NoError(t, err)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(c, c)
			c.Close()
		}
	}()
	sink, err := b.ListenPacket("udp", ":9")
	require.NoError(t, err)
	defer sink.Close()
	src, err := a.ListenPacket("udp", ":0")
	require.NoError(t, err)
	defer src.Close()
	a0, b0 := a.Counters(), b.Counters()

	const conns, datagrams = 3, 5
	for range conns {
		c, err := a.Dial("tcp", "198.18.0.3:7")
		require.NoError(t, err)
		_, err = c.Write([]byte("ping"))
		require.NoError(t, err)
		_, err = io.ReadFull(c, make([]byte, 4))
		require.NoError(t, err)
		require.NoError(t, c.Close())
	}
	for range datagrams {
		_, err := src.WriteTo([]byte("data"), &net.UDPAddr{IP: net.IPv4(198, 18, 0, 3), Port: 9})
		require.NoError(t, err)
		_, _, err = sink.ReadFrom(make([]byte, 16))
		require.NoError(t, err)
	}
	_, err = src.WriteTo([]byte("nobody"), &net.UDPAddr{IP: net.IPv4(198, 18, 0, 3), Port: 10})
	require.NoError(t, err)

	// Quiet: each side has received every IP packet the other sent, the
	// closes' last ACKs and the ICMP error included.
	var ac, bc Counters
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		ac, bc = a.Counters(), b.Counters()
		if bc.ICMP.OutDestUnreachs > b0.ICMP.OutDestUnreachs &&
			ac.IP.OutRequests-a0.IP.OutRequests == bc.IP.InReceives-b0.IP.InReceives &&
			bc.IP.OutRequests-b0.IP.OutRequests == ac.IP.InReceives-a0.IP.InReceives {
			break
		}
		require.True(t, time.Now().Before(deadline), "the pipe never went quiet: a %+v, b %+v", ac.IP, bc.IP)
	}

	assert.EqualValues(t, conns, ac.TCP.ActiveOpens-a0.TCP.ActiveOpens, "TcpActiveOpens")
	assert.EqualValues(t, 0, ac.TCP.PassiveOpens-a0.TCP.PassiveOpens)
	assert.EqualValues(t, conns, bc.TCP.PassiveOpens-b0.TCP.PassiveOpens, "TcpPassiveOpens")
	assert.EqualValues(t, 0, bc.TCP.ActiveOpens-b0.TCP.ActiveOpens)
	assert.EqualValues(t, datagrams+1, ac.UDP.OutDatagrams-a0.UDP.OutDatagrams, "UdpOutDatagrams")
	assert.EqualValues(t, datagrams, bc.UDP.InDatagrams-b0.UDP.InDatagrams, "UdpInDatagrams")
	assert.EqualValues(t, 1, bc.UDP.NoPorts-b0.UDP.NoPorts, "UdpNoPorts")
	assert.EqualValues(t, 1, bc.ICMP.OutDestUnreachs-b0.ICMP.OutDestUnreachs, "IcmpOutDestUnreachs")
	assert.EqualValues(t, 1, bc.ICMP.OutType[3]-b0.ICMP.OutType[3], "IcmpMsgOutType3")
	assert.EqualValues(t, 1, ac.ICMP.InDestUnreachs-a0.ICMP.InDestUnreachs, "IcmpInDestUnreachs")

	// Every packet a sent is TCP or UDP; b's are TCP or its ICMP error.
	aOut := ac.IP.OutRequests - a0.IP.OutRequests
	bIn := bc.IP.InReceives - b0.IP.InReceives
	assert.Equal(t, aOut, ac.TCP.OutSegs-a0.TCP.OutSegs+datagrams+1, "IpOutRequests = TcpOutSegs + UdpOutDatagrams")
	assert.Equal(t, bIn, bc.TCP.InSegs-b0.TCP.InSegs+datagrams+1, "IpInReceives = TcpInSegs + UdpInDatagrams + UdpNoPorts")
	assert.Equal(t, bc.IP.OutRequests-b0.IP.OutRequests, bc.TCP.OutSegs-b0.TCP.OutSegs+1, "IpOutRequests = TcpOutSegs + the ICMP error")
	assert.Equal(t, ac.IP.InReceives-a0.IP.InReceives, ac.TCP.InSegs-a0.TCP.InSegs+1, "IpInReceives = TcpInSegs + IcmpInMsgs")
	assert.Equal(t, bIn, bc.IP.InDelivers-b0.IP.InDelivers)
	// Every frame is an IP packet or an ARP message: a asked for b's
	// MAC once (XdpnetArpRequestsOut) and b answered.
	assert.EqualValues(t, 1, ac.ARP.RequestsOut-a0.ARP.RequestsOut, "XdpnetArpRequestsOut")
	assert.EqualValues(t, 1, bc.ARP.RepliesOut-b0.ARP.RepliesOut, "XdpnetArpRepliesOut")
	bARP := bc.ARP.RequestsIn - b0.ARP.RequestsIn + bc.ARP.RepliesIn - b0.ARP.RepliesIn
	aARP := ac.ARP.RequestsOut - a0.ARP.RequestsOut + ac.ARP.RepliesOut - a0.ARP.RepliesOut
	assert.Equal(t, bIn+bARP, bc.Queues[0].Link.RxFrames-b0.Queues[0].Link.RxFrames, "XdpnetLinkRxFrames")
	assert.Equal(t, aOut+aARP, ac.Queues[0].Link.TxFrames-a0.Queues[0].Link.TxFrames, "XdpnetLinkTxFrames")
	assert.Positive(t, ac.Queues[0].Poller.Rounds-a0.Queues[0].Poller.Rounds)

	// List names them as nstat does.
	byName := map[string]uint64{}
	var nonzero []string
	for _, n := range ac.List() {
		byName[n.Name] = n.Value
		if n.Value != 0 {
			nonzero = append(nonzero, n.Name+" "+strconv.FormatUint(n.Value, 10))
		}
	}
	t.Logf("the dialler's counters, as nstat would print them:\n%s", strings.Join(nonzero, "\n"))
	assert.Equal(t, ac.TCP.ActiveOpens, byName["TcpActiveOpens"])
	assert.Equal(t, ac.IP.InReceives, byName["IpInReceives"])
	assert.Equal(t, ac.ICMP.InType[3], byName["IcmpMsgInType3"])
	assert.Equal(t, ac.Queues[0].Poller.Rounds, byName["XdpnetPollerRounds"])
}

// BenchmarkCounters is the cost of a snapshot of an idle one-queue stack
// on a pipe (the copy on the poller, the round trip through its Do
// queue, and the translation), and of listing it by name.
func BenchmarkCounters(b *testing.B) {
	la, _ := nic.NewPipe(nic.PipeConfig{})
	s, err := New(Config{Addr: netip.MustParsePrefix("198.18.0.2/24")}, la)
	require.NoError(b, err)
	defer s.Close()
	b.Run("Counters", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.Counters()
		}
	})
	c := s.Counters()
	b.Run("List", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.List()
		}
	})
}
