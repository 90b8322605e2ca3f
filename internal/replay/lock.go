package replay

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrStateLocked is matched (errors.Is) by the error of a replay whose
// state file another replay, still running, holds: two replays sharing a
// state file (a Kubernetes Job retried while its first pod still runs)
// would both send everything.
var ErrStateLocked = errors.New("the replay state is held by another replay")

// lockState takes an exclusive lock on path's lock file (<path>.lock; the
// state itself is replaced on every write, so it cannot carry the lock)
// for the life of the run, without waiting. The lock goes with the
// process, however it ends; the lock file stays. unlock releases it.
func lockState(path string) (unlock func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	lock := path + ".lock"
	f, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the replay state lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: another replay is running with the state file %s (it holds %s); wait for it to end, or give this one another --state", ErrStateLocked, path, lock)
		}
		return nil, fmt.Errorf("locking %s: %w", lock, err)
	}
	return func() { f.Close() }, nil
}
