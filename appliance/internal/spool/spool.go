// Package spool is the persistent alarm queue: a bounded set of alarms in a
// directory on flash that survives crashes and power cuts, shared by the
// agent and by "mailagent alarm" when the agent is down.
//
// # Layout
//
// One file per alarm, ID.alarm. An ID is SEQ-S-TAG: a 16-digit hex sequence
// number (the order of acceptance), the severity as one digit (0 cleared up
// to 5 critical, so choosing what to evict needs no reads) and 8 random hex
// digits, so that an old ID does not come back when the sequence starts
// over in an emptied directory. A file is a 16-byte header (magic, format
// version, kind, payload length, CRC-32C) and the alarm as JSON. The file
// "drops" holds the drop counters in the same framing; it exists only while
// there are drops to report. Files are 0600, the directory 0700.
//
// One file per alarm rather than an append-only segment: the queue holds a
// few dozen entries, so delivering one is an unlink, nothing is ever
// rewritten or compacted, and a damaged file costs that one alarm only.
//
// # Writes to flash
//
//   - Put, room left: the record goes to .ID.alarm.tmp, is fsynced, renamed
//     to ID.alarm, and the directory is fsynced. 16 bytes plus the JSON
//     (typically 150 to 400 bytes) and 2 fsyncs per accepted alarm.
//   - Put, spool full: the record and the drop counters (16 bytes plus 10
//     to 80 bytes of JSON) are staged, both synced with one syncfs, renamed
//     into place, and the directory is fsynced; then the evicted file is
//     unlinked, which reaches flash with the next directory fsync. 2 syncs.
//     A power cut before that brings the evicted alarm back, counted as
//     dropped and still queued; a drop is never missed.
//   - Put refused with ErrFull: nothing.
//   - Puts written together (group commit, below): the records' bytes and
//     the drop counters, one syncfs for all of them, one directory fsync: 2
//     syncs for the batch however large. An alarm accepted and dropped
//     again within its batch is counted and never written.
//   - Remove: one unlink per delivered alarm and one directory fsync per
//     batch; no data bytes.
//   - TakeDrops: an unlink of "drops" and one directory fsync. ForgetDrops
//     leaving some: "drops" rewritten, 2 fsyncs. Nothing when there is
//     nothing to take.
//   - List, Len, Stats, Rescan and an idle spool write nothing.
//
// The file system adds its own metadata (inode, directory entry, journal)
// and rounds each file up to its block size. Stats counts the bytes and
// fsyncs this package asked for.
//
// # Group commit
//
// A Put that arrives while another is writing waits, and the next writer
// takes every waiting Put along: one lock, one scan and one set of syncs
// for the lot. Under a burst this turns a few fsyncs per alarm into a few
// per batch; a lone Put is written as before. The outcome is that of the
// Puts one by one in the order they arrived (evictions, refusals, drop
// counts), and each returns only once its batch is on flash.
//
// # Power cuts
//
// A record is renamed into place only after its bytes are on flash, so a
// cut leaves no record or a whole one, and maybe a temporary file, which the
// next operation deletes. Should a file system still tear, lose or flip a
// record, Open checks every record: a file that is short, long, fails its
// checksum or does not decode is moved aside to ID.alarm.bad (the newest
// 16 such files are kept), counted in Stats.Corrupt and named in
// Stats.LastDamage, and the other records are unaffected. List checks each
// record it reads the same way.
//
// # Sharing
//
// A Spool is safe for concurrent use. Several Spool values, in one process
// or in several, may open the same directory: every operation holds an
// exclusive flock on the directory and re-reads it, so each sees what the
// others added or removed; an operation waits while another holds the lock.
// Files are changed only under the lock, so a temporary file found under
// the lock was left by a crash.
package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"mailagent/appliance/alarm"
	"mailagent/appliance/internal/flash"
)

// DefaultMax is how many entries a spool holds when Options.Max is zero.
const DefaultMax = 50

// keepBad is how many damaged files are kept aside for inspection.
const keepBad = 16

var (
	// ErrFull is returned by Put when the spool is full and every entry in
	// it is more severe than the alarm offered. It is a temporary
	// condition: the caller answers with a retryable failure.
	ErrFull = errors.New("spool: full")
	// ErrClosed is returned by operations on a closed Spool.
	ErrClosed = errors.New("spool: closed")
)

// Options configure a Spool.
type Options struct {
	// Max is the most entries the spool holds. If zero, DefaultMax is used.
	Max int
	// FS is the file system the directory is on; nil means flash.OS.
	FS flash.FS
}

