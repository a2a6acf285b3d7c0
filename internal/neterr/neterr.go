// Package neterr holds the error values the protocol cores share. Each
// wraps the errno the Linux socket call would return, so
// errors.Is(err, syscall.EAGAIN) and the like work, and each is
// allocated once, here: the data path returns them without allocating.
// tcp and udp export them under their own names (tcp.ErrWouldBlock is
// udp.ErrWouldBlock is ErrWouldBlock), so one check serves both.
package neterr

import (
	"fmt"
	"syscall"
)

var (
	// ErrWouldBlock: nothing to read, no room to write, or nothing to
	// accept yet.
	ErrWouldBlock = fmt.Errorf("operation would block: %w", syscall.EAGAIN)
	// ErrPortInUse: the local address and port are taken.
	ErrPortInUse = fmt.Errorf("address in use: %w", syscall.EADDRINUSE)
	// ErrAddrNotAvailable: a local address that is not one of the
	// stack's.
	ErrAddrNotAvailable = fmt.Errorf("address not local: %w", syscall.EADDRNOTAVAIL)
	// ErrInvalidAddr: a remote address that is not unicast IPv4 with a
	// port.
	ErrInvalidAddr = fmt.Errorf("invalid address: %w", syscall.EINVAL)
	// ErrNetUnreachable: no route to the destination, or an ICMP net
	// unreachable for it.
	ErrNetUnreachable = fmt.Errorf("network is unreachable: %w", syscall.ENETUNREACH)
	// ErrHostUnreachable: the destination's next hop did not answer ARP,
	// or an ICMP host unreachable came for it.
	ErrHostUnreachable = fmt.Errorf("no route to host: %w", syscall.EHOSTUNREACH)
	// ErrRefused: the peer refused (a TCP RST to a SYN, an ICMP port
	// unreachable to a UDP datagram).
	ErrRefused = fmt.Errorf("connection refused: %w", syscall.ECONNREFUSED)
)
