package steer

import (
	"fmt"
	"net/netip"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// These tests feed crafted frames to the loaded program with
// BPF_PROG_TEST_RUN: no interface, no traffic, but a real kernel verdict.
// Without a context the kernel runs the program as if the frame arrived on
// rx queue 0. In this (non-live) mode the kernel returns the program's
// action and performs no redirect, so XDP_REDIRECT means bpf_redirect_map
// found the queue's socket, and XDP_PASS for one of our frames means it
// found none.

// loadForTest loads the program for ourAddr with rules, and registers an
// AF_XDP socket for queue 0 unless noSocket.
func loadForTest(t *testing.T, rules []Rule, noSocket bool) *Program {
	t.Helper()
	lab.RequireRoot(t) // loading BPF programs needs CAP_BPF and CAP_NET_ADMIN
	p, err := load(rules, []netip.Addr{ourAddr}, 2)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	if !noSocket {
		require.NoError(t, p.Register(0, xskFD(t)))
	}
	return p
}

// xskFD returns a fresh AF_XDP socket. The XSKMAP takes a socket that is
// not bound yet (Linux 6.18 checks only the address family), which is all
// test runs need: they never deliver to it.
func xskFD(t testing.TB) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err, "AF_XDP socket")
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func run(t *testing.T, p *Program, frame []byte) uint32 {
	t.Helper()
	action, err := p.prog.Run(&ebpf.RunOptions{Data: frame})
	require.NoError(t, err, "test run of a %d-byte frame", len(frame))
	return action
}

type verdictCase struct {
	name  string
	frame []byte
	want  uint32
}

func checkVerdicts(t *testing.T, p *Program, cases []verdictCase) {
	t.Helper()
	for _, tc := range cases {
		assert.Equal(t, actionName(tc.want), actionName(run(t, p, tc.frame)), tc.name)
	}
}

func actionName(a uint32) string {
	switch a {
	case xdpPass:
		return "XDP_PASS"
	case xdpRedirect:
		return "XDP_REDIRECT"
	}
	return fmt.Sprintf("action %d", a)
}

func TestVerdictsWithoutRules(t *testing.T) {
	p := loadForTest(t, nil, false)
	ipv6 := ethernet(0x86dd, make([]byte, 40))
	checkVerdicts(t, p, []verdictCase{
		{"own UDP", ipv4{proto: ProtoUDP}.frame(), xdpRedirect},
		{"own TCP", ipv4{proto: ProtoTCP, dport: 80}.frame(), xdpRedirect},
		{"own ICMP", ipv4{proto: ProtoICMP}.frame(), xdpRedirect},
		{"own GRE", ipv4{proto: 47}.frame(), xdpRedirect},
		{"own, IHL 6", ipv4{ihl: 6}.frame(), xdpRedirect},
		{"own, IHL 15", ipv4{ihl: 15}.frame(), xdpRedirect},
		{"own, header only", ipv4{noL4: true}.frame(), xdpRedirect},
		{"own, non-first fragment", ipv4{fragOff: 185}.frame(), xdpRedirect},
		{"foreign UDP", ipv4{dst: otherAddr}.frame(), xdpPass},
		{"to the peer", ipv4{dst: peerAddr}.frame(), xdpPass},
		{"limited broadcast", ipv4{dst: netip.MustParseAddr("255.255.255.255")}.frame(), xdpPass},
		{"own, IHL 4 (malformed)", ipv4{ihl: 4}.frame(), xdpPass},
		{"own, version 6 in an IPv4 ethertype", ipv4{version: 6}.frame(), xdpPass},
		{"ARP request for us", arp(1, ourAddr, 6), xdpRedirect},
		{"ARP reply to us", arp(2, ourAddr, 6), xdpRedirect},
		{"ARP request for another", arp(1, otherAddr, 6), xdpPass},
		{"ARP with 8-byte hardware addresses", arp(1, ourAddr, 8), xdpPass},
		{"IPv6", ipv6, xdpPass},
		{"VLAN-tagged IPv4", ethernet(0x8100, ipv4{}.frame()[12:]), xdpPass},
		{"LLDP", ethernet(0x88cc, make([]byte, 46)), xdpPass},
	})
}

