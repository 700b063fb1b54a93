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
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"mailagent/appliance/alarm"
	"mailagent/appliance/internal/flash"
)

// DefaultMax is how many entries a spool holds when Options.Max is zero.
const DefaultMax = 50

// keepBad is how many damaged files are kept aside for inspection.
const keepBad = 16

const (
	recordExt = ".alarm"
	badExt    = ".bad"
	tmpExt    = ".tmp"
	dropsFile = "drops"
)

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

	// commitMu is held by the Put writing a batch; waiting are the Puts
	// not yet taken into one (waitMu).
	commitMu sync.Mutex
	waitMu   sync.Mutex
	waiting  []*putReq

	mu    sync.Mutex
	dir   *os.File // flock and fsync; nil once closed
	names []name   // oldest first, from the last scan
	drops Drops
	seq   uint64 // the highest sequence number seen
	bad   map[string]bool
	stats Stats

	// testHookStep, if set, is called after each step that changes files.
	testHookStep func(step string)
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
	if err := makeDir(dir); err != nil {
		return nil, fmt.Errorf("open spool %s: %w", dir, flash.Cause(err))
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", dir, flash.Cause(err))
	}
	s := &Spool{path: dir, max: opts.Max, dir: d, bad: make(map[string]bool)}
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

// Put adds a to the spool and returns once it is on flash. When the spool
// is full it first drops the least severe entry, the oldest of those, and
// counts it; if every entry is more severe than a, nothing changes and the
// error wraps ErrFull.
//
// Puts that arrive while another is being written are written together
// (see "Group commit" above), with the outcome of putting them one by one
// in the order they arrived.
func (s *Spool) Put(a alarm.Alarm) (ID, error) {
	if err := a.Validate(); err != nil {
		return "", fmt.Errorf("put alarm: %w", err)
	}
	data, err := encodeAlarm(&a)
	if err != nil {
		return "", fmt.Errorf("put alarm %s: %w", a.Code, err)
	}
	r := &putReq{sev: a.Severity, data: data}
	s.waitMu.Lock()
	s.waiting = append(s.waiting, r)
	s.waitMu.Unlock()

	// Whoever holds commitMu writes everything waiting, this put included
	// unless an earlier holder took it along.
	s.commitMu.Lock()
	s.waitMu.Lock()
	batch := s.waiting
	s.waiting = nil
	s.waitMu.Unlock()
	if len(batch) > 0 {
		err := s.locked(func() error { return s.putBatch(batch) })
		for _, b := range batch {
			if b.id == "" && b.err == nil {
				b.err = err
			}
		}
	}
	s.commitMu.Unlock()
	if r.err != nil {
		return "", fmt.Errorf("put alarm %s: %w", a.Code, r.err)
	}
	return r.id, nil
}

// putReq is one Put waiting to be written.
type putReq struct {
	sev  alarm.Severity
	data []byte
	// Set by the writer: the ID once accepted, or why not.
	id  ID
	err error
}

// slot is an entry of the spool as putBatch plans it: a record on flash or
// one of the batch.
type slot struct {
	n   name
	req *putReq // nil for a record already on flash
}

