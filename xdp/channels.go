package xdp

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// ethtool's ETHTOOL_GCHANNELS (include/uapi/linux/ethtool.h): struct
// ethtool_channels is the command and eight counts, all 32-bit: the
// maxima of rx, tx, other and combined channels, then their current
// counts.
const (
	ethtoolGChannels = 0x3c
	channelsLen      = 36
)

// Queues returns how many queues of interface ifname (in the calling
// thread's network namespace) an AF_XDP socket can bind to, as `ethtool
// -l` shows them: its combined channels plus the larger of its rx-only and
// tx-only ones. The kernel refuses a bind to a queue at or beyond
// max(real RX queues, real TX queues) with EINVAL, which says nothing of
// the cause. Drivers without channel reporting fail with EOPNOTSUPP.
func Queues(ifname string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("xdp: channels: %w", err)
	}
	defer unix.Close(fd)
	b := make([]byte, channelsLen)
	binary.NativeEndian.PutUint32(b, ethtoolGChannels)
	if err := ethtool(fd, ifname, b); err != nil {
		return 0, fmt.Errorf("xdp: channels of %s: %w", ifname, err)
	}
	count := func(i int) int { return int(binary.NativeEndian.Uint32(b[4+4*i:])) }
	rx, tx, combined := count(4), count(5), count(7)
	return combined + max(rx, tx), nil
}
