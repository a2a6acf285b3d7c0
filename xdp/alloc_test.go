package xdp

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewAllocatorRejectsBadShapes(t *testing.T) {
	_, err := NewAllocator(0, 16, 3000)
	assert.ErrorContains(t, err, "power of two")
	_, err = NewAllocator(0, 0, 2048)
	assert.ErrorContains(t, err, "positive")
	_, err = NewAllocator(100, 16, 2048)
	assert.ErrorContains(t, err, "aligned")
}

func TestAllocatorRefusesWrongOwner(t *testing.T) {
	a, err := NewAllocator(4096*8, 4, 4096)
	require.NoError(t, err)
	addr, ok := a.Alloc(OwnerApp)
	require.True(t, ok)
	assert.Equal(t, uint64(4096*8), addr, "lowest frame first")

	assert.True(t, a.Move(addr+300, OwnerApp, OwnerFree), "an address inside a frame names that frame")
	assert.False(t, a.Move(addr, OwnerApp, OwnerFree), "double free")
	assert.False(t, a.Move(addr, OwnerFree, OwnerFree), "free to free")
	assert.False(t, a.Move(0, OwnerApp, OwnerFree), "below the share")
	assert.False(t, a.Move(4096*12, OwnerApp, OwnerFree), "past the share")
	assert.EqualValues(t, 4, a.Violations)
	assert.Equal(t, 4, a.FreeCount(), "refused moves changed nothing")

	for range 4 {
		_, ok := a.Alloc(OwnerTX)
		require.True(t, ok)
	}
	_, ok = a.Alloc(OwnerTX)
	assert.False(t, ok, "exhausted")
}

// TestAllocatorChurn runs a million random moves through the life a frame
// has on a socket and checks, against a model, that no frame is ever lost,
// duplicated or handed out while someone holds it.
func TestAllocatorChurn(t *testing.T) {
	const frames, ops = 256, 1_000_000
	a, err := NewAllocator(0, frames, 2048)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	held := map[Owner][]uint64{} // the model: who holds which frames
	take := func(o Owner) (uint64, bool) {
		s := held[o]
		if len(s) == 0 {
			return 0, false
		}
		i := rng.IntN(len(s))
		addr := s[i]
		s[i] = s[len(s)-1]
		held[o] = s[:len(s)-1]
		return addr, true
	}
	move := func(from, to Owner) {
		addr, ok := take(from)
		if !ok {
			return
		}
		require.True(t, a.Move(addr, from, to), "%#x %v->%v", addr, from, to)
		if to != OwnerFree {
			held[to] = append(held[to], addr)
		}
	}
	var refused uint64
	for range ops {
		switch rng.IntN(8) {
		case 0, 1: // Alloc for the fill ring or for TX
			to := []Owner{OwnerFill, OwnerApp}[rng.IntN(2)]
			if addr, ok := a.Alloc(to); ok {
				for _, o := range []Owner{OwnerFill, OwnerApp, OwnerTX} {
					require.NotContains(t, held[o], addr, "handed out a frame %v holds", o)
				}
				held[to] = append(held[to], addr)
			} else {
				require.Zero(t, frames-len(held[OwnerFill])-len(held[OwnerApp])-len(held[OwnerTX]))
			}
		case 2: // received: fill -> app
			move(OwnerFill, OwnerApp)
		case 3: // released back to the fill ring
			move(OwnerApp, OwnerFill)
		case 4: // submitted for TX
			move(OwnerApp, OwnerTX)
		case 5: // completed
			move(OwnerTX, OwnerFree)
		case 6: // dropped
			move(OwnerApp, OwnerFree)
		case 7: // a buggy caller: a move from the wrong owner must be refused
			if addr, ok := take(OwnerTX); ok {
				require.False(t, a.Move(addr, OwnerApp, OwnerFree))
				refused++
				held[OwnerTX] = append(held[OwnerTX], addr)
			}
		}
	}
	assert.Equal(t, refused, a.Violations)
	total := a.FreeCount()
	for _, o := range []Owner{OwnerFill, OwnerApp, OwnerTX} {
		total += len(held[o])
		for _, addr := range held[o] {
			got, ok := a.Owner(addr)
			require.True(t, ok)
			require.Equal(t, o, got)
		}
	}
	assert.Equal(t, frames, total, "every frame is free or held by exactly one owner")
}

func BenchmarkAllocatorAllocFree(b *testing.B) {
	a, err := NewAllocator(0, 4096, 4096)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		addr, _ := a.Alloc(OwnerApp)
		a.Move(addr, OwnerApp, OwnerFree)
	}
}
