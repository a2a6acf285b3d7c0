package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTreeFollowsMap runs the check on the module itself: it passes.
func TestTreeFollowsMap(t *testing.T) {
	pkgs, err := list()
	require.NoError(t, err)
	require.Greater(t, len(pkgs), 20, "go list found the module's packages")
	assert.Empty(t, check(pkgs))
}

// TestViolations feeds a synthetic package list with one deliberate
// violation of each rule, and packages that keep the rules, and checks
// the exact lines reported.
func TestViolations(t *testing.T) {
	m := func(rel string) string { return module + "/" + rel }
	pkgs := []pkg{
		{m("tcp"), []string{"time", m("internal/wire"), m("fastpath")}},                                           // core imports the poller
		{m("udp"), []string{m("nic"), "unsafe"}},                                                                  // core imports a link; unsafe
		{m("ip"), []string{m("tcp")}},                                                                             // a core imports another core
		{m("nic"), []string{m("xdp"), m("sockapi")}},                                                              // lower imports higher
		{m("arp"), []string{"golang.org/x/sys/unix"}},                                                             // system calls in a core
		{m("fastpath"), []string{m("tcp"), m("internal/testsupport/lab")}},                                        // product code imports test support
		{m("internal/testsupport/lab"), []string{m("internal/wire"), m("nic")}},                                   // test support above the leaves
		{m("xdp"), []string{"unsafe", "golang.org/x/sys/unix"}},                                                   // allowed
		{m("sockapi"), []string{m("fastpath"), m("tcp"), m("xdp/steer")}},                                         // allowed
		{m("cmd/xdpnet"), []string{m("sockapi"), m("internal/product/httpsvc")}},                                  // allowed
		{m("newpkg"), []string{m("tcp")}},                                                                         // not placed on the map
		{m("sockapi"), []string{"github.com/prometheus/client_golang/prometheus"}},                                // Prometheus outside its exporter
		{m("sockapi/metrics"), []string{m("sockapi"), "github.com/prometheus/client_golang/prometheus"}},          // allowed
		{m("bench/gvisorpeer"), []string{m("xdp/steer"), "gvisor.dev/gvisor/pkg/tcpip", "golang.org/x/sys/unix"}}, // allowed
		{m("bench"), []string{m("bench/gvisorpeer")}},                                                             // allowed
		{m("sockapi"), []string{"gvisor.dev/gvisor/pkg/tcpip/stack"}},                                             // gVisor outside the bench peer
		{"example.com/other", []string{"unsafe", m("fastpath")}},                                                  // outside the module: ignored
	}
	assert.Equal(t, []string{
		"tcp (protocol core) imports fastpath (poller, layer 4): a protocol core imports leaf libraries only",
		"udp (protocol core) imports nic (link, layer 2): a protocol core imports leaf libraries only",
		"udp imports unsafe: only xdp may",
		"ip (protocol core) imports tcp (protocol core, layer 3): a protocol core imports leaf libraries only",
		"nic (link, layer 2) imports sockapi (public API, layer 5): a package imports lower layers only",
		"arp imports golang.org/x/sys/unix: only bench, bench/gvisorpeer, internal/testsupport/lab, xdp, xdp/steer may",
		"fastpath imports internal/testsupport/lab: test support is for tests only",
		"internal/testsupport/lab imports nic: test support may import leaf libraries only",
		"newpkg: not in the layer map (internal/tools/importcheck)",
		"sockapi imports github.com/prometheus/client_golang/prometheus: only sockapi/metrics may",
		"sockapi imports gvisor.dev/gvisor/pkg/tcpip/stack: only bench/gvisorpeer may",
	}, check(pkgs))
}