func TestVerdictsWithRules(t *testing.T) {
	p := loadForTest(t, []Rule{
		{Proto: ProtoTCP, PortLo: 80, PortHi: 90},
		{Proto: ProtoUDP, PortLo: 5000, PortHi: 5000},
		{Proto: ProtoICMP},
	}, false)
	checkVerdicts(t, p, []verdictCase{
		{"TCP at the low end", ipv4{proto: ProtoTCP, dport: 80}.frame(), xdpRedirect},
		{"TCP at the high end", ipv4{proto: ProtoTCP, dport: 90}.frame(), xdpRedirect},
		{"TCP below", ipv4{proto: ProtoTCP, dport: 79}.frame(), xdpPass},
		{"TCP above", ipv4{proto: ProtoTCP, dport: 91}.frame(), xdpPass},
		{"TCP in range, IHL 6", ipv4{proto: ProtoTCP, ihl: 6, dport: 85}.frame(), xdpRedirect},
		{"TCP in range, IHL 15", ipv4{proto: ProtoTCP, ihl: 15, dport: 85}.frame(), xdpRedirect},
		{"TCP out of range, IHL 15", ipv4{proto: ProtoTCP, ihl: 15, dport: 443}.frame(), xdpPass},
		{"UDP port", ipv4{proto: ProtoUDP, dport: 5000}.frame(), xdpRedirect},
		{"UDP on the TCP port (wrong protocol)", ipv4{proto: ProtoUDP, dport: 80}.frame(), xdpPass},
		{"ICMP", ipv4{proto: ProtoICMP}.frame(), xdpRedirect},
		{"SCTP to port 80 (no rule)", ipv4{proto: 132, dport: 80}.frame(), xdpPass},
		{"TCP in range to a foreign address", ipv4{dst: otherAddr, proto: ProtoTCP, dport: 80}.frame(), xdpPass},
		{"TCP cut before its ports", ipv4{proto: ProtoTCP, dport: 80, l4Length: 3}.frame(), xdpPass},
		{"TCP with only its ports", ipv4{proto: ProtoTCP, dport: 80, l4Length: 4}.frame(), xdpRedirect},
		{"first fragment in range", ipv4{proto: ProtoTCP, mf: true, dport: 85}.frame(), xdpRedirect},
		{"first fragment out of range", ipv4{proto: ProtoTCP, mf: true, dport: 100}.frame(), xdpPass},
		{"non-first TCP fragment: protocol alone", ipv4{proto: ProtoTCP, fragOff: 185, dport: 100}.frame(), xdpRedirect},
		{"non-first last UDP fragment", ipv4{proto: ProtoUDP, fragOff: 1, dport: 1}.frame(), xdpRedirect},
		{"non-first GRE fragment (no rule)", ipv4{proto: 47, fragOff: 185, mf: true}.frame(), xdpPass},
		{"ARP ignores rules", arp(1, ourAddr, 6), xdpRedirect},
	})
}

func TestVerdictsWithAnyProtocolPortRule(t *testing.T) {
	p := loadForTest(t, []Rule{{PortLo: 22, PortHi: 22}}, false)
	checkVerdicts(t, p, []verdictCase{
		{"TCP 22", ipv4{proto: ProtoTCP, dport: 22}.frame(), xdpRedirect},
		{"UDP 22", ipv4{proto: ProtoUDP, dport: 22}.frame(), xdpRedirect},
		{"TCP 23", ipv4{proto: ProtoTCP, dport: 23}.frame(), xdpPass},
		{"ICMP has no port", ipv4{proto: ProtoICMP}.frame(), xdpPass},
		{"SCTP 22 (ports of TCP and UDP only)", ipv4{proto: 132, dport: 22}.frame(), xdpPass},
	})
}

