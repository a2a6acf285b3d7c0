package fastpath_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/xdpnet/xdpnet/fastpath"
	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/ip"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/tcp"
)

// The whole-frame TCP fuzz harness: a poller on one end of a pipe with a
// listener and connections in several states, and the test playing every
// peer on the other end. FuzzTCPFrames decodes its input as a sequence of
// steps (fzOp*), each some frames to the stack or some time or app work,
// and checks the stack after every step.

// fzPipeBuffers is each pipe end's buffer pool.
const fzPipeBuffers = 64

// fzListenPort is the listener's port; fzNewPeer the first port of peers
// that are not set up (a SYN from one opens a connection); fzDialPort the
// first port the app dials during the run.
const (
	fzListenPort = 80
	fzNewPeer    = 5000
	fzDialPort   = 6000 // the peer ports of the connections the app dials
)

// fzConn is the peer of one connection, as far as the peer knows it.
type fzConn struct {
	port, lport uint16 // its port, ours
	seq         uint32 // its next sequence number
	ack         uint32 // the end of what we sent it (our SND.MAX as it saw it)
	acked       uint32 // the last acknowledgment it sent (our SND.UNA, if we took it)
	ts          bool   // it sends timestamps
	tsval       uint32 // its timestamp clock
	tsecr       uint32 // the last TSval we sent it
	c           *tcp.Conn
	want        tcp.State // the state setup leaves it in
}

// fzStack is the stack under test and its peers.
type fzStack struct {
	p       *fastpath.Poller
	link    *nic.Pipe // the stack's end
	peer    *nic.Pipe // the test's end
	ln      *tcp.Listener
	now     time.Duration
	conns   []*fzConn
	steps   int // steps run, each opening at most one connection
	initial int // connections after setup
	buf     []byte
	in, out []nic.Frame // the peer's frames to send and received
}

func newFzStack() (*fzStack, error) {
	a, b := nic.NewPipe(nic.PipeConfig{Buffers: fzPipeBuffers, QueueDepth: fzPipeBuffers})
	p, err := fastpath.New(fastpath.Config{
		Link: a,
		// Small reassembly limits: cheap to set up, and easy for the
		// fuzzer to fill.
		IP: ip.Config{Addr: netip.PrefixFrom(stackAddr, 24), Secret: [16]byte{2},
			ReasmMemory: 128 << 10, ReasmDatagrams: 8},
		TCP: tcp.Config{Secret: [16]byte{1}, MSL: time.Second, SendBuffer: 4 << 10, RecvBuffer: 4 << 10,
			SynBacklog: 8},
	})
	if err != nil {
		return nil, err
	}
	h := &fzStack{p: p, link: a, peer: b, buf: make([]byte, 4<<10),
		in: make([]nic.Frame, 64), out: make([]nic.Frame, 64)}
	if err := p.ARP().AddStatic(0, peerAddr, b.MAC()); err != nil {
		return nil, err
	}
	if h.ln, err = p.TCP().Listen(netip.AddrPortFrom(stackAddr, fzListenPort), 4); err != nil {
		return nil, err
	}
	if err := h.setup(); err != nil {
		return nil, err
	}
	h.initial = p.TCP().Len()
	return h, nil
}

