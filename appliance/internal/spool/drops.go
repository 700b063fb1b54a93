package spool

import (
	"errors"
	"fmt"
	"io/fs"

	"mailagent/appliance/alarm"
	"mailagent/appliance/internal/flash"
)

// Drops counts the entries dropped to make room, by severity.
type Drops [alarm.Critical + 1]int

// Total is the number of drops of every severity.
func (d Drops) Total() int {
	n := 0
	for _, c := range d {
		n += c
	}
	return n
}

// TakeDrops returns the drop counts and resets them on flash. Call it once
// a mail has reported them; ForgetDrops is the form that keeps drops which
// happened in between.
func (s *Spool) TakeDrops() (Drops, error) {
	var d Drops
	err := s.locked(func() error {
		d = s.drops
		return s.setDrops(Drops{})
	})
	if err != nil {
		return Drops{}, fmt.Errorf("take drops from spool: %w", err)
	}
	return d, nil
}

// ForgetDrops subtracts drops a mail has reported (as read from Stats
// before the mail was sent) from the counts on flash.
func (s *Spool) ForgetDrops(reported Drops) error {
	err := s.locked(func() error {
		d := s.drops
		for i := range d {
			d[i] = max(0, d[i]-reported[i])
		}
		return s.setDrops(d)
	})
	if err != nil {
		return fmt.Errorf("forget drops in spool: %w", err)
	}
	return nil
}

func (s *Spool) setDrops(d Drops) error {
	if d == s.drops {
		return nil
	}
	if d.Total() == 0 {
		if err := s.fs.Remove(s.file(dropsFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", s.file(dropsFile), flash.Cause(err))
		}
		s.step("drops removed")
		if err := s.syncDir(); err != nil {
			return err
		}
		s.drops = d
		return nil
	}
	return s.writeDrops(d)
}

// writeDrops replaces the drop counters file and fsyncs the directory.
func (s *Spool) writeDrops(d Drops) error {
	tmp, err := s.stage(dropsFile, encodeDrops(d), true)
	if err != nil {
		return err
	}
	if err := s.fs.Rename(tmp, s.file(dropsFile)); err != nil {
		s.fs.Remove(tmp)
		return fmt.Errorf("write %s: %w", s.file(dropsFile), flash.Cause(err))
	}
	if err := s.syncDir(); err != nil {
		return err
	}
	s.drops = d
	return nil
}