// TestTruncatedFrames cuts frames of ours at every length up to 60 bytes:
// the program must pass every frame too short to classify and redirect
// once the bytes it needs are there. Frames under 14 bytes (no Ethernet
// header) cannot be test-run: the kernel refuses them with EINVAL, and no
// driver delivers them to XDP either. For them the verifier's proof that
// every read is bounds-checked is the guarantee.
func TestTruncatedFrames(t *testing.T) {
	noRules := loadForTest(t, nil, false)
	portRules := loadForTest(t, []Rule{{Proto: ProtoTCP, PortLo: 80, PortHi: 80}}, false)
	for _, tc := range []struct {
		name  string
		p     *Program
		frame []byte
		need  int // shortest prefix that is redirected
	}{
		{"ARP", noRules, arp(1, ourAddr, 6), 14 + 28},
		{"IPv4", noRules, ipv4{}.frame(), 14 + 20},
		{"IPv4 with options", noRules, ipv4{ihl: 15}.frame(), 14 + 20},
		{"TCP port rule", portRules, ipv4{proto: ProtoTCP, dport: 80}.frame(), 14 + 20 + 4},
		{"TCP port rule, IHL 6", portRules, ipv4{proto: ProtoTCP, ihl: 6, dport: 80}.frame(), 14 + 24 + 4},
		{"TCP port rule, IHL 15", portRules, ipv4{proto: ProtoTCP, ihl: 15, dport: 80}.frame(), 14 + 60 + 4},
	} {
		frame := append(tc.frame, make([]byte, 60)...) // pad past 60 bytes
		for n := 0; n <= max(60, tc.need); n++ {
			if n < 14 {
				_, err := tc.p.prog.Run(&ebpf.RunOptions{Data: frame[:n]})
				assert.ErrorIs(t, err, syscall.EINVAL, "%s: %d bytes", tc.name, n)
				continue
			}
			want := uint32(xdpPass)
			if n >= tc.need {
				want = xdpRedirect
			}
			assert.Equal(t, actionName(want), actionName(run(t, tc.p, frame[:n])), "%s: %d bytes", tc.name, n)
		}
	}
}

func TestNoSocketOnTheQueuePasses(t *testing.T) {
	p := loadForTest(t, nil, true)
	own := ipv4{}.frame()
	assert.Equal(t, actionName(xdpPass), actionName(run(t, p, own)), "no socket registered")
	require.NoError(t, p.Register(1, xskFD(t)))
	assert.Equal(t, actionName(xdpPass), actionName(run(t, p, own)), "socket on queue 1 only; the frame arrived on queue 0")
	require.NoError(t, p.Register(0, xskFD(t)))
	assert.Equal(t, actionName(xdpRedirect), actionName(run(t, p, own)), "socket on queue 0")
	require.NoError(t, p.Unregister(0))
	assert.Equal(t, actionName(xdpPass), actionName(run(t, p, own)), "after Unregister")
	assert.NoError(t, p.Unregister(0), "unregistering an empty slot")
	assert.Error(t, p.Register(2, xskFD(t)), "queue past the map")
}

func TestAddrsChangeAtRunTime(t *testing.T) {
	p := loadForTest(t, nil, false)
	other := ipv4{dst: otherAddr}.frame()
	assert.Equal(t, actionName(xdpPass), actionName(run(t, p, other)))
	require.NoError(t, p.AddAddr(otherAddr))
	require.NoError(t, p.AddAddr(otherAddr), "adding twice")
	assert.Equal(t, actionName(xdpRedirect), actionName(run(t, p, other)))
	assert.Equal(t, actionName(xdpRedirect), actionName(run(t, p, arp(1, otherAddr, 6))))
	require.NoError(t, p.RemoveAddr(otherAddr))
	require.NoError(t, p.RemoveAddr(otherAddr), "removing twice")
	assert.Equal(t, actionName(xdpPass), actionName(run(t, p, other)))
	assert.Equal(t, actionName(xdpRedirect), actionName(run(t, p, ipv4{}.frame())), "ourAddr untouched")
	assert.Error(t, p.AddAddr(netip.MustParseAddr("2001:db8::1")))
	assert.NoError(t, p.AddAddr(netip.MustParseAddr("::ffff:198.18.0.9")), "IPv4-mapped IPv6 is IPv4")
	assert.Equal(t, actionName(xdpRedirect), actionName(run(t, p, other)))
}

