// Package nic is the link layer the stack sees: a Link moves batches of
// Ethernet frames in and out. Implementations: the AF_XDP link over package
// xdp, an in-memory pipe for tests, and middleware that wraps any link (a
// seeded fault injector and a pcap tap).
//
// The package is made for users to import as well as for the stack:
// sockapi.New runs a stack on any Links, so a program can bring a link of
// its own, connect two stacks in memory with a Pipe for its tests, impair
// a link with Faulty or record one with PcapTap.
//
// # Who owns a frame
//
// A Frame is a view into memory its link reuses. Receive and Alloc lend
// frames to the caller; Transmit and Release give them back. Between those
// calls the frame is the caller's alone, and after them the caller must not
// touch its bytes: the link may already have handed them to a peer, the
// kernel or the next Alloc. Middleware follows the same rule towards the
// link it wraps: Faulty holds the frames it delays as its own until it
// transmits them, and PcapTap copies a frame's bytes into its capture before
// handing the frame on.
//
// # Who calls what
//
// A Link belongs to one goroutine, the poller of its queue. The two ends of
// a Pipe are two links, so a two-stack test may run each stack on its own
// goroutine. Time is passed in as a function (Faulty, PcapTap), so tests can
// run hours of impaired traffic in virtual time.
package nic
