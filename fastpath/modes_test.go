package fastpath_test

import (
	"github.com/xdpnet/xdpnet/internal/lab"
	"github.com/xdpnet/xdpnet/xdp/steer"
)

// labModes are the XDP modes lab tests run in.
var labModes = []struct {
	lab   lab.Mode
	steer steer.Mode
}{{lab.Native, steer.Native}, {lab.Generic, steer.Generic}}
