package tcp

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestSentRecordsCutKeepsCounts cuts records of every kind inside and
// checks the byte and record counts against the flags after each cut:
// a SACKed record split in two is two SACKed records (FuzzSegment found
// the count one short, which RACK's DupThresh rule reads).
func TestSentRecordsCutKeepsCounts(t *testing.T) {
	for _, flags := range []uint8{0, segSACKed, segLost, segLost | segRetrans, segRetrans} {
		var s sentRecords
		for i := range uint64(4) {
			s.push(i*1000, (i+1)*1000, 0, 64)
		}
		s.setFlags(s.at(1), flags)
		s.setFlags(s.at(2), flags)
		i, j := s.cut(1500, 2500, 64)
		assert.Equal(t, 2, i, "flags %#x", flags)
		assert.Equal(t, 4, j, "flags %#x", flags)
		assert.Equal(t, 6, s.n, "flags %#x", flags)
		want := s.recount()
		assert.Equal(t, want.sacked, s.sacked, "flags %#x: SACKed bytes", flags)
		assert.Equal(t, want.nSacked, s.nSacked, "flags %#x: SACKed records", flags)
		assert.Equal(t, want.lost, s.lost, "flags %#x: lost bytes", flags)
		assert.Equal(t, want.lostNew, s.lostNew, "flags %#x: lost, not resent", flags)
		assert.Equal(t, want.retrans, s.retrans, "flags %#x: resent bytes", flags)
	}
}
