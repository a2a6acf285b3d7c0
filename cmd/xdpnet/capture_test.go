package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
)

func TestParseCapture(t *testing.T) {
	c, err := parseCapture([]string{"-w", "x.pcap", "-c", "10", "-G", "1.5", "-s", "96", "-iface", "eth1", "tcp", "port", "80"})
	require.NoError(t, err)
	assert.Equal(t, captureConfig{target: target{iface: "eth1"}, write: "x.pcap", count: 10, seconds: 1500 * time.Millisecond, snap: 96, expr: "tcp port 80"}, c)
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"tcp", "or", "udp"}, `capture filter "tcp or udp": unknown word "or"`},
		{[]string{"host", "nowhere"}, `host "nowhere" is not an IPv4 address`},
		{[]string{"-c", "-1"}, "-c -1: want a positive count"},
		{[]string{"-G", "-2"}, "-G -2"},
		{[]string{"-s", "-2"}, "-s -2"},
		{[]string{"-socket", "/x", "-iface", "eth1"}, "-socket picks the stack alone"},
	} {
		_, err := parseCapture(bad.args)
		assert.ErrorContains(t, err, bad.want, "%v", bad.args)
		assert.Equal(t, 2, exitCode(err), "%v", bad.args)
	}
}

// pipeServer is a stack with an admin socket, and a peer stack, over
// the pipe, and a listener on the peer that echoes.
func pipeServer(t *testing.T) (s, peer *sockapi.Stack, sock string, ln net.Listener) {
	la, lb := nic.NewPipe(nic.PipeConfig{Buffers: 1024, QueueDepth: 1024})
	sock = filepath.Join(t.TempDir(), "s.sock")
	s, err := sockapi.New(sockapi.Config{Addr: netip.MustParsePrefix("198.18.0.1/24"), AdminSocket: sock}, la)
	require.NoError(t, err)
	peer, err = sockapi.New(sockapi.Config{Addr: netip.MustParsePrefix("198.18.0.2/24")}, lb)
	require.NoError(t, err)
	t.Cleanup(func() {
		s.Close()
		peer.Close()
	})
	ln, err = peer.Listen("tcp", ":7")
	require.NoError(t, err)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return s, peer, sock, ln
}

// exchange dials the peer's echo from s and echoes msg once.
func exchange(t *testing.T, s *sockapi.Stack, msg string) {
	c, err := s.Dial("tcp", "198.18.0.2:7")
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte(msg))
	require.NoError(t, err)
	_, err = io.ReadFull(c, make([]byte, len(msg)))
	require.NoError(t, err)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startCapture starts `xdpnet capture args` and waits for its first
// line, which it prints once the capture runs; done has its error.
func startCapture(t *testing.T, args ...string) (out *syncBuffer, done chan error) {
	out, done = &syncBuffer{}, make(chan error, 1)
	go func() { done <- run(append([]string{"capture"}, args...), out, io.Discard) }()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "\n") }, 5*time.Second, time.Millisecond, out)
	return out, done
}

// runCapture runs `xdpnet capture args` while exchanges run, and
// returns its output but the first line, and its error.
func runCapture(t *testing.T, s *sockapi.Stack, args ...string) (string, error) {
	out, done := startCapture(t, args...)
	for {
		select {
		case err := <-done:
			_, rest, _ := strings.Cut(out.String(), "\n")
			return rest, err
		default:
			exchange(t, s, "hello")
		}
	}
}

// TestCaptureCommand: `xdpnet capture -c` writes that many frames to a
// pcap file that reads back (header, records, the first a SYN), or
// prints one line per frame, or JSON; its last lines are tcpdump's
// counts.
func TestCaptureCommand(t *testing.T) {
	s, _, sock, _ := pipeServer(t)
	file := filepath.Join(t.TempDir(), "c.pcap")
	out, err := runCapture(t, s, "-socket", sock, "-w", file, "-c", "5", "tcp")
	require.NoError(t, err)
	assert.Regexp(t, `^5 packets captured\n\d+ packets received by filter\n\d+ packets dropped by the stack's capture buffer\n$`, out)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Greater(t, len(b), 24)
	assert.Equal(t, uint32(0xa1b23c4d), binary.LittleEndian.Uint32(b), "pcap, nanosecond timestamps")
	assert.Equal(t, uint32(1514), binary.LittleEndian.Uint32(b[16:]), "snap length")
	assert.Equal(t, uint32(1), binary.LittleEndian.Uint32(b[20:]), "Ethernet")
	records := 0
	for r := b[24:]; len(r) > 0; records++ {
		require.GreaterOrEqual(t, len(r), 16)
		capLen := int(binary.LittleEndian.Uint32(r[8:]))
		require.GreaterOrEqual(t, len(r), 16+capLen)
		if records == 0 {
			f := r[16 : 16+capLen]
			assert.Equal(t, uint8(wire.TCPFlagSYN), wire.TCP(f[wire.EthernetLen+20:]).Flags(), "the first frame is a SYN")
		}
		r = r[16+capLen:]
	}
	assert.Equal(t, 5, records)

	out, err = runCapture(t, s, "-socket", sock, "-c", "3", "tcp", "and", "port", "7")
	require.NoError(t, err)
	lines := strings.Split(out, "\n")
	require.Len(t, lines, 3+3+1, out)
	assert.Regexp(t, `^\d\d:\d\d:\d\d\.\d{6} q0 Out IP 198\.18\.0\.1\.\d+ > 198\.18\.0\.2\.7: Flags \[S\], seq \d+, win \d+, length 0$`, lines[0])
	assert.Regexp(t, `^\d\d:\d\d:\d\d\.\d{6} q0 In  IP 198\.18\.0\.2\.7 > 198\.18\.0\.1\.\d+: Flags \[S\.\], seq \d+, ack \d+, win \d+, length 0$`, lines[1])
	assert.Equal(t, "3 packets captured", lines[3])

	out, err = runCapture(t, s, "-socket", sock, "-c", "2", "-json", "tcp")
	require.NoError(t, err)
	lines = strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	var f struct {
		sockapi.CapturedFrame
		Summary string
	}
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &f))
	assert.Equal(t, sockapi.Outbound, f.Dir)
	assert.Contains(t, f.Summary, "Flags [S]")
	assert.Equal(t, f.Len, len(f.Data))
	var counts map[string]int
	require.NoError(t, json.Unmarshal([]byte(lines[2]), &counts))
	assert.Equal(t, 2, counts["captured"])

	// -G ends it on time, with what it took meanwhile.
	start := time.Now()
	out, err = runCapture(t, s, "-socket", sock, "-G", "0.2", "-w", file)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
	m := regexp.MustCompile(`^(\d+) packets captured\n`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	assert.NotEqual(t, "0", m[1], "the exchanges meanwhile")
}

