package metrics

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/xdpnet/xdpnet/sockapi"
)

// TestEveryCounterExported: help describes exactly the counters
// sockapi lists, no fewer (New would panic) and no more (a counter gone
// from sockapi leaves no stale entry).
func TestEveryCounterExported(t *testing.T) {
	var names []string
	for _, n := range (sockapi.Counters{}).List() {
		names = append(names, n.Name)
	}
	for _, n := range (sockapi.QueueCounters{}).List() {
		names = append(names, n.Name)
	}
	names = append(names, icmpMsg...)
	var described []string
	for n := range help {
		described = append(described, n)
	}
	slices.Sort(names)
	slices.Sort(described)
	assert.Equal(t, names, described)
}
