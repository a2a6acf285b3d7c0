// Package fastpath runs the stack on a link: a Poller owns all protocol
// state of one NIC queue (its ARP cache, IPv4 layer, UDP and TCP tables) and is
// driven by one goroutine. Each Poll receives a batch of frames and runs
// every frame to completion through the sans-IO protocol cores, writes
// what they answer straight into transmit buffers, gives the received
// frames back in one batch, collects the output of every core (with the
// timers due at the time passed in), and transmits in one batch.
//
// fastpath is the only package that composes the cores. They all offer
// one contract (internal/wire's Out), so the output loop is one loop over
// the registered cores, each with the layer it writes at: ARP at the
// link layer, ip's ICMP at the network layer, UDP and TCP at the
// transport layer, behind an IPv4 header the poller writes.
//
// A Poller is not safe for concurrent use. Other goroutines reach it in
// one of three ways (app.go): Do runs a control call on the poller's
// goroutine, Kick wakes it because an app goroutine filled or drained a
// lock-free ring (tcp.Stream, udp's queues), and an OnRound hook runs
// inline handlers (the services of `xdpnet serve`) once per round. See
// docs/DESIGN.md for the threading model.
package fastpath
