package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"mailagent/appliance/alarm"
	"mailagent/appliance/internal/flash"
)

// Put adds a to the spool and returns once it is on flash. When the spool
// is full it first drops the least severe entry, the oldest of those, and
// counts it; if every entry is more severe than a, nothing changes and the
// error wraps ErrFull.
//
// Puts that arrive while another is being written are written together
// (see "Group commit" in the package doc), with the outcome of putting them
// one by one in the order they arrived.
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
	if s.testHookQueued != nil {
		s.testHookQueued(len(s.waiting))
	}
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
			s.fs.Remove(st.tmp) // fails once renamed
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
			if err := s.fs.Rename(st.tmp, s.file(st.file)); err != nil {
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
		if err := s.fs.Remove(s.file(v.file())); err != nil && !errors.Is(err, fs.ErrNotExist) {
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