// putBatch puts every request of batch, as Put would one by one. A request
// the spool refuses gets ErrFull; one accepted and then dropped for a later
// one of the same batch gets its ID, is counted as a drop and is never
// written.
func (s *Spool) putBatch(batch []*putReq) error {
	plan := make([]slot, 0, len(s.names)+len(batch))
	for _, n := range s.names {
		plan = append(plan, slot{n: n})
	}
	drops, seq := s.drops, s.seq
	var evict []name
	var accepted []slot
	for _, r := range batch {
		victims, ok := s.victims(plan, r.sev)
		if !ok {
			s.stats.Refused++
			r.err = fmt.Errorf("%w: all %d entries are more severe than %s", ErrFull, len(plan), r.sev)
			continue
		}
		for _, v := range victims {
			drops[plan[v].n.sev]++
			if plan[v].req == nil {
				evict = append(evict, plan[v].n)
			}
		}
		plan = deleteIndexes(plan, victims)
		seq++
		n := name{seq: seq, sev: r.sev, tag: randomTag()}
		for s.exists(n.file()) || slices.ContainsFunc(plan, func(p slot) bool { return p.n == n }) {
			n.tag = randomTag()
		}
		accepted = append(accepted, slot{n: n, req: r})
		plan = append(plan, slot{n: n, req: r})
	}
	// The IDs are given once everything is on flash; until then a failure
	// is every accepted request's.
	done := func() {
		for _, a := range accepted {
			a.req.id = a.n.id()
		}
	}

	// Stage the records and the drop counters, sync them (one fsync for a
	// single file, one syncfs for several), rename them into place and sync
	// the directory; only then unlink what was evicted, so that a drop is
	// on flash before its alarm goes. The unlinks reach flash with the next
	// directory sync: a power cut before that brings an evicted alarm back,
	// counted as dropped and sent as well, never the other way round.
	type staging struct{ tmp, file string }
	var staged []staging
	defer func() {
		for _, st := range staged {
			os.Remove(st.tmp) // fails once renamed
		}
	}()
	var files []slot
	for _, p := range plan {
		if p.req != nil {
			files = append(files, p)
		}
	}
	newDrops := drops != s.drops
	n := len(files)
	if newDrops {
		n++
	}
	if newDrops {
		tmp, err := s.stage(dropsFile, encodeDrops(drops), n == 1)
		if err != nil {
			return err
		}
		staged = append(staged, staging{tmp, dropsFile})
	}
	for _, p := range files {
		tmp, err := s.stage(p.n.file(), p.req.data, n == 1)
		if err != nil {
			return err
		}
		staged = append(staged, staging{tmp, p.n.file()})
	}
	if n > 1 {
		if err := s.syncFS(); err != nil {
			return err
		}
	}
	if n > 0 {
		s.step("staged")
		for _, st := range staged {
			if err := os.Rename(st.tmp, s.file(st.file)); err != nil {
				return fmt.Errorf("write %s: %w", s.file(st.file), flash.Cause(err))
			}
		}
		s.step("renamed")
		if err := s.syncDir(); err != nil {
			return err
		}
		s.step("synced")
	}
	s.drops = drops
	for _, v := range evict {
		if err := os.Remove(s.file(v.file())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("drop %s: %w", s.file(v.file()), flash.Cause(err))
		}
	}
	if len(evict) > 0 {
		s.step("evicted")
	}
	s.seq = seq
	s.names = s.names[:0]
	for _, p := range plan {
		s.names = append(s.names, p.n)
	}
	s.stats.Len = len(s.names)
	done()
	return nil
}

// deleteIndexes removes the entries at the given indexes from p.
func deleteIndexes(p []slot, idx []int) []slot {
	if len(idx) == 0 {
		return p
	}
	out := p[:0]
	for i, e := range p {
		if !slices.Contains(idx, i) {
			out = append(out, e)
		}
	}
	return out
}

