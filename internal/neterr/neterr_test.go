package neterr

import (
	"errors"
	"syscall"
	"testing"
)

// TestErrno checks each sentinel wraps the errno Linux's socket calls
// return for the same condition.
func TestErrno(t *testing.T) {
	for _, c := range []struct {
		err   error
		errno syscall.Errno
	}{
		{ErrWouldBlock, syscall.EAGAIN},
		{ErrPortInUse, syscall.EADDRINUSE},
		{ErrAddrNotAvailable, syscall.EADDRNOTAVAIL},
		{ErrInvalidAddr, syscall.EINVAL},
		{ErrRefused, syscall.ECONNREFUSED},
		{ErrNetUnreachable, syscall.ENETUNREACH},
		{ErrHostUnreachable, syscall.EHOSTUNREACH},
	} {
		if !errors.Is(c.err, c.errno) {
			t.Errorf("%v does not wrap %v", c.err, c.errno)
		}
	}
}
