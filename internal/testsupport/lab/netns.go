package lab

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netns"
)

const (
	namePrefix = "xdpnet-lab-" // every lab namespace name starts with this
	nsDir      = "/run/netns"  // where `ip netns` keeps named namespaces
)

// created remembers the namespaces this process made, for CheckNoLeaks.
var created sync.Map // name -> struct{}

// createNamespace makes a named network namespace the way `ip netns add`
// does: unshare(CLONE_NEWNET) on a thread, then bind-mount that thread's
// /proc/.../ns/net onto /run/netns/<name> so it outlives the thread.
func createNamespace(name string) error {
	errc := make(chan error, 1)
	go func() {
		// unshare switches the calling thread, so it runs on a locked thread
		// of its own that is switched back, or discarded if that fails.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current namespace: %w", err)
			return
		}
		defer orig.Close()
		ns, err := netns.NewNamed(name)
		if err == nil {
			created.Store(name, struct{}{})
			ns.Close()
		}
		if serr := netns.Set(orig); serr != nil {
			// Leave the thread locked: the goroutine's exit then ends the
			// thread instead of returning it, in the wrong namespace, to
			// the scheduler.
			errc <- errors.Join(err, fmt.Errorf("switch back to the original namespace: %w", serr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// deleteNamespace undoes createNamespace as `ip netns del` does. The kernel
// frees the namespace, and the veth end in it, once nothing else holds it.
func deleteNamespace(name string) error {
	if err := netns.DeleteNamed(name); err != nil {
		return err
	}
	created.Delete(name)
	return nil
}

// reapStale deletes lab namespaces left by test processes that no longer
// exist (killed before their cleanups could run). Names carry the creator's
// pid; a namespace whose pid is alive, or is ours, is left alone.
func reapStale(logf func(format string, args ...any)) {
	entries, err := os.ReadDir(nsDir)
	if err != nil {
		return // no named namespaces yet
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), namePrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + pidStr); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := netns.DeleteNamed(e.Name()); err != nil {
			logf("lab: could not delete stale namespace %s: %v", e.Name(), err)
			continue
		}
		logf("lab: deleted stale namespace %s (its process %d is gone)", e.Name(), pid)
	}
}

// CheckNoLeaks runs the tests and exits the process. It fails the run when
// a namespace made by this process's labs still exists after all tests
// (cleanup failed or was bypassed), deletes such namespaces, and names them.
// Use it in TestMain:
//
//	func TestMain(m *testing.M) { lab.CheckNoLeaks(m) }
func CheckNoLeaks(m *testing.M) {
	code := m.Run()
	var leaked []string
	created.Range(func(k, _ any) bool {
		name := k.(string)
		if _, err := os.Stat(nsDir + "/" + name); err == nil {
			leaked = append(leaked, name)
		}
		return true
	})
	if len(leaked) > 0 {
		fmt.Fprintf(os.Stderr, "lab: FAIL: %d network namespace(s) outlived their test: %s\n", len(leaked), strings.Join(leaked, " "))
		for _, name := range leaked {
			if err := deleteNamespace(name); err != nil {
				fmt.Fprintf(os.Stderr, "lab: delete %s: %v\n", name, err)
			}
		}
		code = 1
	}
	os.Exit(code)
}