// ID names an entry for as long as it is queued, in every process. A new
// entry never takes the ID of one still queued; 32 random bits make reuse
// of an ID delivered earlier unlikely.
type ID string

// Entry is a queued alarm.
type Entry struct {
	ID    ID
	Alarm alarm.Alarm
}

// Stats describe a spool as of its last operation.
type Stats struct {
	// Len is the number of entries; Max how many it holds at most.
	Len, Max int
	// Drops are the entries dropped to make room and not yet taken, from
	// every process using the directory. They survive restarts.
	Drops Drops
	// Refused counts Put calls this Spool answered with ErrFull.
	Refused int
	// Corrupt counts damaged records this Spool found and set aside.
	Corrupt int
	// LastDamage names the last damaged file and says what was wrong.
	LastDamage string
	// SetAside counts the damaged files kept in the directory as *.bad,
	// whoever found them, until someone removes them; NewestBad names the
	// newest.
	SetAside  int
	NewestBad string
	// Written and Syncs count the bytes this Spool wrote and the fsyncs
	// (of files and of the directory) it asked for.
	Written int64
	Syncs   int
}

// Spool is a persistent alarm queue in a directory.
type Spool struct {
	path string
	max  int
	fs   flash.FS

	// commitMu is held by the Put writing a batch; waiting are the Puts
	// not yet taken into one (waitMu).
	commitMu sync.Mutex
	waitMu   sync.Mutex
	waiting  []*putReq

	mu    sync.Mutex
	dir   flash.File // flock and fsync; nil once closed
	names []name     // oldest first, from the last scan
	drops Drops
	seq   uint64 // the highest sequence number seen
	bad   map[string]bool
	stats Stats

	// testHookStep, if set, is called after each step that changes files.
	testHookStep func(step string)
	// testHookQueued, if set, is called when a Put has joined the waiting
	// ones, with how many wait now (waitMu held).
	testHookQueued func(waiting int)
}

// Open opens the spool in dir, creating the directory (0700) if needed. It
// deletes temporary files left by a crash and checks every record, setting
// damaged ones aside (see Stats).
func Open(dir string, opts Options) (*Spool, error) {
	if opts.Max < 0 {
		return nil, fmt.Errorf("open spool %s: max %d is negative", dir, opts.Max)
	}
	if opts.Max == 0 {
		opts.Max = DefaultMax
	}
	if opts.FS == nil {
		opts.FS = flash.OS
	}
	if err := flash.MakeDir(opts.FS, dir); err != nil {
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	d, err := opts.FS.OpenFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", dir, flash.Cause(err))
	}
	s := &Spool{path: dir, max: opts.Max, fs: opts.FS, dir: d, bad: make(map[string]bool)}
	s.stats.Max = opts.Max
	err = s.locked(func() error {
		for _, n := range s.names {
			s.read(n)
		}
		s.forget()
		return nil
	})
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("open spool: %w", err)
	}
	return s, nil
}

// Close releases the directory. Later calls return ErrClosed.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == nil {
		return ErrClosed
	}
	err := s.dir.Close()
	s.dir = nil
	return err
}

// List returns the entries, oldest first, including those other processes
// added. A damaged record is set aside and left out.
func (s *Spool) List() ([]Entry, error) {
	var list []Entry
	err := s.locked(func() error {
		list = make([]Entry, 0, len(s.names))
		for _, n := range s.names {
			if a := s.read(n); a != nil {
				list = append(list, Entry{ID: n.id(), Alarm: *a})
			}
		}
		s.forget()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list spool: %w", err)
	}
	return list, nil
}

// Remove deletes delivered entries and returns once that is on flash. IDs
// no longer in the spool are ignored.
func (s *Spool) Remove(ids ...ID) error {
	if len(ids) == 0 {
		return nil
	}
	for _, id := range ids {
		if _, ok := parseName(string(id) + recordExt); !ok {
			return fmt.Errorf("remove from spool %s: %q is not an entry ID", s.path, id)
		}
	}
	err := s.locked(func() error {
		removed := 0
		for _, id := range ids {
			err := s.fs.Remove(s.file(string(id) + recordExt))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("remove %s: %w", s.file(string(id)+recordExt), flash.Cause(err))
			}
			removed++
		}
		if removed == 0 {
			return nil
		}
		s.step("removed")
		if err := s.syncDir(); err != nil {
			return err
		}
		s.names = slices.DeleteFunc(s.names, func(n name) bool { return slices.Contains(ids, n.id()) })
		s.stats.Len = len(s.names)
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove from spool: %w", err)
	}
	return nil
}

// Rescan re-reads the directory, so that Len and Stats include what other
// processes changed. Every other operation does this too.
func (s *Spool) Rescan() error {
	if err := s.locked(func() error { return nil }); err != nil {
		return fmt.Errorf("rescan spool: %w", err)
	}
	return nil
}

// Len is the number of entries as of the last operation.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.names)
}

