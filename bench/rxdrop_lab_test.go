package main

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// TestRxDropLab runs the command's rxdrop workload briefly on each ring
// layer, twice in a row on one sender: each run receives frames, and a
// receiver opened right after the last one closed gets the queue (the
// kernel frees it from a work queue: EBUSY at first), and no receiver,
// closed or failed to open, leaves its socket mapped.
func TestRxDropLab(t *testing.T) {
	if runtime.NumCPU() <= receiveCPU {
		t.Skipf("needs CPUs %d and %d for the sender and the receiver, have %d CPU(s)", senderCPU, receiveCPU, runtime.NumCPU())
	}
	l := lab.New(t, lab.Config{Mode: lab.Native}) // skips unless root
	tx, err := newSender(l)
	require.NoError(t, err)
	defer tx.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, impl := range []string{"xdpnet", "asavie", "xdpnet", "asavie"} {
		m, err := rxDrop(ctx, l, tx, impl, 300*time.Millisecond)
		require.NoError(t, err, impl)
		t.Logf("%s: %.3f Mpps, %.1f cpu-ns/frame", impl, m["Mpps"], m["cpu-ns/frame"])
		assert.Greater(t, m["Mpps"], 0.0, impl)
		assert.Greater(t, m["cpu-ns/frame"], 0.0, impl)
	}
	n, err := unmapOrphans()
	require.NoError(t, err)
	assert.Zero(t, n, "socket mappings left behind by closed receivers")
	_, err = rxDrop(ctx, l, tx, "xdpnet-link", time.Millisecond)
	assert.ErrorContains(t, err, "want xdpnet or asavie")
}