// TestCaptureStackExits: a stack that exits mid-capture ends the
// command with one line saying so, after the counts.
func TestCaptureStackExits(t *testing.T) {
	s, _, sock, _ := pipeServer(t)
	out, done := startCapture(t, "-socket", sock, "-w", filepath.Join(t.TempDir(), "c.pcap"))
	assert.Contains(t, out.String(), "listening on 198.18.0.1/24, link-type EN10MB (Ethernet), snapshot length 1514 bytes\n")
	exchange(t, s, "hello")
	require.NoError(t, s.Close())
	err := <-done
	require.Error(t, err)
	assert.Regexp(t, `^capture: admin socket .*s\.sock: the stack exited mid-capture \(after \d+ packets\)$`, err.Error())
	assert.Equal(t, 1, exitCode(err))
	assert.Contains(t, out.String(), "packets captured")
}

// TestSummary: the summary line of each kind of frame, and of frames cut
// short, which never reads past their bytes.
func TestSummary(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	a, b := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	ipv4 := func(proto uint8, l4 []byte) []byte {
		f := make([]byte, wire.EthernetLen+20+len(l4))
		wire.Ethernet(f).Encode(mac, mac, wire.EtherTypeIPv4)
		wire.IPv4Fields{TotalLen: 20 + len(l4), Protocol: proto, Src: a, Dst: b}.Encode(f[wire.EthernetLen:])
		copy(f[wire.EthernetLen+20:], l4)
		return f
	}
	tcp := make([]byte, 20+3)
	wire.TCPFields{SrcPort: 40000, DstPort: 80, Seq: 7, Ack: 9, Flags: wire.TCPFlagPSH | wire.TCPFlagACK, Window: 512, Options: wire.TCPOptions{WindowScale: -1}}.Encode(tcp, 3, a, b)
	udp := make([]byte, 8+4)
	wire.UDPFields{SrcPort: 53, DstPort: 40000}.Encode(udp, 4, a, b)
	echo := []byte{wire.ICMPEcho, 0, 0, 0, 0, 1, 0, 2}
	arpFrame := make([]byte, wire.EthernetLen+wire.ARPLen)
	wire.Ethernet(arpFrame).Encode(wire.BroadcastMAC, mac, wire.EtherTypeARP)
	wire.ARPFields{Op: wire.ARPRequest, SenderMAC: mac, SenderIP: a, TargetIP: b}.Encode(arpFrame[wire.EthernetLen:])
	tcpFrame := ipv4(wire.ProtoTCP, tcp)
	for _, c := range []struct {
		frame []byte
		want  string
	}{
		{tcpFrame, "IP 198.18.0.1.40000 > 198.18.0.2.80: Flags [P.], seq 7, ack 9, win 512, length 3"},
		{ipv4(wire.ProtoUDP, udp), "IP 198.18.0.1.53 > 198.18.0.2.40000: UDP, length 4"},
		{ipv4(wire.ProtoICMP, echo), "IP 198.18.0.1 > 198.18.0.2: ICMP echo request, id 1, seq 2, length 8"},
		{arpFrame, "ARP, Request who-has 198.18.0.2 tell 198.18.0.1, length 28"},
		{tcpFrame[:wire.EthernetLen+30], "IP 198.18.0.1 > 198.18.0.2: tcp [|tcp]"},
		{tcpFrame[:wire.EthernetLen+10], "IP [|ip], length 57"},
		{tcpFrame[:8], "[|ether], length 57"},
	} {
		assert.Equal(t, c.want, summary(c.frame, len(tcpFrame)))
	}
}