// Stats describe the spool as of the last operation.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Len, st.Drops = len(s.names), s.drops
	return st
}

// locked runs op holding the mutex and the directory lock, after a scan.
func (s *Spool) locked(op func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == nil {
		return ErrClosed
	}
	if err := s.dir.Flock(syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", s.path, flash.Cause(err))
	}
	defer s.dir.Flock(syscall.LOCK_UN)
	if err := s.scan(); err != nil {
		return err
	}
	return op()
}

// scan re-reads the directory: record names, the drop counters, temporary
// files left by a crash (deleted) and damaged files kept aside (pruned).
func (s *Spool) scan() error {
	entries, err := s.fs.ReadDir(s.path)
	if err != nil {
		return fmt.Errorf("read %s: %w", s.path, flash.Cause(err))
	}
	s.names = s.names[:0]
	var bad []string
	drops := false
	for _, e := range entries {
		f := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		if n, ok := parseName(f); ok {
			s.names = append(s.names, n)
			s.seq = max(s.seq, n.seq)
			continue
		}
		switch {
		case f == dropsFile:
			drops = true
		case strings.HasPrefix(f, ".") && strings.HasSuffix(f, tmpExt):
			s.fs.Remove(s.file(f)) // left by a crash; retried next time
		case strings.HasSuffix(f, badExt):
			bad = append(bad, f)
		}
	}
	slices.SortFunc(s.names, name.compare)
	s.stats.Len = len(s.names)
	slices.Sort(bad)
	if len(bad) > keepBad {
		for _, f := range bad[:len(bad)-keepBad] {
			s.fs.Remove(s.file(f))
		}
		bad = bad[len(bad)-keepBad:]
	}
	s.stats.SetAside, s.stats.NewestBad = len(bad), ""
	if len(bad) > 0 {
		s.stats.NewestBad = bad[len(bad)-1]
	}
	s.drops = Drops{}
	if drops {
		data, err := flash.ReadFile(s.fs, s.file(dropsFile))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read %s: %w", s.file(dropsFile), flash.Cause(err))
		}
		if err == nil {
			d, err := decodeDrops(data)
			if err != nil {
				s.damaged(dropsFile, err)
			} else {
				s.drops = d
			}
		}
	}
	return nil
}

// read reads and checks the record for n. It returns nil when the record
// is gone or damaged; a damaged one is set aside.
func (s *Spool) read(n name) *alarm.Alarm {
	data, err := flash.ReadFile(s.fs, s.file(n.file()))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		var a alarm.Alarm
		a, err = decodeAlarm(data)
		if err == nil && a.Severity != n.sev {
			err = fmt.Errorf("severity %s does not match the name", a.Severity)
		}
		if err == nil {
			return &a
		}
	}
	// An unreadable record (EIO from worn flash) is damage too: it must
	// not hold up the others.
	s.damaged(n.file(), flash.Cause(err))
	return nil
}

// damaged sets file aside as file.bad and counts it once.
func (s *Spool) damaged(file string, why error) {
	report := file + ": " + why.Error()
	err := s.fs.Rename(s.file(file), s.file(file+badExt))
	if err != nil {
		report += "; cannot set aside: " + flash.Cause(err).Error()
	} else {
		report += "; set aside as " + file + badExt
		s.stats.SetAside++
		s.stats.NewestBad = file + badExt
		s.step("set aside")
	}
	// A file that stays (the rename failed) is counted once.
	if err == nil || !s.bad[file] {
		s.bad[file] = true
		s.stats.Corrupt++
		s.stats.LastDamage = report
	}
}

// forget drops from s.names the records set aside since the scan.
func (s *Spool) forget() {
	s.names = slices.DeleteFunc(s.names, func(n name) bool {
		return s.bad[n.file()] && !s.exists(n.file())
	})
	s.stats.Len = len(s.names)
}

func (s *Spool) exists(file string) bool {
	_, err := s.fs.Lstat(s.file(file))
	return err == nil
}

func (s *Spool) file(name string) string { return filepath.Join(s.path, name) }

func (s *Spool) step(what string) {
	if s.testHookStep != nil {
		s.testHookStep(what)
	}
}
