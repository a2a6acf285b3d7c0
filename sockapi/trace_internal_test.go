package sockapi

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/xdpnet/xdpnet/tcp"
)

// TestTraceTranslation: each of the core's kinds, causes and drop
// reasons has a name of sockapi's, a distinct one.
func TestTraceTranslation(t *testing.T) {
	seen := map[string]bool{}
	for k := tcp.EventState; k <= tcp.EventDrop; k++ {
		n := traceEvent(tcp.Event{Kind: k}).Kind.String()
		assert.NotEqual(t, "unknown", n, "kind %d", k)
		seen["kind "+n] = true
	}
	for c := tcp.CauseRTO; c <= tcp.CauseSYN; c++ {
		n := traceEvent(tcp.Event{Cause: c}).Cause.String()
		assert.NotEqual(t, "unknown", n, "cause %d", c)
		seen["cause "+n] = true
	}
	for r := tcp.DropMalformed; r <= tcp.DropNoSocket; r++ {
		n := traceEvent(tcp.Event{Reason: r}).Reason.String()
		assert.NotEqual(t, "unknown", n, "reason %d", r)
		seen["reason "+n] = true
	}
	assert.Len(t, seen, 5+5+9)
	e := traceEvent(tcp.Event{Kind: tcp.EventState, From: tcp.SynSent, To: tcp.Established, Seq: 7, Len: 3})
	assert.Equal(t, TraceEvent{Kind: TraceState, From: TCPSynSent, To: TCPEstablished, Seq: 7, Len: 3}, e)
	assert.Equal(t, "unknown", traceEvent(tcp.Event{Kind: 200}).Kind.String())
}
