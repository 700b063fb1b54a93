package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"mailagent/appliance/internal/flash"
)

// LockName is the lock file beside mailagent.toml that serialises
// changes to the configuration across processes: created empty once,
// never written.
const LockName = FileName + ".lock"

// lockWait bounds the wait for another change to finish.
const lockWait = 30 * time.Second

// lock takes the configuration lock of the file at path.
func lock(ctx context.Context, fsys flash.FS, path string) (unlock func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, lockWait)
	defer cancel()
	unlock, err = flash.Lock(ctx, fsys, path+".lock")
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("another change to %s has not finished within %s: %w", path, lockWait, err)
	}
	return unlock, err
}

// Update changes the configuration file at path in one transaction that
// no other process or goroutine interleaves with (config set and unset,
// the web page's Save, the console's commit, an import): it takes the
// configuration lock (LockName, flock), loads the file, calls change with
// the file as loaded and a copy of its configuration, and saves the copy
// with Save when it differs (or there was no file). When change returns
// an error, nothing is written and Update returns that error. A failed
// save is a *SaveError, which says whether the file was written.
func Update(ctx context.Context, path string, change func(f *File, c *Config) error) error {
	return UpdateFS(ctx, flash.OS, path, change)
}

// UpdateFS is Update on the file system fsys.
func UpdateFS(ctx context.Context, fsys flash.FS, path string, change func(f *File, c *Config) error) error {
	unlock, err := lock(ctx, fsys, path)
	if err != nil {
		return err
	}
	defer unlock()
	f, err := LoadFS(fsys, path)
	if err != nil {
		return err
	}
	c := f.Config
	if err := change(f, &c); err != nil {
		return err
	}
	if Equal(&c, &f.Config) && !f.Missing {
		return nil
	}
	before, beforeErr := flash.ReadFile(fsys, path)
	if err := SaveFS(fsys, path, &c); err != nil {
		after, afterErr := flash.ReadFile(fsys, path)
		same := errors.Is(beforeErr, fs.ErrNotExist) && errors.Is(afterErr, fs.ErrNotExist) ||
			beforeErr == nil && afterErr == nil && bytes.Equal(before, after)
		return &SaveError{Path: path, Err: err, Written: !same}
	}
	return nil
}

// SaveError is a save of Update that failed. Written says whether the
// file was replaced all the same (its good copy was then not refreshed);
// when it is false the file is byte for byte as it was.
type SaveError struct {
	Path    string
	Err     error
	Written bool
}

func (e *SaveError) Error() string { return e.Err.Error() }
func (e *SaveError) Unwrap() error { return e.Err }
