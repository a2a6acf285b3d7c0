package mpsc

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestProducersConsumer: 4 producers push their own nodes over and over
// while the consumer takes; every push that succeeded is taken exactly
// once, in each producer's order, and a node is never queued twice.
func TestProducersConsumer(t *testing.T) {
	const producers, nodes, rounds = 4, 64, 2000
	var q Queue[[2]int]
	all := make([][]Node[[2]int], producers)
	var pushed [producers]int
	var wg sync.WaitGroup
	for p := range producers {
		all[p] = make([]Node[[2]int], nodes)
		for i := range all[p] {
			all[p][i].Value = [2]int{p, i}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				if q.Push(&all[p][r%nodes]) {
					pushed[p]++
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var taken [producers]int
	take := func(n *Node[[2]int]) { taken[n.Value[0]]++ }
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		q.TakeAll(take)
	}
	q.TakeAll(take)
	assert.True(t, q.Empty())
	for p := range producers {
		require.Equal(t, pushed[p], taken[p], "producer %d", p)
		require.Positive(t, pushed[p])
	}
}

func TestOrderAndDedup(t *testing.T) {
	var q Queue[int]
	ns := make([]Node[int], 5)
	for i := range ns {
		ns[i].Value = i
		assert.True(t, q.Push(&ns[i]))
	}
	assert.False(t, q.Push(&ns[2]), "queued already")
	var got []int
	q.TakeAll(func(n *Node[int]) {
		got = append(got, n.Value)
		if n.Value == 0 {
			assert.True(t, q.Push(n), "may be pushed again once taken")
		}
	})
	assert.Equal(t, []int{0, 1, 2, 3, 4}, got)
	got = nil
	q.TakeAll(func(n *Node[int]) { got = append(got, n.Value) })
	assert.Equal(t, []int{0}, got)
}

func TestNoAllocation(t *testing.T) {
	var q Queue[int]
	var n Node[int]
	f := func(*Node[int]) {}
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		q.Push(&n)
		q.TakeAll(f)
	}))
}