// setup scripts the handshakes and closes that leave a connection in
// each state the table can hold for long: a passive ESTABLISHED one
// accepted and one still in the accept queue, SYN-RECEIVED, active
// ESTABLISHED (with and without timestamps), CLOSE-WAIT, FIN-WAIT-1,
// FIN-WAIT-2, TIME-WAIT and SYN-SENT.
func (h *fzStack) setup() error {
	passive := func(port uint16, complete bool) (*fzConn, error) {
		c := &fzConn{port: port, lport: fzListenPort, seq: uint32(port) << 16, ts: port%2 == 1, tsval: uint32(port) << 8}
		h.conns = append(h.conns, c)
		opts := wire.TCPOptions{MSS: 1400, WindowScale: 1}
		if err := h.sendSegment(c, wire.TCPFlagSYN, c.seq, 0, 0xffff, nil, c.opts(opts)); err != nil {
			return nil, err
		}
		c.seq++
		if complete {
			if err := h.sendSegment(c, wire.TCPFlagACK, c.seq, c.ack, 0xffff, nil, c.opts(fzNoOpts)); err != nil {
				return nil, err
			}
		}
		h.p.TCP().Conns(func(tc *tcp.Conn) {
			if tc.RemoteAddr().Port() == port {
				c.c = tc
			}
		})
		return c, nil
	}
	// active dials the peer's port; the peer answers, unless silent.
	active := func(port uint16, ts, silent bool) (*fzConn, error) {
		tc, err := h.p.TCP().Dial(h.now, netip.AddrPort{}, netip.AddrPortFrom(peerAddr, port))
		if err != nil {
			return nil, err
		}
		c := &fzConn{port: port, lport: tc.LocalAddr().Port(), seq: uint32(port) << 16, ts: ts, tsval: uint32(port) << 8, c: tc}
		h.conns = append(h.conns, c)
		if err := h.poll(); err != nil { // our SYN
			return nil, err
		}
		if silent {
			return c, nil
		}
		opts := wire.TCPOptions{MSS: 1200, WindowScale: 2}
		if err := h.sendSegment(c, wire.TCPFlagSYN|wire.TCPFlagACK, c.seq, c.ack, 0xffff, nil, c.opts(opts)); err != nil {
			return nil, err
		}
		c.seq++
		return c, nil
	}
	steps := []func() (*fzConn, tcp.State, error){
		func() (*fzConn, tcp.State, error) {
			c, err := passive(2001, true)
			if err == nil {
				c.c, err = h.ln.Accept()
			}
			return c, tcp.Established, err
		},
		func() (*fzConn, tcp.State, error) { c, err := passive(2002, true); return c, tcp.Established, err },
		func() (*fzConn, tcp.State, error) { c, err := passive(2003, false); return c, tcp.SynReceived, err },
		func() (*fzConn, tcp.State, error) {
			c, err := active(3001, true, false)
			return c, tcp.Established, err
		},
		func() (*fzConn, tcp.State, error) {
			c, err := active(3002, false, false)
			return c, tcp.Established, err
		},
		func() (*fzConn, tcp.State, error) { // CLOSE-WAIT: the peer's FIN, with data unread
			c, err := active(3003, true, false)
			if err == nil {
				err = h.sendSegment(c, wire.TCPFlagFIN|wire.TCPFlagACK|wire.TCPFlagPSH, c.seq, c.ack, 0xffff, []byte("data"), c.opts(fzNoOpts))
				c.seq += 5
			}
			return c, tcp.CloseWait, err
		},
		func() (*fzConn, tcp.State, error) { // FIN-WAIT-1: our data and FIN unacknowledged
			c, err := active(3004, false, false)
			if err == nil {
				c.c.Write([]byte("bye"))
				c.c.CloseWrite()
				err = h.poll()
			}
			return c, tcp.FinWait1, err
		},
		func() (*fzConn, tcp.State, error) { // FIN-WAIT-2: our FIN acknowledged
			c, err := active(3005, true, false)
			if err == nil {
				c.c.CloseWrite()
				if err = h.poll(); err == nil {
					err = h.sendSegment(c, wire.TCPFlagACK, c.seq, c.ack, 0xffff, nil, c.opts(fzNoOpts))
				}
			}
			return c, tcp.FinWait2, err
		},
		func() (*fzConn, tcp.State, error) { // TIME-WAIT: then the peer's FIN
			c, err := active(3006, true, false)
			if err == nil {
				c.c.CloseWrite()
				if err = h.poll(); err == nil {
					err = h.sendSegment(c, wire.TCPFlagFIN|wire.TCPFlagACK, c.seq, c.ack, 0xffff, nil, c.opts(fzNoOpts))
					c.seq++
				}
			}
			return c, tcp.TimeWait, err
		},
		func() (*fzConn, tcp.State, error) { c, err := active(3009, false, true); return c, tcp.SynSent, err },
	}
	for _, step := range steps {
		c, want, err := step()
		if err != nil {
			return err
		}
		if c.c == nil || c.c.State() != want {
			return fmt.Errorf("setup of the connection from port %d: %v, want %v", c.port, c.c, want)
		}
		c.want = want
	}
	return nil
}

var fzNoOpts = wire.TCPOptions{WindowScale: -1}

// opts adds c's timestamps to o, if it sends them: its clock ticks once
// per segment and echoes the last TSval we sent.
func (c *fzConn) opts(o wire.TCPOptions) wire.TCPOptions {
	if c.ts {
		c.tsval++
		o.HasTimestamps, o.TSVal, o.TSEcr = true, c.tsval, c.tsecr
	}
	return o
}

// segmentFrame builds an Ethernet/IPv4/TCP frame from peerAddr:from to
// the stack's port to, with valid checksums.
func (h *fzStack) segmentFrame(from, to uint16, flags uint8, seq, ack uint32, wnd uint16, payload []byte, opts wire.TCPOptions) []byte {
	f := wire.TCPFields{SrcPort: from, DstPort: to, Seq: seq, Ack: ack, Flags: flags, Window: wnd, Options: opts}
	n := wire.IPv4MinLen + f.HeaderLen() + len(payload)
	b := h.ipv4Frame(wire.ProtoTCP, n)
	s := b[wire.EthernetLen+wire.IPv4MinLen:]
	copy(s[f.HeaderLen():], payload)
	f.Encode(s, len(payload), peerAddr, stackAddr)
	return b
}

// ipv4Frame returns a frame from the peer to the stack with an IPv4
// header for a packet of n bytes, its payload to be filled in.
func (h *fzStack) ipv4Frame(proto uint8, n int) []byte {
	b := make([]byte, wire.EthernetLen+n)
	wire.Ethernet(b).Encode(h.link.MAC(), h.peer.MAC(), wire.EtherTypeIPv4)
	wire.IPv4Fields{TotalLen: n, ID: uint16(h.peer.Stats().TxFrames), Protocol: proto, Src: peerAddr, Dst: stackAddr}.Encode(b[wire.EthernetLen:])
	return b
}

func (h *fzStack) sendSegment(c *fzConn, flags uint8, seq, ack uint32, wnd uint16, payload []byte, opts wire.TCPOptions) error {
	if flags&wire.TCPFlagACK != 0 {
		c.acked = ack
	}
	return h.send(h.segmentFrame(c.port, c.lport, flags, seq, ack, wnd, payload, opts))
}

// send transmits frames from the peer, a batch at a time, polling the
// stack after each batch.
func (h *fzStack) send(frames ...[]byte) error {
	for len(frames) > 0 {
		fs := h.in[:min(len(frames), len(h.in))]
		n := h.peer.Alloc(fs)
		if n == 0 {
			return errors.New("the peer is out of transmit buffers: the stack holds them")
		}
		for i := range n {
			fs[i].Data = fs[i].Data[:copy(fs[i].Data, frames[i])]
		}
		if _, err := h.peer.Transmit(fs[:n]); err != nil {
			return err
		}
		frames = frames[n:]
		if err := h.poll(); err != nil {
			return err
		}
	}
	return nil
}

