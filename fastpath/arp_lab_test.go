package fastpath_test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/udp"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// spoofed is an Ethernet frame carrying an ARP packet with operation op,
// unicast to (toMAC, to), that claims the peer's address is at mac.
func spoofed(op uint16, mac net.HardwareAddr, peer netip.Addr, toMAC net.HardwareAddr, to netip.Addr) []byte {
	b := make([]byte, wire.EthernetLen+wire.ARPLen)
	wire.Ethernet(b).Encode(toMAC, mac, wire.EtherTypeARP)
	f := wire.ARPFields{Op: op, SenderMAC: mac, SenderIP: peer, TargetIP: to}
	if op == wire.ARPReply {
		f.TargetMAC = toMAC
	}
	f.Encode(b[wire.EthernetLen:])
	return b
}

// kernelNeighMAC is the MAC the Local kernel's neighbour table holds for ip.
func kernelNeighMAC(t *testing.T, l *lab.Lab, ip netip.Addr) string {
	out := l.Local.Run(t, "ip", "neigh", "show", ip.String(), "dev", l.Local.Link)
	if f := strings.Fields(out); len(f) > 2 && f[1] == "lladdr" {
		return f[2]
	}
	return out
}

// TestSpoofedARPIgnored: while the kernel peer exchanges UDP echoes with
// xdpnet, the peer's namespace sends, every 50 ms for 3 s, a unicast ARP
// reply (or a request for our address) that remaps the peer's address to
// another MAC, both to xdpnet and to the Linux kernel on the same
// interface (198.18.0.1). The kernel takes the spoofed MAC, from a reply
// once its locktime is past, from a request at once; xdpnet keeps sending
// to the real MAC, and every echo comes back.
func TestSpoofedARPIgnored(t *testing.T) {
	for _, op := range []uint16{wire.ARPReply, wire.ARPRequest} {
		name := map[uint16]string{wire.ARPReply: "reply", wire.ARPRequest: "request"}[op]
		t.Run(name, func(t *testing.T) { testSpoofedARP(t, op) })
	}
}

func testSpoofedARP(t *testing.T, op uint16) {
	l := lab.New(t, lab.Config{})
	peer := l.Peer.Addr.Addr()
	fake := net.HardwareAddr{0x02, 0xde, 0xad, 0xbe, 0xef, 0x01}
	var ep *udp.Endpoint
	buf := make([]byte, 2048)
	s := startStack(t, l, steer.Native, func(p *fastpath.Poller) {
		var err error
		ep, err = p.UDP().Bind(netip.AddrPortFrom(netip.Addr{}, 5000))
		require.NoError(t, err)
	}, func(p *fastpath.Poller, now time.Duration) {
		for {
			n, from, err := ep.ReadFrom(buf)
			if err != nil {
				return
			}
			ep.WriteTo(buf[:n], from)
		}
	})
	// The Local kernel learns the peer too, to be spoofed beside xdpnet.
	l.Local.Run(t, "ping", "-c", "1", "-W", "1", peer.String())
	require.Equal(t, l.Peer.MAC.String(), kernelNeighMAC(t, l, peer))

	c := kernelUDP(t, l, netip.AddrPort{}, netip.AddrPortFrom(l.StackAddr, 5000))
	echo := func(i int) error {
		msg := binary.BigEndian.AppendUint32(nil, uint32(i))
		if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
			return err
		}
		if _, err := c.Write(msg); err != nil {
			return err
		}
		got := make([]byte, 16)
		n, err := c.Read(got)
		if err == nil && string(got[:n]) != string(msg) {
			assert.Fail(t, "echo differs", "echo %d: % x", i, got[:n])
		}
		return err
	}
	for i := range 20 { // xdpnet resolves the peer: Reachable
		require.NoError(t, echo(i), "echo %d before the spoofing", i)
	}

	var fd int
	require.NoError(t, l.Peer.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		return err
	}))
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: l.Peer.Ifindex}
	toStack := spoofed(op, fake, peer, l.Local.MAC, l.StackAddr)
	toKernel := spoofed(op, fake, peer, l.Local.MAC, l.Local.Addr.Addr())

	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	kernelTook := time.Duration(0)
	echoes, failed, spoofs := 0, 0, 0
	for time.Since(start) < 3*time.Second {
		select {
		case <-tick.C:
			require.NoError(t, unix.Sendto(fd, toStack, 0, to))
			require.NoError(t, unix.Sendto(fd, toKernel, 0, to))
			spoofs++
			if kernelTook == 0 && kernelNeighMAC(t, l, peer) == fake.String() {
				kernelTook = time.Since(start)
			}
		default:
		}
		if echo(1000+echoes) != nil {
			failed++
		}
		echoes++
	}
	t.Logf("%d spoofed packets to each, %d echoes during them", spoofs, echoes)
	t.Logf("Linux took the spoofed MAC after %v of spoofing", kernelTook)
	assert.NotZero(t, kernelTook, "the Linux kernel beside xdpnet takes the spoofed MAC")
	assert.Zero(t, failed, "echoes lost while the peer's MAC was spoofed")

	s.stop()
	e, ok := s.ARP().Lookup(s.Now(), peer)
	require.True(t, ok)
	assert.Equal(t, l.Peer.MAC, e.MAC, "xdpnet kept the real MAC")
	st := s.ARP().Stats()
	t.Logf("xdpnet ARP: %+v", st)
	assert.Equal(t, uint64(spoofs), st.LockedOut+st.Unsolicited, "every spoofed packet refused and counted")
}
