package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/xdpnet/xdpnet/internal/wire"
	"github.com/xdpnet/xdpnet/nic"
	"github.com/xdpnet/xdpnet/sockapi"
)

// captureConfig is what `xdpnet capture` was asked to do.
type captureConfig struct {
	target
	write   string        // -w: the pcap file; "-" stdout; "": summary lines
	count   int           // -c: stop after this many frames; 0: no limit
	seconds time.Duration // -G: stop after this long; 0: no limit
	snap    int           // -s
	expr    string        // the filter, the arguments after the flags
}

func parseCapture(args []string) (captureConfig, error) {
	fs := newFlagSet("capture")
	var c captureConfig
	var secs float64
	c.flags(fs)
	fs.StringVar(&c.write, "w", "", "write the frames to this pcap file (- for stdout), which tshark and Wireshark read (default: a summary line per frame)")
	fs.IntVar(&c.count, "c", 0, "stop after this many frames")
	fs.Float64Var(&secs, "G", 0, "stop after this many seconds")
	fs.IntVar(&c.snap, "s", 0, "keep at most this many bytes of a frame (default: whole frames)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: xdpnet capture [flags] [expression]\n\n"+
			"The frames in and out of a running stack, as tcpdump: until -c, -G or Ctrl-C.\n"+
			"expression: host H, port P, tcp, udp, icmp, arp, joined by and (as tcpdump's).\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, usageError{err}
	}
	if err := c.check("capture"); err != nil {
		return c, err
	}
	c.expr = strings.Join(fs.Args(), " ")
	if _, err := sockapi.ParseCaptureFilter(c.expr); err != nil {
		return c, usageError{fmt.Errorf("capture: %w", err)}
	}
	switch {
	case c.count < 0:
		return c, usageError{fmt.Errorf("capture: -c %d: want a positive count", c.count)}
	case secs < 0 || secs > 86400*365:
		return c, usageError{fmt.Errorf("capture: -G %v: want a positive number of seconds", secs)}
	case c.snap < 0:
		return c, usageError{fmt.Errorf("capture: -s %d: want a positive snap length", c.snap)}
	}
	c.seconds = time.Duration(secs * float64(time.Second))
	return c, nil
}

// capture runs `xdpnet capture`.
func capture(args []string, stdout io.Writer) error {
	c, err := parseCapture(args)
	if err != nil {
		return err
	}
	cl, info, err := c.attach()
	if err != nil {
		return err
	}
	defer cl.Close()
	capt, err := cl.Capture(sockapi.CaptureConfig{Filter: c.expr, SnapLen: c.snap})
	if err != nil {
		return err
	}
	out := frameWriter{json: c.json}
	// The counts go where tcpdump's go, apart from the frames: to stdout,
	// unless the pcap does.
	counts := stdout
	var file *os.File
	switch c.write {
	case "":
		out.lines = bufio.NewWriter(stdout)
	case "-":
		out.pcap, counts = bufio.NewWriterSize(stdout, 256<<10), os.Stderr
	default:
		if file, err = os.Create(c.write); err != nil {
			capt.Stop()
			return fmt.Errorf("capture: %w", err)
		}
		out.pcap = bufio.NewWriterSize(file, 256<<10)
	}
	if out.pcap != nil {
		out.pcap.Write(nic.AppendPcapHeader(nil, capt.SnapLen()))
	}
	// tcpdump's first line: the capture runs from here on.
	if c.json {
		b, _ := json.Marshal(struct {
			Listening string `json:"listening_on"`
			SnapLen   int    `json:"snaplen"`
		}{stackName(info), capt.SnapLen()})
		fmt.Fprintf(counts, "%s\n", b)
	} else {
		fmt.Fprintf(counts, "listening on %s, link-type EN10MB (Ethernet), snapshot length %d bytes\n", stackName(info), capt.SnapLen())
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.seconds > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.seconds)
		defer cancel()
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			capt.Stop()
		case <-done:
		}
	}()
	written := 0
	var streamErr error
	for {
		f, err := capt.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			streamErr = fmt.Errorf("capture: %w (after %d packets)", err, written)
			break
		}
		if c.count > 0 && written == c.count {
			continue // stopped: the stack's last frames
		}
		if err := out.frame(f); err != nil {
			capt.Stop()
			streamErr = fmt.Errorf("capture: %w", err)
			break
		}
		written++
		if written == c.count {
			capt.Stop()
		}
	}
	err = out.flush()
	if file != nil {
		err = errors.Join(err, file.Close())
	}
	if err != nil && streamErr == nil {
		streamErr = fmt.Errorf("capture: %w", err)
	}
	st := capt.Stats()
	if c.json {
		b, _ := json.Marshal(struct {
			Captured int    `json:"captured"`
			Received uint64 `json:"received_by_filter"`
			Dropped  uint64 `json:"dropped"`
		}{written, st.Captured + st.Dropped, st.Dropped})
		fmt.Fprintf(counts, "%s\n", b)
	} else {
		fmt.Fprintf(counts, "%d packets captured\n%d packets received by filter\n%d packets dropped by the stack's capture buffer\n",
			written, st.Captured+st.Dropped, st.Dropped)
	}
	return streamErr
}