// poll runs one round of the stack a millisecond later, then checks
// what it sent and lets the peers learn from it.
func (h *fzStack) poll() error {
	h.now += time.Millisecond
	if _, err := h.p.Poll(h.now); err != nil {
		return err
	}
	return h.collect()
}

// collect receives what the stack sent, checks every frame (fzCheckFrame)
// and records our sequence numbers and timestamps in the peers.
func (h *fzStack) collect() error {
	for {
		n, err := h.peer.Receive(h.out)
		if err != nil || n == 0 {
			return err
		}
		for _, f := range h.out[:n] {
			if err := fzCheckFrame(f.Data, h.link.MAC(), h.peer.MAC()); err != nil {
				h.peer.Release(h.out[:n])
				return fmt.Errorf("sent % x: %w", f.Data, err)
			}
			h.learn(f.Data)
		}
		h.peer.Release(h.out[:n])
	}
}

// learn updates the peer a checked frame went to.
func (h *fzStack) learn(frame []byte) {
	p := wire.IPv4(wire.Ethernet(frame).Payload())
	if wire.Ethernet(frame).Type() != wire.EtherTypeIPv4 || p.Protocol() != wire.ProtoTCP || p.Dst() != peerAddr {
		return
	}
	s := wire.TCP(p.Payload())
	for _, c := range h.conns {
		if c.port != s.DstPort() || c.lport != s.SrcPort() {
			continue
		}
		end := s.Seq() + uint32(len(s.Payload()))
		if s.Flags()&wire.TCPFlagSYN != 0 {
			end++
		}
		if s.Flags()&wire.TCPFlagFIN != 0 {
			end++
		}
		if s.Flags()&wire.TCPFlagSYN != 0 || int32(end-c.ack) > 0 {
			c.ack = end
		}
		if o, err := wire.ParseTCPOptions(s.Options()); err == nil && o.HasTimestamps {
			c.tsecr = o.TSVal
		}
	}
}

// fzCheckFrame checks a frame the stack sent: a well-formed Ethernet
// frame from its MAC (mac), to the peer's (peerMAC) if to the peer, padded to the minimum and no longer than the MTU
// allows, carrying ARP or IPv4 from its address with a valid header
// checksum, and in it TCP with a valid checksum and parseable options or
// ICMP with a valid checksum that never answers an ICMP error.
func fzCheckFrame(frame, mac, peerMAC []byte) error {
	e := wire.Ethernet(frame)
	switch {
	case e.Check() != nil:
		return e.Check()
	case len(frame) < 60 || len(frame) > wire.EthernetLen+1500:
		return fmt.Errorf("frame of %d bytes", len(frame))
	case string(e.Src()) != string(mac):
		return fmt.Errorf("from MAC %v", e.Src())
	}
	switch e.Type() {
	case wire.EtherTypeARP:
		a := wire.ARP(e.Payload())
		if err := a.Check(); err != nil {
			return err
		}
		if a.SenderIP() != stackAddr || string(a.SenderMAC()) != string(mac) {
			return fmt.Errorf("ARP from %v %v", a.SenderIP(), a.SenderMAC())
		}
		return nil
	case wire.EtherTypeIPv4:
	default:
		return fmt.Errorf("EtherType %#x", e.Type())
	}
	p := wire.IPv4(e.Payload())
	switch {
	case p.Check() != nil:
		return p.Check()
	case !p.ChecksumValid():
		return errors.New("IPv4 header checksum")
	case p.Src() != stackAddr:
		return fmt.Errorf("IPv4 from %v", p.Src())
	case len(frame) != max(60, wire.EthernetLen+p.TotalLen()):
		return fmt.Errorf("a %d-byte IPv4 packet in a %d-byte frame", p.TotalLen(), len(frame))
	case p.TTL() == 0:
		return errors.New("TTL 0")
	case p.Dst() == peerAddr && string(e.Dst()) != string(peerMAC):
		return fmt.Errorf("to the peer at MAC %v", e.Dst())
	}
	switch p.Protocol() {
	case wire.ProtoTCP:
		s := wire.TCP(p.Payload())
		switch {
		case p.IsFragment() || !p.DontFragment():
			return errors.New("TCP segments carry DF and are never fragments")
		case s.Check() != nil:
			return s.Check()
		case !s.ChecksumValid(p.Src(), p.Dst()):
			return errors.New("TCP checksum")
		}
		if _, err := wire.ParseTCPOptions(s.Options()); err != nil {
			return fmt.Errorf("TCP options: %w", err)
		}
		const syn, fin, rst = wire.TCPFlagSYN, wire.TCPFlagFIN, wire.TCPFlagRST
		if f := s.Flags(); f&(syn|fin) == syn|fin || f&(syn|rst) == syn|rst || f&(wire.TCPFlagACK|syn|rst) == 0 {
			return fmt.Errorf("TCP flags %#x", f)
		}
		if s.Flags()&rst != 0 && len(s.Payload()) > 0 {
			return errors.New("a RST with data")
		}
	case wire.ProtoICMP:
		if p.FragmentOffset() != 0 {
			return nil // the rest of a fragmented echo reply
		}
		m := wire.ICMP(p.Payload())
		switch {
		case m.Check() != nil:
			return m.Check()
		case !p.MoreFragments() && !m.ChecksumValid():
			return errors.New("ICMP checksum")
		case m.Type() == wire.ICMPEchoReply:
			return nil
		case !m.IsError():
			return fmt.Errorf("ICMP type %d", m.Type())
		}
		// RFC 1122 3.2.2: no error about an ICMP error.
		q := wire.IPv4(m.Payload())
		if len(q) >= wire.IPv4MinLen && q.HeaderLen() >= wire.IPv4MinLen && len(q) > q.HeaderLen() &&
			q.Protocol() == wire.ProtoICMP && q.FragmentOffset() == 0 && wire.ICMP(q[q.HeaderLen():]).IsError() {
			return errors.New("an ICMP error about an ICMP error")
		}
	default:
		return fmt.Errorf("IP protocol %d: the stack has no UDP endpoint", p.Protocol())
	}
	return nil
}

