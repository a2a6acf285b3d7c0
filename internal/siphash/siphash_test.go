package siphash

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSipHashReferenceVectors(t *testing.T) {
	// The SipHash paper's appendix A: key 00..0f; message 00..0e gives
	// a129ca6149be45e5. The empty message gives 726fdb47dd0e0e31 (the
	// first of the reference implementation's vectors).
	var key, msg [16]byte
	for i := range key {
		key[i], msg[i] = byte(i), byte(i)
	}
	k0, k1 := binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:])
	assert.Equal(t, uint64(0xa129ca6149be45e5), Sum64(k0, k1, msg[:15]))
	assert.Equal(t, uint64(0x726fdb47dd0e0e31), Sum64(k0, k1, nil))
}
