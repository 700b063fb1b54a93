package flash

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Lock takes an exclusive flock(2) on path on fsys, waiting for ctx; unlock
// releases it. Path is a directory, or a lock file that is created empty
// (0600, and its directory 0700) when it is missing and never written:
// no flash wear. The lock serialises processes and the goroutines of one
// process alike, as each call opens path anew; a process that holds it
// must not take it again.
func Lock(ctx context.Context, fsys FS, path string) (unlock func(), err error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		if err = MakeDir(fsys, filepath.Dir(path)); err == nil {
			f, err = fsys.OpenFile(path, os.O_RDONLY|os.O_CREATE, fileMode)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, Cause(err))
	}
	for {
		err := f.Flock(syscall.LOCK_EX | syscall.LOCK_NB)
		if err == nil {
			return func() { f.Flock(syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
