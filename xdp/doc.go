// Package xdp is xdpnet's AF_XDP socket layer, on golang.org/x/sys/unix.
//
// A Umem is one mmap'd area of equal frames registered with the kernel. A
// Socket binds one NIC queue and maps its four rings: the fill ring
// (frames we lend the kernel to receive into), the RX ring (received
// frames), the TX ring (frames to send) and the completion ring (sent
// frames coming back). Producer and Consumer are those rings: lock-free,
// with acquire/release atomic indexes shared with the kernel, cached copies
// of the other side's index, and batch operations (Reserve/Submit,
// Peek/Release) that never allocate.
//
// Every socket owns a disjoint share of its UMEM's frames through an
// Allocator, which knows each frame's owner at every moment (free, fill,
// app, TX), so a frame is never lost or handed out twice and one poller per
// queue can own its frames without locks. Nothing here is safe for
// concurrent use: a Socket, its rings and its Allocator belong to one
// goroutine.
//
// Lifetime: close every Socket before its Umem. Frames handed out as byte
// slices (Umem.Bytes, Umem.Frame) point into the UMEM and must not be used
// after Umem.Close, which unmaps it.
//
// The steering program that decides which frames reach a socket lives in
// the subpackage steer.
package xdp