// frameWriter writes captured frames: into a pcap, or as summary lines,
// or JSON lines.
type frameWriter struct {
	pcap, lines *bufio.Writer // one of them
	json        bool
	rec         []byte
}

func (w *frameWriter) frame(f sockapi.CapturedFrame) error {
	if w.pcap != nil {
		w.rec = nic.AppendPcapRecord(w.rec[:0], f.Time, f.Data, f.Len)
		_, err := w.pcap.Write(w.rec)
		return err
	}
	if w.json {
		b, err := json.Marshal(struct {
			sockapi.CapturedFrame
			Summary string `json:"summary"`
		}{f, summary(f.Data, f.Len)})
		if err != nil {
			return err
		}
		_, err = w.lines.Write(append(b, '\n'))
		return err
	}
	_, err := fmt.Fprintf(w.lines, "%s q%d %-3s %s\n", f.Time.Format("15:04:05.000000"), f.Queue, f.Dir, summary(f.Data, f.Len))
	return err
}

func (w *frameWriter) flush() error {
	if w.pcap != nil {
		return w.pcap.Flush()
	}
	return w.lines.Flush()
}

// summary describes a frame in a line, as tcpdump does (with absolute
// sequence numbers, as its -S). A frame cut short, or malformed, says
// so rather than read past its bytes.
func summary(frame []byte, origLen int) string {
	e := wire.Ethernet(frame)
	if e.Check() != nil {
		return fmt.Sprintf("[|ether], length %d", origLen)
	}
	switch e.Type() {
	case wire.EtherTypeARP:
		a := wire.ARP(e.Payload())
		if a.Check() != nil {
			return fmt.Sprintf("ARP [|arp], length %d", len(e.Payload()))
		}
		if a.Op() == wire.ARPRequest {
			return fmt.Sprintf("ARP, Request who-has %s tell %s, length %d", a.TargetIP(), a.SenderIP(), wire.ARPLen)
		}
		return fmt.Sprintf("ARP, Reply %s is-at %s, length %d", a.SenderIP(), a.SenderMAC(), wire.ARPLen)
	case wire.EtherTypeIPv4:
	default:
		return fmt.Sprintf("ethertype 0x%04x, length %d", e.Type(), origLen)
	}
	p := wire.IPv4(e.Payload())
	if len(p) < wire.IPv4MinLen || p.HeaderLen() < wire.IPv4MinLen || p.HeaderLen() > len(p) {
		return fmt.Sprintf("IP [|ip], length %d", origLen)
	}
	l4, l4len := p[p.HeaderLen():], p.TotalLen()-p.HeaderLen()
	src, dst := p.Src(), p.Dst()
	if p.FragmentOffset() != 0 {
		return fmt.Sprintf("IP %s > %s: ip-proto-%d (fragment at %d), length %d", src, dst, p.Protocol(), p.FragmentOffset(), l4len)
	}
	switch p.Protocol() {
	case wire.ProtoTCP:
		if len(l4) < wire.TCPMinLen {
			return fmt.Sprintf("IP %s > %s: tcp [|tcp]", src, dst)
		}
		s := wire.TCP(l4)
		line := fmt.Sprintf("IP %s.%d > %s.%d: Flags [%s], seq %d", src, s.SrcPort(), dst, s.DstPort(), tcpFlags(s.Flags()), s.Seq())
		if s.Flags()&wire.TCPFlagACK != 0 {
			line += fmt.Sprintf(", ack %d", s.Ack())
		}
		return line + fmt.Sprintf(", win %d, length %d", s.Window(), max(0, l4len-s.HeaderLen()))
	case wire.ProtoUDP:
		if len(l4) < wire.UDPHeaderLen {
			return fmt.Sprintf("IP %s > %s: udp [|udp]", src, dst)
		}
		u := wire.UDP(l4)
		return fmt.Sprintf("IP %s.%d > %s.%d: UDP, length %d", src, u.SrcPort(), dst, u.DstPort(), max(0, l4len-wire.UDPHeaderLen))
	case wire.ProtoICMP:
		if len(l4) < 8 {
			return fmt.Sprintf("IP %s > %s: icmp [|icmp]", src, dst)
		}
		id, seq := binary.BigEndian.Uint16(l4[4:]), binary.BigEndian.Uint16(l4[6:])
		switch l4[0] {
		case wire.ICMPEcho:
			return fmt.Sprintf("IP %s > %s: ICMP echo request, id %d, seq %d, length %d", src, dst, id, seq, l4len)
		case wire.ICMPEchoReply:
			return fmt.Sprintf("IP %s > %s: ICMP echo reply, id %d, seq %d, length %d", src, dst, id, seq, l4len)
		}
		return fmt.Sprintf("IP %s > %s: ICMP type %d, code %d, length %d", src, dst, l4[0], l4[1], l4len)
	}
	return fmt.Sprintf("IP %s > %s: ip-proto-%d, length %d", src, dst, p.Protocol(), l4len)
}

// tcpFlags writes TCP flags as tcpdump does, in the order of their
// bits: FSRP, "." for ACK, then UEW.
func tcpFlags(f uint8) string {
	var b []byte
	for i, c := range []byte("FSRP.UEW") {
		if f&(1<<i) != 0 {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "none"
	}
	return string(b)
}
