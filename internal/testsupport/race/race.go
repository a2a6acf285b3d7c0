//go:build race

// Package race says whether the race detector is on, for the few tests
// whose measure it changes: allocation counts (the detector's runtime
// allocates on paths that otherwise do not).
package race

// Enabled is true in a binary built with -race.
const Enabled = true
