// Package fastpath runs the stack on a link: a Poller owns all protocol
// state of one NIC queue (its ARP cache, IPv4 layer and UDP table) and is
// driven by one goroutine. Each Poll receives a batch of frames and runs
// every frame to completion through the sans-IO protocol cores, writes
// what they answer straight into transmit buffers, gives the received
// frames back in one batch, runs the timers due at the time passed in,
// and transmits in one batch.
//
// Nothing here is safe for concurrent use. Code that needs a poller's
// endpoints (the services of `xdpnet serve`, tests) runs on the poller's
// goroutine, between Polls; handing data to other goroutines through
// lock-free rings comes with the socket API.
package fastpath
