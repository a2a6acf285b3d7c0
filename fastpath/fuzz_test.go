package fastpath_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
)

// scriptLink is a link that receives the frames a test gives it, of any
// length, and counts what the poller transmits.
type scriptLink struct {
	rx   [][]byte
	lent int // transmit buffers lent out and not yet returned
	sent int
}

var scriptMAC = net.HardwareAddr{2, 0, 0, 0, 0, 1}

func (l *scriptLink) Receive(fs []nic.Frame) (int, error) {
	n := 0
	for ; n < len(fs) && len(l.rx) > 0; n++ {
		fs[n] = nic.Frame{Data: l.rx[0], Handle: 1 << 32}
		l.rx = l.rx[1:]
	}
	return n, nil
}

func (l *scriptLink) Alloc(fs []nic.Frame) int {
	for i := range fs {
		fs[i] = nic.Frame{Data: make([]byte, 1514)}
	}
	l.lent += len(fs)
	return len(fs)
}

func (l *scriptLink) Transmit(fs []nic.Frame) (int, error) {
	l.sent += len(fs)
	l.lent -= len(fs)
	return len(fs), nil
}

func (l *scriptLink) Release(fs []nic.Frame) {
	for _, f := range fs {
		if f.Handle != 1<<32 {
			l.lent--
		}
	}
}

func (l *scriptLink) MAC() net.HardwareAddr { return scriptMAC }
func (l *scriptLink) MTU() int              { return 1500 }
func (l *scriptLink) Stats() nic.Stats      { return nic.Stats{} }
func (l *scriptLink) Close() error          { return nil }

// FuzzInput sends arbitrary frames through the poller's whole input path
// (Ethernet, ARP, IPv4 with reassembly, ICMP, UDP) and then runs its
// timers: no input may panic it, every frame is counted as received, and
// the poller gives back every transmit buffer it borrowed.
func FuzzInput(f *testing.F) {
	echo := make([]byte, wire.EthernetLen+wire.IPv4MinLen+wire.ICMPHeaderLen+4)
	wire.Ethernet(echo).Encode(scriptMAC, net.HardwareAddr{2, 0, 0, 0, 0, 2}, wire.EtherTypeIPv4)
	wire.ICMPFields{Type: wire.ICMPEcho, Rest: 7}.Encode(echo[wire.EthernetLen+wire.IPv4MinLen:])
	wire.IPv4Fields{TotalLen: len(echo) - wire.EthernetLen, Protocol: wire.ProtoICMP, Src: peerAddr, Dst: stackAddr}.Encode(echo[wire.EthernetLen:])
	f.Add(echo, true)
	frag := append([]byte(nil), echo...)
	frag[wire.EthernetLen+6] = 0x20 // MF
	fixChecksum(frag[wire.EthernetLen:])
	f.Add(frag, true)
	udp := append([]byte(nil), echo...)
	udp[wire.EthernetLen+9] = wire.ProtoUDP
	fixChecksum(udp[wire.EthernetLen:])
	f.Add(udp, true)
	arp := make([]byte, wire.EthernetLen+wire.ARPLen)
	wire.Ethernet(arp).Encode(wire.BroadcastMAC, net.HardwareAddr{2, 0, 0, 0, 0, 2}, wire.EtherTypeARP)
	wire.ARPFields{Op: wire.ARPRequest, SenderMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, SenderIP: peerAddr, TargetIP: stackAddr}.Encode(arp[wire.EthernetLen:])
	f.Add(arp, false)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, frame []byte, toUs bool) {
		if toUs && len(frame) >= 6 {
			copy(frame, scriptMAC) // get past the MAC filter more often
		}
		link := &scriptLink{rx: [][]byte{frame}}
		p, err := fastpath.New(fastpath.Config{Link: link, IP: ip.Config{Addr: netip.PrefixFrom(stackAddr, 24)}})
		if err != nil {
			t.Fatal(err)
		}
		for _, now := range []time.Duration{time.Millisecond, time.Minute} {
			if _, err := p.Poll(now); err != nil {
				t.Fatal(err)
			}
		}
		if got := p.Stats().RxFrames; got != 1 {
			t.Fatalf("RxFrames %d, want 1", got)
		}
		p.Close()
		if link.lent != 0 {
			t.Fatalf("%d transmit buffers not given back", link.lent)
		}
	})
}