// victims chooses the entries of plan (oldest first) to drop so that one
// of severity sev fits: the least severe, the oldest of those. It reports
// false when every entry it would need to drop is more severe than sev.
func (s *Spool) victims(plan []slot, sev alarm.Severity) ([]int, bool) {
	var evict []int
	for len(plan)-len(evict) >= s.max {
		v := -1
		for i, p := range plan {
			if slices.Contains(evict, i) {
				continue
			}
			if v < 0 || p.n.sev < plan[v].n.sev {
				v = i
			}
		}
		if plan[v].n.sev > sev {
			return nil, false
		}
		evict = append(evict, v)
	}
	return evict, true
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
			err := os.Remove(s.file(string(id) + recordExt))
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
		if err := os.Remove(s.file(dropsFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
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
	if err := os.Rename(tmp, s.file(dropsFile)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", s.file(dropsFile), flash.Cause(err))
	}
	if err := s.syncDir(); err != nil {
		return err
	}
	s.drops = d
	return nil
}

// locked runs op holding the mutex and the directory lock, after a scan.
func (s *Spool) locked(op func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == nil {
		return ErrClosed
	}
	if err := flock(s.dir, syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", s.path, flash.Cause(err))
	}
	defer flock(s.dir, syscall.LOCK_UN)
	if err := s.scan(); err != nil {
		return err
	}
	return op()
}

// scan re-reads the directory: record names, the drop counters, temporary
// files left by a crash (deleted) and damaged files kept aside (pruned).
func (s *Spool) scan() error {
	entries, err := os.ReadDir(s.path)
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
			os.Remove(s.file(f)) // left by a crash; retried next time
		case strings.HasSuffix(f, badExt):
			bad = append(bad, f)
		}
	}
	slices.SortFunc(s.names, name.compare)
	s.stats.Len = len(s.names)
	slices.Sort(bad)
	if len(bad) > keepBad {
		for _, f := range bad[:len(bad)-keepBad] {
			os.Remove(s.file(f))
		}
		bad = bad[len(bad)-keepBad:]
	}
	s.stats.SetAside, s.stats.NewestBad = len(bad), ""
	if len(bad) > 0 {
		s.stats.NewestBad = bad[len(bad)-1]
	}
	s.drops = Drops{}
	if drops {
		data, err := os.ReadFile(s.file(dropsFile))
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
	data, err := os.ReadFile(s.file(n.file()))
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
	err := os.Rename(s.file(file), s.file(file+badExt))
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

// stage writes data to a new temporary file for file and returns its path.
// With sync it fsyncs the file; without, the caller syncs the file system
// before renaming it into place.
func (s *Spool) stage(file string, data []byte, sync bool) (string, error) {
	tmp := s.file("." + file + tmpExt)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
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
		os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", s.file(file), flash.Cause(err))
	}
	return tmp, nil
}

// syncFS flushes every file written on the spool's file system: one
// flush for a batch of staged records instead of one each.
func (s *Spool) syncFS() error {
	s.stats.Syncs++
	c, err := s.dir.SyscallConn()
	if err == nil {
		var serr error
		err = c.Control(func(fd uintptr) { serr = unix.Syncfs(int(fd)) })
		if err == nil {
			err = serr
		}
	}
	if err != nil {
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

func (s *Spool) exists(file string) bool {
	_, err := os.Lstat(s.file(file))
	return err == nil
}

func (s *Spool) file(name string) string { return filepath.Join(s.path, name) }

func (s *Spool) step(what string) {
	if s.testHookStep != nil {
		s.testHookStep(what)
	}
}

// name is what a record's file name says about it.
type name struct {
	seq uint64
	sev alarm.Severity
	tag uint32
}

func (n name) id() ID { return ID(fmt.Sprintf("%016x-%d-%08x", n.seq, n.sev, n.tag)) }

func (n name) file() string { return string(n.id()) + recordExt }

func (n name) compare(m name) int {
	switch {
	case n.seq != m.seq:
		return cmpUint(n.seq, m.seq)
	case n.tag != m.tag:
		return cmpUint(uint64(n.tag), uint64(m.tag))
	}
	return int(n.sev - m.sev)
}

func cmpUint(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
}

// parseName reads a record file name, exactly as name.file writes it.
func parseName(f string) (name, bool) {
	const size = 16 + 1 + 1 + 1 + 8
	stem, ok := strings.CutSuffix(f, recordExt)
	if !ok || len(stem) != size || stem[16] != '-' || stem[18] != '-' {
		return name{}, false
	}
	var n name
	for _, c := range []byte(stem[:16]) {
		d, ok := hexDigit(c)
		if !ok {
			return name{}, false
		}
		n.seq = n.seq<<4 | uint64(d)
	}
	if stem[17] < '0' || stem[17] > '0'+byte(alarm.Critical) {
		return name{}, false
	}
	n.sev = alarm.Severity(stem[17] - '0')
	for _, c := range []byte(stem[19:]) {
		d, ok := hexDigit(c)
		if !ok {
			return name{}, false
		}
		n.tag = n.tag<<4 | uint32(d)
	}
	return n, true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func randomTag() uint32 {
	var b [4]byte
	rand.Read(b[:]) // never fails
	return binary.LittleEndian.Uint32(b[:])
}

// makeDir creates dir 0700 if it is missing, and fsyncs its parent so the
// new entry survives a power cut.
func makeDir(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	p, err := os.Open(filepath.Dir(filepath.Clean(dir)))
	if err != nil {
		return err
	}
	defer p.Close()
	return p.Sync()
}

func flock(f *os.File, how int) error {
	c, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = c.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if ferr != syscall.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return ferr
}
