// Package fastpath runs the stack on a link: a Poller owns all protocol
// state of one NIC queue (its ARP cache, IPv4 layer, UDP and TCP tables) and is
// driven by one goroutine. Each Poll receives a batch of frames and runs
// every frame to completion through the sans-IO protocol cores, writes
// what they answer straight into transmit buffers, gives the received
// frames back in one batch, runs the timers due at the time passed in,
// and transmits in one batch.
//
// A Poller is not safe for concurrent use. Other goroutines reach it in
// one of three ways (app.go): Do runs a control call on the poller's
// goroutine, Kick wakes it because an app goroutine filled or drained a
// lock-free ring (tcp.Stream, udp's queues), and an OnRound hook runs
// inline handlers (the services of `xdpnet serve`) once per round. See
// docs/DESIGN.md for the threading model.
package fastpath