// check asserts the invariants that hold after every step.
func (h *fzStack) check() error {
	t, st := h.p.TCP(), h.p.TCP().Stats()
	rx := h.p.Stats().RxFrames
	switch {
	case rx != h.peer.Stats().TxFrames:
		return fmt.Errorf("the stack received %d frames of %d sent", rx, h.peer.Stats().TxFrames)
	case t.Len() > h.initial+h.steps:
		return fmt.Errorf("%d connections: %d set up and %d steps", t.Len(), h.initial, h.steps)
	case t.Timers() > t.Len():
		return fmt.Errorf("%d timers for %d connections", t.Timers(), t.Len())
	case h.ln.Pending() > 4:
		return fmt.Errorf("%d connections in an accept queue of 4", h.ln.Pending())
	case st.InCsumErrors > st.InErrs:
		return fmt.Errorf("%d checksum errors of %d bad segments", st.InCsumErrors, st.InErrs)
	case st.OutRsts > st.OutSegs:
		return fmt.Errorf("%d resets of %d segments sent", st.OutRsts, st.OutSegs)
	case st.RetransSegs > st.OutSegs:
		return fmt.Errorf("%d retransmissions of %d segments sent", st.RetransSegs, st.OutSegs)
	case h.link.BadFrames() != 0 || h.peer.BadFrames() != 0:
		return fmt.Errorf("frames released twice or not held: %d by the stack, %d by the peer", h.link.BadFrames(), h.peer.BadFrames())
	}
	return nil
}

// finish ends every connection and runs out the clock: then nothing may
// be left, no connection, no timer, and every buffer of both pipe ends
// back in its pool.
func (h *fzStack) finish() error {
	h.ln.Close()
	for _, c := range h.conns {
		if c.c != nil {
			c.c.Abort()
		}
	}
	t := h.p.TCP()
	t.Conns(func(c *tcp.Conn) { c.Abort() }) // those the fuzzer opened
	for range 1000 {
		if err := h.poll(); err != nil {
			return err
		}
		d, ok := h.p.Deadline()
		if !ok {
			break
		}
		h.now = max(h.now, d-time.Millisecond)
	}
	if t.Len() != 0 || t.Timers() != 0 {
		return fmt.Errorf("after every connection ended: %d connections, %d timers", t.Len(), t.Timers())
	}
	h.p.Close()
	if err := h.collect(); err != nil {
		return err
	}
	for _, end := range []*nic.Pipe{h.link, h.peer} {
		fs := make([]nic.Frame, fzPipeBuffers+1)
		if n := end.Alloc(fs); n != fzPipeBuffers {
			return fmt.Errorf("%d of %d buffers back in the pool", n, fzPipeBuffers)
		}
	}
	return h.check()
}

// Step kinds: the low three bits of a step's first byte.
const (
	fzOpRaw      = iota // any bytes as a frame
	fzOpSegment         // a TCP segment to a connection or the listener
	fzOpFrags           // the same, in IPv4 fragments
	fzOpICMP            // an ICMP error quoting a segment of a connection
	fzOpWait            // time passes
	fzOpDeadline        // time jumps to the next timer
	fzOpApp             // the app reads, writes, closes, accepts
	fzOpRawTCP          // any bytes as a TCP segment, in a valid IPv4 header
)

// fzInput reads a fuzz input byte by byte, zeros past its end.
type fzInput []byte

func (in *fzInput) next() byte {
	if len(*in) == 0 {
		return 0
	}
	b := (*in)[0]
	*in = (*in)[1:]
	return b
}

func (in *fzInput) next16() uint16 { return uint16(in.next())<<8 | uint16(in.next()) }

// take returns the next n bytes, or what is left.
func (in *fzInput) take(n int) []byte {
	n = min(n, len(*in))
	b := (*in)[:n]
	*in = (*in)[n:]
	return b
}

// conn picks the connection a step is about: an existing one, or below
// 0x80, a peer of the listener from one of 16 ports (more than its SYN
// and accept queues hold), new until it sends.
func (h *fzStack) conn(in *fzInput) *fzConn {
	b := in.next()
	if b < 0x80 {
		return h.conns[int(b)%len(h.conns)]
	}
	port := fzNewPeer + uint16(b%16)
	for _, c := range h.conns {
		if c.port == port {
			return c
		}
	}
	c := &fzConn{port: port, lport: fzListenPort, seq: uint32(port) << 20}
	h.conns = append(h.conns, c)
	return c
}

