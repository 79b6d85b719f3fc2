//go:build unix

package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// lockMigrations takes an exclusive lock on the file path+"-migrate.lock"
// (created owner-only, empty) and returns what releases it: two handles or
// processes migrating one database take turns. Without it both could run
// a migration that only updates rows (00008 does), which succeeds twice
// and is recorded twice, where a migration that changes the schema fails
// for the second. It waits for the lock until ctx ends.
func lockMigrations(ctx context.Context, path string) (func(), error) {
	name := path + "-migrate.lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the migration lock %s: %w", name, err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); _ = f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for the migration lock %s: %w", name, ctx.Err())
		case <-time.After(20 * time.Millisecond): // another migration runs: seconds at most
		}
	}
}
