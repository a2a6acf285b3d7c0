// Package sockapi is xdpnet's public API: a Stack on a network interface
// (or on links, for tests) with Dial, DialContext, Listen and
// ListenPacket returning net.Conn, net.Listener and net.PacketConn, so
// that Go code written for the net package, net/http included, runs on
// xdpnet unchanged.
//
// # Threading
//
// Each NIC queue has a poller goroutine that owns all protocol state of
// its queue (fastpath). The app's goroutines never touch it: a TCP
// connection's bytes cross through two lock-free single-producer
// single-consumer rings (the app writes the send ring and reads the
// receive ring; the poller the other ends), the app tells the poller of
// new data with an atomic queue push (free when already queued), and the
// poller wakes a blocked app goroutine through a doorbell that costs one
// atomic load when nobody waits. Control operations (dial, listen, close,
// options) run on the poller through its Do queue.
//
// # Semantics
//
// Deadlines behave as in Go's net package: os.ErrDeadlineExceeded inside
// a *net.OpError whose Timeout() is true, movable while a call is
// blocked. Errors are *net.OpError wrapping the syscall errno Linux would
// give (ECONNREFUSED, ECONNRESET, ETIMEDOUT, EADDRINUSE, EPIPE …), so
// errors.Is checks written for the kernel's sockets work. Use after Close
// returns net.ErrClosed. Stack.Close closes every socket, stops the
// pollers, and for a stack from Open detaches the XDP program and frees
// the UMEM.
//
// # Looking inside
//
// Stack.Counters is a snapshot of the stack's counters, named as nstat
// names the kernel's (TcpActiveOpens, IpInReceives …), with each queue's
// own; Conn.Info is a connection's TCP_INFO; Stack.Info describes the
// interface and its queues; Stack.Sockets and Stack.Neighbors list the
// sockets and the ARP cache. Config.AdminSocket serves all of it to
// other processes on a Unix-domain socket, which package sockapi/admin
// reads and `xdpnet sockets`, `counters` and `arp` print. Handlers that must run on the pollers
// themselves, with no goroutine between them and the wire, use package
// inline through Config.OnPoller.
package sockapi