// step decodes and runs one step.
func (h *fzStack) step(in *fzInput) error {
	h.steps++
	op := in.next()
	switch op & 7 {
	case fzOpRaw:
		frame := in.take(int(in.next16()) % (wire.EthernetLen + 1501))
		if op&0x80 == 0 && len(frame) >= 6 {
			copy(frame, h.link.MAC()) // past the MAC filter, mostly
		}
		return h.send(frame)
	case fzOpSegment, fzOpFrags:
		frame := h.fuzzSegment(in, op&0xc0 != 0xc0)
		if op&7 == fzOpFrags {
			return h.send(fzFragment(in, frame)...)
		}
		return h.send(frame)
	case fzOpICMP:
		return h.send(h.icmpError(in))
	case fzOpWait:
		h.now += time.Duration(in.next()) * 10 * time.Millisecond
		return h.poll()
	case fzOpDeadline:
		if d, ok := h.p.Deadline(); ok {
			h.now = max(h.now, d-time.Millisecond)
		}
		return h.poll()
	case fzOpApp:
		h.app(in)
		return h.poll()
	case fzOpRawTCP:
		c := h.conn(in)
		seg := in.take(int(in.next()))
		frame := h.ipv4Frame(wire.ProtoTCP, wire.IPv4MinLen+len(seg))
		s := frame[wire.EthernetLen+wire.IPv4MinLen:]
		copy(s, seg)
		if op&0x40 == 0 && len(s) >= 4 {
			binary.BigEndian.PutUint16(s, c.port)
			binary.BigEndian.PutUint16(s[2:], c.lport)
		}
		if op&0x20 != 0 {
			// From another host of the subnet, or beyond it: what the
			// stack answers waits for ARP, or has no route.
			src := frame[wire.EthernetLen+12:]
			src[2], src[3] = in.next()&0x81, in.next()
			fixChecksum(frame[wire.EthernetLen:])
		}
		if op&0x80 == 0 && len(s) >= 18 {
			fzFixTCP(frame[wire.EthernetLen:])
		}
		return h.send(frame)
	}
	return nil
}

// fuzzSegment builds a segment to a connection from the input: flags,
// sequence and acknowledgment numbers near the expected ones (or the
// last acknowledgment again), window,
// payload, options, then a few bytes flipped anywhere in the frame, with
// the checksums fixed after them if fix.
func (h *fzStack) fuzzSegment(in *fzInput, fix bool) []byte {
	c := h.conn(in)
	flags := in.next()
	dseq, dack := int16(in.next16()), int16(in.next16())
	wnd := uint16(in.next()) << 8
	payload := make([]byte, int(in.next())*4)
	for i := range payload {
		payload[i] = byte(i)
	}
	sel := in.next()
	o := fzNoOpts
	if sel&1 != 0 {
		o.MSS = uint16(in.next()) << 3
	}
	if sel&2 != 0 {
		o.WindowScale = int8(in.next() % 16)
	}
	o.SACKPermitted = sel&4 != 0
	if sel&8 != 0 {
		l := c.ack - uint32(in.next())<<4
		o.SACK[0], o.NSACK = wire.SACKBlock{Left: l, Right: l + uint32(in.next())<<4}, 1
	}
	if c.ts != (sel&16 != 0) { // the timestamps c should send, mostly
		o = c.opts(o)
		if sel&32 != 0 {
			o.TSVal -= uint32(in.next()) << 8 // an old one: PAWS
		}
	}
	// The acknowledgment near what we sent, or near what the peer
	// acknowledged last: the same again is a duplicate ACK.
	ack := c.ack
	if sel&64 != 0 {
		ack = c.acked
	}
	seq, ack := c.seq+uint32(int32(dseq)), ack+uint32(int32(dack))
	if flags&wire.TCPFlagACK != 0 && int32(ack-c.acked) > 0 && int32(ack-c.ack) <= 0 {
		c.acked = ack
	}
	frame := h.segmentFrame(c.port, c.lport, flags, seq, ack, wnd, payload, o)
	if dseq == 0 && flags&wire.TCPFlagRST == 0 {
		c.seq += uint32(len(payload))
		if flags&wire.TCPFlagSYN != 0 {
			c.seq++
		}
		if flags&wire.TCPFlagFIN != 0 {
			c.seq++
		}
	}
	for range in.next() % 4 {
		frame[int(in.next())%len(frame)] ^= in.next()
	}
	if fix {
		fzFixIPv4(frame[wire.EthernetLen:])
		fzFixTCP(frame[wire.EthernetLen:])
	}
	return frame
}

// fzFixIPv4 recomputes the header checksum of the IPv4 packet in b, if
// its header is whole.
func fzFixIPv4(b []byte) {
	if wire.IPv4(b).Check() == nil {
		fixChecksum(b)
	}
}

// fzFixTCP recomputes the TCP checksum of the IPv4 packet in b, if its
// lengths make sense.
func fzFixTCP(b []byte) {
	p := wire.IPv4(b)
	if p.Check() != nil || len(p.Payload()) < 18 {
		return
	}
	s := p.Payload()
	s[16], s[17] = 0, 0
	binary.BigEndian.PutUint16(s[16:], wire.Checksum(s, wire.PseudoHeaderSum(p.Src(), p.Dst(), wire.ProtoTCP, len(s))))
}

// fzFragment splits the IPv4 packet in frame into fragments of a size
// the input picks, and sends them in order or reversed, with the first
// one twice (an overlap) or the last one missing (a reassembly that
// times out) as the input says.
func fzFragment(in *fzInput, frame []byte) [][]byte {
	p := wire.IPv4(frame[wire.EthernetLen:])
	if p.Check() != nil || len(p.Payload()) == 0 {
		return [][]byte{frame}
	}
	size, how := (int(in.next()%32)+1)*8, in.next()
	hl, payload := p.HeaderLen(), p.Payload()
	var frags [][]byte
	for off := 0; off < len(payload); off += size {
		end := min(off+size, len(payload))
		f := make([]byte, wire.EthernetLen+hl+end-off)
		copy(f, frame[:wire.EthernetLen+hl])
		copy(f[wire.EthernetLen+hl:], payload[off:end])
		q := f[wire.EthernetLen:]
		binary.BigEndian.PutUint16(q[2:], uint16(hl+end-off))
		fl := uint16(off / 8)
		if end < len(payload) {
			fl |= 0x2000 // MF
		}
		binary.BigEndian.PutUint16(q[6:], fl)
		fixChecksum(q)
		frags = append(frags, f)
	}
	if how&1 != 0 {
		for i, j := 0, len(frags)-1; i < j; i, j = i+1, j-1 {
			frags[i], frags[j] = frags[j], frags[i]
		}
	}
	if how&2 != 0 {
		frags = append(frags, frags[0])
	}
	if how&4 != 0 && len(frags) > 1 {
		frags = frags[:len(frags)-1]
	}
	return frags
}

