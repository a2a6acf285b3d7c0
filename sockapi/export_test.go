package sockapi

import "github.com/xdpnet/xdpnet/nic"

// Device is the AF_XDP device under a stack from Open, for tests that
// check its sockets' frames.
func Device(s *Stack) *nic.XDPDevice { return s.dev }
