package lab

import (
	"time"

	"golang.org/x/sys/unix"
)

// ProcessCPU is the CPU time of all of this process's threads so far,
// those that exited included (getrusage's user+system: the split is
// tick-sampled, the total exact). For measuring what a stack costs over
// a window, idle or loaded.
func ProcessCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