// icmpError builds an ICMP error from the peer or a router about a
// segment we sent on a connection: its IPv4 header and first 8 bytes
// (ports and a sequence number near the connection's), quoted.
func (h *fzStack) icmpError(in *fzInput) []byte {
	c := h.conn(in)
	kinds := [][2]uint8{{3, 4}, {3, 3}, {3, 1}, {3, 2}, {11, 0}, {12, 0}, {4, 0}, {3, 13}}
	k := kinds[in.next()%uint8(len(kinds))]
	rest := uint32(in.next16())
	seq := c.ack - uint32(in.next())
	quoteLen := wire.IPv4MinLen + 8 + int(in.next()%4)*8
	n := wire.IPv4MinLen + wire.ICMPHeaderLen + quoteLen
	frame := h.ipv4Frame(wire.ProtoICMP, n)
	m := frame[wire.EthernetLen+wire.IPv4MinLen:]
	q := m[wire.ICMPHeaderLen:]
	wire.IPv4Fields{TotalLen: 1500, ID: 7, DontFragment: true, Protocol: wire.ProtoTCP, Src: stackAddr, Dst: peerAddr}.Encode(q)
	binary.BigEndian.PutUint16(q[wire.IPv4MinLen:], c.lport)
	binary.BigEndian.PutUint16(q[wire.IPv4MinLen+2:], c.port)
	binary.BigEndian.PutUint32(q[wire.IPv4MinLen+4:], seq)
	wire.ICMPFields{Type: k[0], Code: k[1], Rest: rest}.Encode(m)
	return frame
}

// app runs one of the app's calls on a connection, or accepts one, or
// dials a new one.
func (h *fzStack) app(in *fzInput) {
	c, what, n := h.conn(in), in.next()%8, int(in.next())
	switch what {
	case 5:
		if a, err := h.ln.Accept(); err == nil {
			for _, c := range h.conns {
				if c.c == nil && c.port == a.RemoteAddr().Port() {
					c.c = a
				}
			}
		}
		return
	case 7:
		port := fzDialPort + uint16(n%4)
		if tc, err := h.p.TCP().Dial(h.now, netip.AddrPort{}, netip.AddrPortFrom(peerAddr, port)); err == nil {
			h.conns = append(h.conns, &fzConn{port: port, lport: tc.LocalAddr().Port(), seq: uint32(port) << 20, c: tc})
		}
		return
	}
	if c.c == nil {
		return
	}
	b := h.buf[:min(n*16, len(h.buf))]
	switch what {
	case 0:
		c.c.Read(b)
	case 1:
		c.c.Write(b)
	case 2:
		c.c.CloseWrite()
	case 3:
		c.c.Close()
	case 4:
		c.c.Abort()
	case 6:
		c.c.SetKeepAlive(n&1 == 0)
		c.c.SetKeepAlivePeriod(time.Duration(n)*10*time.Millisecond, time.Duration(n%16+1)*10*time.Millisecond)
	}
}

// TestFuzzStackStates: the harness's scripted peers leave a connection
// in each state they claim, and the stack passes the checks there and
// after every connection ended.
func TestFuzzStackStates(t *testing.T) {
	h, err := newFzStack()
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, c := range h.conns {
		states = append(states, c.want.String())
	}
	t.Log(states)
	if err := h.check(); err != nil {
		t.Fatal(err)
	}
	if err := h.finish(); err != nil {
		t.Fatal(err)
	}
}

// fzStep encodes steps for the seed corpus.
func fzStep(op byte, args ...byte) []byte { return append([]byte{op}, args...) }

// fzRaw is a raw frame step, for seeds.
func fzRaw(frame []byte) []byte {
	return append(fzStep(fzOpRaw|0x80, byte(len(frame)>>8), byte(len(frame))), frame...)
}

// fzRawFrame is a frame from the peer to the stack carrying payload as
// IP protocol proto, behind optWords words of IPv4 options (NOPs), with
// valid checksums.
func fzRawFrame(proto uint8, optWords int, payload []byte) []byte {
	hl := wire.IPv4MinLen + 4*optWords
	b := make([]byte, wire.EthernetLen+hl+len(payload))
	wire.Ethernet(b).Encode(net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}, wire.EtherTypeIPv4)
	p := b[wire.EthernetLen:]
	wire.IPv4Fields{TotalLen: len(p), Protocol: proto, Src: peerAddr, Dst: stackAddr}.Encode(p)
	p[0] = 0x40 | byte(hl/4)
	for i := wire.IPv4MinLen; i < hl; i++ {
		p[i] = 1 // NOP (RFC 791)
	}
	copy(p[hl:], payload)
	fixChecksum(p)
	l4 := p[hl:]
	var csum int // offset of the transport checksum
	switch proto {
	case wire.ProtoICMP:
		csum = 2
		binary.BigEndian.PutUint16(l4[csum:], wire.Checksum(l4, 0))
		return b
	case wire.ProtoUDP:
		csum = 6
	case wire.ProtoTCP:
		csum = 16
	default:
		return b
	}
	binary.BigEndian.PutUint16(l4[csum:], wire.Checksum(l4, wire.PseudoHeaderSum(peerAddr, stackAddr, proto, len(l4))))
	return b
}

