package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xdpnet/xdpnet/internal/testsupport/lab"
)

// TestServeRestartAfterKill: a serve killed with SIGKILL leaves its
// AF_XDP socket for the kernel to release, which it does after the
// process is gone; a serve started at once on the same interface binds
// all the same (the kernel's release is waited for, within a bound).
func TestServeRestartAfterKill(t *testing.T) {
	bin := buildBinary(t)
	l := lab.New(t, lab.Config{})
	for i := range 5 {
		s := startServe(t, l, bin)
		line := s.next(t)
		require.Contains(t, line, "serving", "run %d: %s; stderr: %s", i, line, s.stdout)
		// Traffic in flight when it dies: a bounded flood of pings.
		flood := l.Peer.Command(t.Context(), "ping", "-f", "-c", "20000", "-w", "3", l.StackAddr.String())
		require.NoError(t, flood.Start())
		time.Sleep(200 * time.Millisecond)
		start := time.Now()
		require.NoError(t, s.cmd.Process.Kill())
		s.cmd.Wait()
		t.Logf("run %d killed in %v", i, time.Since(start))
		flood.Process.Kill()
		flood.Wait()
	}
}
