package wire

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// TCP header layout (RFC 9293 section 3.1).
const (
	TCPMinLen        = 20
	TCPMaxHeaderLen  = 60
	tcpDstPortOffset = 2
	tcpSeqOffset     = 4
	tcpAckOffset     = 8
	tcpDataOffOffset = 12
	tcpFlagsOffset   = 13
	tcpWindowOffset  = 14
	tcpCsumOffset    = 16
	tcpUrgentOffset  = 18
)

// TCP flags.
const (
	TCPFlagFIN = 1 << iota
	TCPFlagSYN
	TCPFlagRST
	TCPFlagPSH
	TCPFlagACK
	TCPFlagURG
	TCPFlagECE
	TCPFlagCWR
)

// TCP is a TCP segment: header, options and payload.
type TCP []byte

// Check validates the header and that the data offset covers the fixed
// header and stays within the bytes.
func (s TCP) Check() error {
	if len(s) < TCPMinLen {
		return ErrTruncated
	}
	if hl := s.HeaderLen(); hl < TCPMinLen || hl > len(s) {
		return ErrHeaderLen
	}
	return nil
}

// SrcPort is the source port.
func (s TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(s) }

// DstPort is the destination port.
func (s TCP) DstPort() uint16 { return binary.BigEndian.Uint16(s[tcpDstPortOffset:]) }

// Seq is the sequence number.
func (s TCP) Seq() uint32 { return binary.BigEndian.Uint32(s[tcpSeqOffset:]) }

// Ack is the acknowledgment number.
func (s TCP) Ack() uint32 { return binary.BigEndian.Uint32(s[tcpAckOffset:]) }

// HeaderLen is the header length in bytes, options included.
func (s TCP) HeaderLen() int { return int(s[tcpDataOffOffset]>>4) * 4 }

// Flags are the control bits (TCPFlagFIN …).
func (s TCP) Flags() uint8 { return s[tcpFlagsOffset] }

// Window is the window field, before any scaling.
func (s TCP) Window() uint16 { return binary.BigEndian.Uint16(s[tcpWindowOffset:]) }

// Checksum is the checksum field.
func (s TCP) Checksum() uint16 { return binary.BigEndian.Uint16(s[tcpCsumOffset:]) }

// Urgent is the urgent pointer.
func (s TCP) Urgent() uint16 { return binary.BigEndian.Uint16(s[tcpUrgentOffset:]) }

// Options are the header's option bytes.
func (s TCP) Options() []byte { return s[TCPMinLen:s.HeaderLen()] }

// Payload is the data after the header.
func (s TCP) Payload() []byte { return s[s.HeaderLen():] }

// ChecksumValid reports whether the checksum over the pseudo-header and
// the whole segment verifies (TCP's checksum is mandatory).
func (s TCP) ChecksumValid(src, dst netip.Addr) bool {
	return Checksum(s, PseudoHeaderSum(src, dst, ProtoTCP, len(s))) == 0
}

// TCPFields describes a TCP header to encode.
type TCPFields struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8
	Window, Urgent   uint16
	Options          TCPOptions
}

// Encode writes the header and options over b, whose bytes after them
// hold payloadLen bytes of payload already, with the checksum over the
// pseudo-header of src and dst, and returns the header length. b must hold
// the header (TCPFields.HeaderLen) and the payload.
func (f TCPFields) Encode(b []byte, payloadLen int, src, dst netip.Addr) int {
	hl := f.HeaderLen()
	return f.EncodeSum(b, payloadLen, Sum(b[hl:hl+payloadLen], 0), src, dst)
}

// EncodeSum is Encode for a payload whose partial sum (Sum, or CopySum
// while it was copied in) the caller has already: the checksum then
// covers the header alone, not the payload a second time.
func (f TCPFields) EncodeSum(b []byte, payloadLen int, payloadSum uint32, src, dst netip.Addr) int {
	hl := f.HeaderLen()
	s := TCP(b[:hl+payloadLen])
	binary.BigEndian.PutUint16(s, f.SrcPort)
	binary.BigEndian.PutUint16(s[tcpDstPortOffset:], f.DstPort)
	binary.BigEndian.PutUint32(s[tcpSeqOffset:], f.Seq)
	binary.BigEndian.PutUint32(s[tcpAckOffset:], f.Ack)
	s[tcpDataOffOffset] = byte(hl/4) << 4
	s[tcpFlagsOffset] = f.Flags
	binary.BigEndian.PutUint16(s[tcpWindowOffset:], f.Window)
	binary.BigEndian.PutUint16(s[tcpCsumOffset:], 0)
	binary.BigEndian.PutUint16(s[tcpUrgentOffset:], f.Urgent)
	f.Options.encode(s[TCPMinLen:hl])
	binary.BigEndian.PutUint16(s[tcpCsumOffset:], Checksum(s[:hl], PseudoHeaderSum(src, dst, ProtoTCP, len(s))+Fold(payloadSum)))
	return hl
}

// HeaderLen is the length of the header Encode writes.
func (f TCPFields) HeaderLen() int { return TCPMinLen + f.Options.Len() }

// TCP option kinds (IANA).
const (
	tcpOptEOL           = 0
	tcpOptNOP           = 1
	tcpOptMSS           = 2 // RFC 9293 3.2
	tcpOptWindowScale   = 3 // RFC 7323 2
	tcpOptSACKPermitted = 4 // RFC 2018
	tcpOptSACK          = 5 // RFC 2018
	tcpOptTimestamps    = 8 // RFC 7323 3
	// MaxSACKBlocks is how many SACK blocks fit beside timestamps in the
	// 40 bytes of options (RFC 2018 section 3).
	MaxSACKBlocks = 4
	// MaxWindowScale is the largest shift RFC 7323 section 2.3 allows.
	MaxWindowScale = 14
)

