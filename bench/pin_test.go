package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// threadCPUs are the Cpus_allowed_list of every thread of this process.
func threadCPUs(t *testing.T) map[string]bool {
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	require.NoError(t, err)
	lists := map[string]bool{}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread ended
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				lists[strings.TrimSpace(v)] = true
			}
		}
	}
	return lists
}

// TestPinProcess: a pinned cell's process runs every thread on the
// server's CPU, and unpin gives them every CPU back.
func TestPinProcess(t *testing.T) {
	if runtime.NumCPU() < 2 {
		_, err := pinProcess(serverCPU)
		require.ErrorContains(t, err, "needs 2 CPUs")
		return
	}
	unpin, err := pinProcess(serverCPU)
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{"0": true}, threadCPUs(t), "every thread on CPU 0")
	unpin()
	all := threadCPUs(t)
	assert.Len(t, all, 1)
	for l := range all {
		assert.NotEqual(t, "0", l, "unpinned: %s", l)
	}
}