// fzARP is an ARP packet from the peer's MAC, from sender about target.
func fzARP(op uint16, sender, target netip.Addr) []byte {
	b := make([]byte, wire.EthernetLen+wire.ARPLen)
	peer := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	wire.Ethernet(b).Encode(wire.BroadcastMAC, peer, wire.EtherTypeARP)
	wire.ARPFields{Op: op, SenderMAC: peer, SenderIP: sender, TargetIP: target}.Encode(b[wire.EthernetLen:])
	return b
}

// fzSeeds are the seed corpus of FuzzTCPFrames: a SYN to the listener
// and the connection accepted, invalid flag combinations, data in and out
// of order, the app reading, writing and closing, FINs and RSTs in every
// state, bad checksums, options, fragments (in order, reversed,
// overlapping, never completed), ICMP errors quoting a connection, raw
// segments and frames.
func fzSeeds() [][]byte {
	const (
		ack, syn, fin, rst, psh = wire.TCPFlagACK, wire.TCPFlagSYN, wire.TCPFlagFIN, wire.TCPFlagRST, wire.TCPFlagPSH
		listener                = 0x80 // a new peer of the listener
	)
	other := netip.MustParseAddr("198.18.0.7") // another host of the subnet
	segSel := func(conn, flags byte, dseq, dack int16, wnd, payload4, sel byte) []byte {
		return fzStep(fzOpSegment, conn, flags, byte(dseq>>8), byte(dseq), byte(dack>>8), byte(dack), wnd, payload4, sel, 0)
	}
	seg := func(conn, flags byte, dseq, dack int16, payload4 byte) []byte {
		return segSel(conn, flags, dseq, dack, 0xff, payload4, 0)
	}
	dupAck := segSel(3, ack, 0, 0, 0xff, 0, 64)
	cat := func(steps ...[]byte) []byte {
		var b []byte
		for _, s := range steps {
			b = append(b, s...)
		}
		return b
	}
	return [][]byte{
		{},
		cat(seg(listener, syn, 0, 0, 0), seg(listener, ack, 0, 0, 4), fzStep(fzOpApp, 0, 5, 0)), // a new connection, accepted
		cat(seg(listener, syn|fin, 0, 0, 0), seg(listener, syn|rst, 0, 0, 0), seg(listener, 0, 0, 0, 0)),
		cat(seg(0, ack|psh, 0, 0, 100), seg(0, ack|psh, 1000, 0, 10), fzStep(fzOpWait, 30), seg(0, ack, 0, 0, 0)), // data, out of order
		cat(seg(3, ack|psh, 0, 0, 10), fzStep(fzOpApp, 3, 0, 4), fzStep(fzOpApp, 3, 1, 200)),
		cat(seg(3, ack|fin, 0, 0, 0), fzStep(fzOpApp, 3, 3, 0), fzStep(fzOpDeadline), seg(3, ack, 0, 0, 0)),
		cat(seg(0, rst, 0, 0, 0), seg(1, rst, 5, 0, 0), seg(2, rst|ack, 0, 0, 0), seg(4, syn, 0, 0, 0)), // RFC 5961 blind RST, SYN
		cat(seg(5, ack, 0, 0, 0), seg(5, ack|fin, 0, 0, 0), seg(6, ack, 0, 0, 0), seg(7, ack|fin, 0, 0, 0)),
		cat(seg(8, syn, 0, 0, 0), seg(8, ack|fin, 0, 0, 0), fzStep(fzOpWait, 200)), // TIME-WAIT
		cat(seg(9, syn|ack, 0, 0, 0), seg(9, rst|ack, 0, 0, 0)),                    // SYN-SENT
		cat(seg(2, ack, 0, 0, 0), fzStep(fzOpDeadline), fzStep(fzOpDeadline), fzStep(fzOpDeadline)),
		cat(fzStep(fzOpApp, 3, 1, 200), dupAck, dupAck, dupAck, dupAck, seg(3, ack, 0, 0, 0)), // a window update, 3 duplicates: fast retransmit
		cat(segSel(3, ack, 0, 0, 0, 0, 0), fzStep(fzOpApp, 3, 1, 100), fzStep(fzOpDeadline), fzStep(fzOpDeadline),
			fzStep(fzOpDeadline), seg(3, ack, 0, 0, 0)), // a zero window, probed
		cat(seg(6, ack|fin, 0, -1, 0), seg(6, ack, 0, 0, 0)), // CLOSING, then TIME-WAIT
		cat(seg(0x80, syn, 0, 0, 0), seg(0x81, syn, 0, 0, 0), seg(0x82, syn, 0, 0, 0), seg(0x83, syn, 0, 0, 0),
			seg(0x84, syn, 0, 0, 0), seg(0x85, syn, 0, 0, 0), seg(0x86, syn, 0, 0, 0), seg(0x87, syn, 0, 0, 0),
			seg(0x88, syn, 0, 0, 0), seg(0x89, syn, 0, 0, 0), seg(0x84, ack, 0, 0, 0), seg(0x85, ack, 0, 0, 0),
			seg(0x86, ack, 0, 0, 0), seg(0x87, ack, 0, 0, 0), fzStep(fzOpDeadline), fzStep(fzOpDeadline)), // SYN and accept queues full
		cat(fzStep(fzOpApp, 1, 6, 2), fzStep(fzOpDeadline), fzStep(fzOpDeadline), fzStep(fzOpDeadline),
			fzStep(fzOpDeadline), fzStep(fzOpDeadline), fzStep(fzOpDeadline), fzStep(fzOpDeadline)), // keepalive probes
		cat(fzStep(fzOpApp, 0, 7, 0), seg(10, syn|ack, 0, 0, 0), fzStep(fzOpApp, 10, 1, 3)), // a new active open
		fzStep(fzOpSegment|0xc0, 0, ack, 0, 0, 0, 0, 0xff, 1, 0, 1, 50, 0x55),               // a bad TCP checksum
		fzStep(fzOpSegment, 3, ack, 0, 0, 0, 0, 0xff, 0, 0x1f, 5, 7, 1, 1),                  // options: MSS, WS, SACK, no timestamps
		fzStep(fzOpSegment, 3, ack, 0, 0, 0, 0, 0xff, 0, 0x20, 3),                           // an old TSval
		fzStep(fzOpFrags, 0, ack|psh, 0, 0, 0, 0, 0xff, 50, 0, 0, 2, 0),                     // fragments in order
		fzStep(fzOpFrags, 3, ack|psh, 0, 0, 0, 0, 0xff, 50, 0, 0, 0, 3),                     // reversed, the first twice
		cat(fzStep(fzOpFrags, 1, ack, 0, 0, 0, 0, 0xff, 20, 0, 0, 1, 4), fzStep(fzOpWait, 255), fzStep(fzOpWait, 255)),
		cat(fzStep(fzOpApp, 3, 1, 100), fzStep(fzOpICMP, 3, 0, 2, 0x40, 0xff, 0)),         // fragmentation needed, MTU 576, data in flight
		cat(fzStep(fzOpICMP, 6, 0, 0, 0x20, 1, 1), fzStep(fzOpICMP, 6, 0, 0, 0x20, 0, 1)), // about our FIN; about nothing in flight
		cat(fzStep(fzOpICMP, 0, 1, 0, 0, 1, 0), fzStep(fzOpICMP, 4, 4, 0, 0, 1, 2), fzStep(fzOpICMP, 9, 5, 0, 0, 0, 3),
			fzStep(fzOpICMP, 2, 6, 0, 0, 0, 0), fzStep(fzOpICMP, 0x81, 3, 0, 0, 0, 0)),
		fzStep(fzOpRawTCP, 0, 20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0),
		cat(fzStep(fzOpRawTCP|0x20, 0x80, 20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, syn, 0xff, 0xff, 0, 0, 0, 0, 0, 7),
			fzRaw(fzARP(wire.ARPReply, other, stackAddr)), fzStep(fzOpDeadline), fzStep(fzOpDeadline)), // a SYN from another host, ARP for it
		fzStep(fzOpRawTCP|0x20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, ack, 0xff, 0xff, 0, 0, 0, 0, 0x80, 1), // from off the subnet: no route
		fzStep(fzOpRawTCP, 3, 28, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0x70, 0x10, 0xff, 0xff, 0, 0, 0, 0, 2, 4, 5, 0, 3, 9, 8, 2),
		fzStep(fzOpRaw|0x80, 0, 18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 2, 8, 6, 0, 1, 8, 0), // a runt ARP packet
		fzStep(fzOpRaw, 0, 15, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 8, 0, 0x4f),                              // IHL 15, no header
		fzRaw(fzRawFrame(wire.ProtoICMP, 0, []byte{wire.ICMPEcho, 0, 0, 0, 0, 1, 0, 1, 'p', 'i', 'n', 'g'})),
		fzRaw(fzRawFrame(wire.ProtoUDP, 0, []byte{0, 53, 0, 9, 0, 12, 0, 0, 'u', 'd', 'p', '!'})), // to a closed port
		fzRaw(fzRawFrame(wire.ProtoTCP, 1, []byte{0x13, 0x88, 0, 80, 0, 0, 1, 0, 0, 0, 0, 0, 0x50, syn, 0xff, 0xff, 0, 0, 0, 0})),
		fzRaw(fzRawFrame(47, 0, make([]byte, 20))), // an unknown protocol
		fzRaw(fzARP(wire.ARPRequest, peerAddr, stackAddr)), fzRaw(fzARP(wire.ARPReply, peerAddr, peerAddr)),
		cat(fzStep(fzOpApp, 4, 4), fzStep(fzOpApp, 0, 2), fzStep(fzOpApp, 1, 3), seg(1, ack, 0, 0, 0)),
	}
}

// FuzzTCPFrames drives whole frames (Ethernet, IPv4 with reassembly,
// ICMP, TCP) into a live TCP table: a listener and connections in every
// state setup scripts, each a 4-tuple the fuzzer can hit with segments
// built from its input (checksums fixed after mutation most of the time),
// raw frames, fragments, ICMP errors quoting a connection, time and app
// calls. After every step: no panic, every frame received, connections
// and timers bounded, every frame the stack sent well formed
// (fzCheckFrame). At the end every connection ends, the clock runs out,
// and nothing is left: no connection, no timer, no buffer out of its
// pool.
func FuzzTCPFrames(f *testing.F) {
	for _, seed := range fzSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := newFzStack()
		if err != nil {
			t.Fatal(err)
		}
		in := fzInput(data)
		for step := 0; len(in) > 0 && step < 64; step++ {
			if err := h.step(&in); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
			if err := h.check(); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		}
		if err := h.finish(); err != nil {
			t.Fatalf("at the end: %v", err)
		}
	})
}
