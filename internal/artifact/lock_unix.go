//go:build unix

package artifact

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on f, so that two processes
// resolving the same model (two replicas on one host) do not write the same
// partial download at once. The lock goes with the file descriptor.
func lockFile(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }
