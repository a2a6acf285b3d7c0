package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/xdpnet/xdpnet/sockapi"
)

// TestMain gives the tests, and the `xdpnet serve` they start, an admin
// socket directory of their own, removed at the end: a serve killed by
// its test leaves its socket behind, which must not pile up in /run, and
// discovery must not find another program's stacks.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "xdpnet-run-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(sockapi.AdminDirEnv, dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
