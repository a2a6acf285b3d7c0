package xdp

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ethtool's ETHTOOL_GRSSH (include/uapi/linux/ethtool.h): get the RSS hash
// key, indirection table and hash function.
const (
	ethtoolGRSSH    = 0x46
	rxfhHeaderLen   = 24     // struct ethtool_rxfh before rss_config[]
	rssHashToeplitz = 1 << 0 // ETH_RSS_HASH_TOP
)

// ErrRSSNotToeplitz is returned by ReadRSS when the NIC hashes with
// another function than Toeplitz.
var ErrRSSNotToeplitz = fmt.Errorf("xdp: RSS hash function is not Toeplitz")

// ReadRSS reads the RSS Toeplitz key and indirection table of interface
// ifname (in the calling thread's network namespace), as `ethtool -x`
// shows them. Drivers without RSS (veth) fail with EOPNOTSUPP.
func ReadRSS(ifname string) (key []byte, indir []uint32, err error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("xdp: rss: %w", err)
	}
	defer unix.Close(fd)
	// First the sizes, then the contents.
	hdr := make([]byte, rxfhHeaderLen)
	binary.NativeEndian.PutUint32(hdr, ethtoolGRSSH)
	if err := ethtool(fd, ifname, hdr); err != nil {
		return nil, nil, fmt.Errorf("xdp: rss of %s: %w", ifname, err)
	}
	indirSize, keySize := binary.NativeEndian.Uint32(hdr[8:]), binary.NativeEndian.Uint32(hdr[12:])
	if indirSize > 1<<16 || keySize > 1<<10 {
		return nil, nil, fmt.Errorf("xdp: rss: implausible sizes %d/%d", indirSize, keySize)
	}
	buf := make([]byte, rxfhHeaderLen+4*indirSize+keySize)
	copy(buf, hdr)
	if err := ethtool(fd, ifname, buf); err != nil {
		return nil, nil, fmt.Errorf("xdp: rss of %s: %w", ifname, err)
	}
	if buf[16]&rssHashToeplitz == 0 {
		return nil, nil, ErrRSSNotToeplitz
	}
	indir = make([]uint32, indirSize)
	for i := range indir {
		indir[i] = binary.NativeEndian.Uint32(buf[rxfhHeaderLen+4*i:])
	}
	key = append([]byte(nil), buf[rxfhHeaderLen+4*indirSize:]...)
	return key, indir, nil
}

// ethtool runs one SIOCETHTOOL request on ifname with data as its
// argument.
func ethtool(fd int, ifname string, data []byte) error {
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data uintptr
		_    [16]byte // the rest of struct ifreq
	}
	copy(ifr.name[:unix.IFNAMSIZ-1], ifname)
	ifr.data = uintptr(unsafe.Pointer(&data[0]))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(data)
	if errno != 0 {
		return errno
	}
	return nil
}