func TestStatsCountVerdicts(t *testing.T) {
	p := loadForTest(t, nil, true)
	for range 3 {
		run(t, p, ipv4{dst: otherAddr}.frame())
	}
	run(t, p, ipv4{}.frame())
	require.NoError(t, p.Register(0, xskFD(t)))
	for range 2 {
		run(t, p, ipv4{}.frame())
	}
	s, err := p.Stats()
	require.NoError(t, err)
	assert.Equal(t, Stats{Redirected: 2, NoSocket: 1, Passed: 3}, s)
}

func TestClosedProgram(t *testing.T) {
	p := loadForTest(t, nil, true)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close(), "Close is idempotent")
	_, err := p.Stats()
	assert.ErrorIs(t, err, errClosed)
	assert.ErrorIs(t, p.AddAddr(ourAddr), errClosed)
	assert.ErrorIs(t, p.Register(0, 0), errClosed)
}

func TestConfigCheck(t *testing.T) {
	ok := Config{Ifindex: 1, Addrs: []netip.Addr{ourAddr}}
	require.NoError(t, ok.check())
	for name, mutate := range map[string]func(*Config){
		"zero ifindex":     func(c *Config) { c.Ifindex = 0 },
		"unknown mode":     func(c *Config) { c.Mode = 7 },
		"IPv6 address":     func(c *Config) { c.Addrs = []netip.Addr{netip.MustParseAddr("2001:db8::1")} },
		"zero address":     func(c *Config) { c.Addrs = []netip.Addr{{}} },
		"empty port range": func(c *Config) { c.Rules = []Rule{{Proto: ProtoTCP, PortLo: 90, PortHi: 80}} },
		"ports on ICMP":    func(c *Config) { c.Rules = []Rule{{Proto: ProtoICMP, PortLo: 1, PortHi: 2}} },
		"too many rules":   func(c *Config) { c.Rules = make([]Rule, MaxRules+1) },
		"too many addrs":   func(c *Config) { c.Addrs = make([]netip.Addr, MaxAddrs+1) },
	} {
		c := ok
		mutate(&c)
		assert.Error(t, c.check(), name)
	}
}

// xdpMd is struct xdp_md (include/uapi/linux/bpf.h), the test run's
// context. data_end must equal the frame's length; a non-zero rx queue
// needs an ingress device with that many queues.
type xdpMd struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// TestRedirectUsesTheFramesQueue runs frames "arriving" on each queue of a
// two-queue veth: only the queue whose slot holds a socket redirects.
func TestRedirectUsesTheFramesQueue(t *testing.T) {
	l := lab.New(t, lab.Config{Queues: 2})
	p := loadForTest(t, nil, true)
	require.NoError(t, p.Register(1, xskFD(t)))
	frame := ipv4{}.frame()
	for queue, want := range []uint32{xdpPass, xdpRedirect} {
		var got uint32
		// The kernel finds the ingress device in the caller's namespace.
		require.NoError(t, l.Local.Do(func() (err error) {
			got, err = p.prog.Run(&ebpf.RunOptions{
				Data: frame,
				Context: xdpMd{
					DataEnd:        uint32(len(frame)),
					IngressIfindex: uint32(l.Local.Ifindex),
					RxQueueIndex:   uint32(queue),
				},
			})
			return err
		}))
		assert.Equal(t, actionName(want), actionName(got), "frame on queue %d", queue)
	}
}