// ErrOption is returned for malformed TCP options: a length below 2, one
// running past the options, or a known option of the wrong length.
var ErrOption = errors.New("wire: malformed TCP option")

// SACKBlock is one range of received data, [Left, Right).
type SACKBlock struct{ Left, Right uint32 }

// TCPOptions are the options the stack speaks. Unknown options are
// skipped on parse (RFC 9293 3.2: a TCP must ignore options it does not
// implement).
type TCPOptions struct {
	MSS           uint16 // 0: absent
	WindowScale   int8   // -1: absent; else the shift, capped at 14
	SACKPermitted bool
	HasTimestamps bool
	TSVal, TSEcr  uint32
	SACK          [MaxSACKBlocks]SACKBlock
	NSACK         int // blocks in SACK
}

// ParseTCPOptions parses the option bytes of a segment. It never loops
// forever and never reads outside opts: every option but EOL and NOP must
// carry a length of at least 2 that fits.
func ParseTCPOptions(opts []byte) (TCPOptions, error) {
	o := TCPOptions{WindowScale: -1}
	for len(opts) > 0 {
		kind := opts[0]
		if kind == tcpOptEOL {
			break
		}
		if kind == tcpOptNOP {
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return o, ErrOption
		}
		body := opts[2:opts[1]]
		opts = opts[opts[1]:]
		switch kind {
		case tcpOptMSS:
			if len(body) != 2 {
				return o, ErrOption
			}
			o.MSS = binary.BigEndian.Uint16(body)
		case tcpOptWindowScale:
			if len(body) != 1 {
				return o, ErrOption
			}
			// RFC 7323 2.3: a shift above 14 is used as 14 (and logged).
			o.WindowScale = int8(min(body[0], MaxWindowScale))
		case tcpOptSACKPermitted:
			if len(body) != 0 {
				return o, ErrOption
			}
			o.SACKPermitted = true
		case tcpOptTimestamps:
			if len(body) != 8 {
				return o, ErrOption
			}
			o.HasTimestamps = true
			o.TSVal, o.TSEcr = binary.BigEndian.Uint32(body), binary.BigEndian.Uint32(body[4:])
		case tcpOptSACK:
			if len(body) == 0 || len(body)%8 != 0 || len(body)/8 > MaxSACKBlocks {
				return o, ErrOption
			}
			o.NSACK = len(body) / 8
			for i := range o.NSACK {
				o.SACK[i] = SACKBlock{binary.BigEndian.Uint32(body[8*i:]), binary.BigEndian.Uint32(body[8*i+4:])}
			}
		}
	}
	return o, nil
}

// tcpMaxOptions is the room for options: a 60-byte header less 20.
const tcpMaxOptions = TCPMaxHeaderLen - TCPMinLen

// Len is the length of the encoded options, padded to a multiple of 4.
// It never exceeds the 40 bytes a header holds: SACK blocks that do not
// fit are left out (beside timestamps, 3 fit; RFC 2018 section 3).
func (o TCPOptions) Len() int {
	n := o.lenWithoutSACK()
	if b := o.sackBlocks(); b > 0 {
		n += 4 + 8*b // NOP NOP + 2 + blocks
	}
	return n
}

// sackBlocks is how many of the SACK blocks Encode writes.
func (o TCPOptions) sackBlocks() int {
	room := (tcpMaxOptions - o.lenWithoutSACK() - 4) / 8
	return max(0, min(o.NSACK, room, MaxSACKBlocks))
}

func (o TCPOptions) lenWithoutSACK() int {
	n := 0
	if o.MSS != 0 {
		n += 4
	}
	if o.WindowScale >= 0 {
		n += 4 // NOP + 3
	}
	if o.HasTimestamps {
		// NOP NOP + 10, or SACK-permitted in the NOPs' place.
		n += 12
	} else if o.SACKPermitted {
		n += 4 // NOP NOP + 2
	}
	return n
}

// encode writes the options into b, of exactly o.Len() bytes, laid out
// as Linux's tcp_options_write lays them out (each aligned as RFC 7323
// appendix A suggests): MSS; timestamps, with SACK-permitted in the place
// of their two NOPs ("sackOK,TS" in 12 bytes); SACK-permitted alone after
// two NOPs; window scale after one; SACK blocks after two.
func (o TCPOptions) encode(b []byte) {
	if o.MSS != 0 {
		b[0], b[1] = tcpOptMSS, 4
		binary.BigEndian.PutUint16(b[2:], o.MSS)
		b = b[4:]
	}
	if o.HasTimestamps {
		b[0], b[1], b[2], b[3] = tcpOptNOP, tcpOptNOP, tcpOptTimestamps, 10
		if o.SACKPermitted {
			b[0], b[1] = tcpOptSACKPermitted, 2
		}
		binary.BigEndian.PutUint32(b[4:], o.TSVal)
		binary.BigEndian.PutUint32(b[8:], o.TSEcr)
		b = b[12:]
	} else if o.SACKPermitted {
		b[0], b[1], b[2], b[3] = tcpOptNOP, tcpOptNOP, tcpOptSACKPermitted, 2
		b = b[4:]
	}
	if o.WindowScale >= 0 {
		b[0], b[1], b[2], b[3] = tcpOptNOP, tcpOptWindowScale, 3, byte(o.WindowScale)
		b = b[4:]
	}
	if n := o.sackBlocks(); n > 0 {
		b[0], b[1], b[2], b[3] = tcpOptNOP, tcpOptNOP, tcpOptSACK, byte(2+8*n)
		for i, blk := range o.SACK[:n] {
			binary.BigEndian.PutUint32(b[4+8*i:], blk.Left)
			binary.BigEndian.PutUint32(b[8+8*i:], blk.Right)
		}
	}
}
