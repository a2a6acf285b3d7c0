package tcp

// Seq is a TCP sequence number. Sequence space wraps at 2^32, so numbers
// compare by their signed distance (RFC 9293 3.4, RFC 1982), which is
// meaningful for numbers less than 2^31 apart: always so within a window.
type Seq uint32

// Add returns s advanced by n.
func (s Seq) Add(n uint32) Seq { return s + Seq(n) }

// Sub returns the signed distance from o to s.
func (s Seq) Sub(o Seq) int32 { return int32(s - o) }

// LessThan reports s < o in sequence space.
func (s Seq) LessThan(o Seq) bool { return s.Sub(o) < 0 }

// LessEq reports s <= o in sequence space.
func (s Seq) LessEq(o Seq) bool { return s.Sub(o) <= 0 }

// InWindow reports start <= s < start+size: whether s falls in a window of
// size bytes from start (RFC 9293 3.10.7.4's acceptability tests are made
// of these).
func (s Seq) InWindow(start Seq, size uint32) bool { return uint32(s-start) < size }
