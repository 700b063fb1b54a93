package spool

import (
	"fmt"
	"os"

	"mailagent/appliance/internal/flash"
)

// stage writes data to a new temporary file for file and returns its path.
// With sync it fsyncs the file; without, the caller syncs the file system
// before renaming it into place.
func (s *Spool) stage(file string, data []byte, sync bool) (string, error) {
	tmp := s.file("." + file + tmpExt)
	f, err := s.fs.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", s.file(file), flash.Cause(err))
	}
	_, err = f.Write(data)
	if err == nil {
		s.stats.Written += int64(len(data))
	}
	if err == nil && sync {
		s.stats.Syncs++
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.fs.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", s.file(file), flash.Cause(err))
	}
	return tmp, nil
}

// syncFS flushes every file written on the spool's file system: one
// flush for a batch of staged records instead of one each.
func (s *Spool) syncFS() error {
	s.stats.Syncs++
	if err := s.dir.SyncFS(); err != nil {
		return fmt.Errorf("sync %s: %w", s.path, flash.Cause(err))
	}
	return nil
}

func (s *Spool) syncDir() error {
	s.stats.Syncs++
	if err := s.dir.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", s.path, flash.Cause(err))
	}
	return nil
}
