package spool

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/internal/flash/powercut"
)

// pcDir is the spool directory on the power-cut model.
const pcDir = "/data/spool"

// pcRun is what one run of an operation under the power-cut model did.
type pcRun struct {
	acked   []string // codes of the Puts that returned nil
	refused []string // codes of the Puts that returned ErrFull
	err     error    // the first other error (the cut's)
}

func (r *pcRun) put(s *Spool, a alarm.Alarm) {
	_, err := s.Put(a)
	r.note(a.Code, err)
}

func (r *pcRun) note(code string, err error) {
	switch {
	case err == nil:
		r.acked = append(r.acked, code)
	case errors.Is(err, ErrFull):
		r.refused = append(r.refused, code)
	case r.err == nil:
		r.err = err
	}
}

// pcScenario is an operation on a spool (Max 3) holding the alarms of setup.
type pcScenario struct {
	name, kind string // kind: "append" or "ack"
	setup      []alarm.Alarm
	// run does the operation on s; ids are the setup's entries by code.
	run func(t *testing.T, s *Spool, ids map[string]ID) pcRun
	// gone are the codes of setup the operation removes (delivered): after
	// a cut each may be listed or not (at least once).
	gone []string
	// between are the drop counters an operation that commits more than
	// once has on flash between its commits.
	between []Drops
}

// TestPowerCut cuts the power after every change of a spool append (one
// Put; a Put that evicts; a batch of Puts in one group commit, with a
// refusal, an eviction of a record on flash and one within the batch) and
// of an ack (Remove after delivery; TakeDrops and ForgetDrops of the drop
// counters), under each loss of the model, and opens the spool on what
// comes back, as the agent and "mailagent alarm" do. After every cut:
//
//   - Open succeeds, finds no damaged record and leaves no temporary file;
//   - no acknowledged alarm is lost: each alarm queued before, and each Put
//     that returned nil, is listed, or dropped to make room and counted in
//     the drop counters, which are the old ones or the new ones;
//   - a delivered (removed) alarm may come back, once (at least once);
//   - a refused alarm never appears, and none appears twice;
//   - the spool takes a new alarm and stays within its bound.
func TestPowerCut(t *testing.T) {
	w, n, k := mk(alarm.Warning, "W"), mk(alarm.Minor, "N"), mk(alarm.Critical, "K")
	full := []alarm.Alarm{w, n, k}
	scenarios := []pcScenario{
		{name: "put", kind: "append", setup: []alarm.Alarm{mk(alarm.Major, "A")},
			run: func(t *testing.T, s *Spool, _ map[string]ID) (r pcRun) {
				r.put(s, mk(alarm.Major, "B"))
				return r
			}},
		{name: "put evicting", kind: "append", setup: full,
			run: func(t *testing.T, s *Spool, _ map[string]ID) (r pcRun) {
				r.put(s, mk(alarm.Critical, "C")) // drops W
				return r
			}},
		{name: "batch", kind: "append", setup: full, run: pcBatch, between: []Drops{{alarm.Warning: 1}}}, // HOLD's
		{name: "remove", kind: "ack", setup: full, gone: []string{"W", "K"},
			run: func(t *testing.T, s *Spool, ids map[string]ID) (r pcRun) {
				r.err = s.Remove(ids["W"], ids["K"])
				return r
			}},
		{name: "take drops", kind: "ack", setup: append(full, mk(alarm.Major, "X")), // X drops W
			run: func(t *testing.T, s *Spool, _ map[string]ID) (r pcRun) {
				_, r.err = s.TakeDrops()
				return r
			}},
		{name: "forget drops", kind: "ack", setup: append(full, mk(alarm.Major, "X"), mk(alarm.Major, "Y")), // X drops W, Y drops N
			run: func(t *testing.T, s *Spool, _ map[string]ID) (r pcRun) {
				r.err = s.ForgetDrops(Drops{alarm.Warning: 1}) // the minor drop stays
				return r
			}},
	}
	perKind := map[string]int{}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			points := powerCut(t, sc)
			perKind[sc.kind] += points
			t.Logf("%s (%s): %d cut points, %d restarts", sc.name, sc.kind, points, points*len(powercut.Losses))
		})
	}
	for _, kind := range []string{"append", "ack"} {
		if perKind[kind] == 0 {
			t.Errorf("no cut point of an %s was enumerated", kind)
		}
		t.Logf("spool %s: %d cut points", kind, perKind[kind])
	}
}

// powerCut enumerates the cut points of sc and returns how many there are.
func powerCut(t *testing.T, sc pcScenario) int {
	const max = 3
	base := powercut.New()
	s, err := Open(pcDir, Options{Max: max, FS: base})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range sc.setup {
		put(t, s, a)
	}
	ids := map[string]ID{}
	var before []string
	for _, e := range list(t, s) {
		ids[e.Alarm.Code] = e.ID
		before = append(before, e.Alarm.Code)
	}
	dropsBefore := s.Stats().Drops
	s.Close()

	op := func(fsys *powercut.FS) pcRun {
		s, err := Open(pcDir, Options{Max: max, FS: fsys})
		if err != nil {
			return pcRun{err: err}
		}
		defer s.Close()
		return sc.run(t, s, ids)
	}
	// The whole operation, uncut: what its drop counters end at.
	whole := base.Clone()
	if r := op(whole); r.err != nil {
		t.Fatalf("%s without a cut: %v", sc.name, r.err)
	}
	s, err = Open(pcDir, Options{Max: max, FS: whole})
	if err != nil {
		t.Fatal(err)
	}
	dropsAfter := s.Stats().Drops
	s.Close()

	points, err := powercut.Enumerate(base, op, func(c powercut.Cut, after *powercut.FS, r pcRun) {
		t.Helper()
		s, err := Open(pcDir, Options{Max: max, FS: after})
		if err != nil {
			t.Errorf("%s: Open = %v", c, err)
			return
		}
		defer s.Close()
		got := codes(list(t, s))
		st := s.Stats()
		if st.Corrupt != 0 {
			t.Errorf("%s: damage: %s", c, st.LastDamage)
		}
		for f := range after.Files() {
			if strings.HasSuffix(f, tmpExt) {
				t.Errorf("%s: %s left after Open", c, f)
			}
		}
		if st.Drops != dropsBefore && st.Drops != dropsAfter && !slices.Contains(sc.between, st.Drops) {
			t.Errorf("%s: drops %v, want the old %v, the new %v or one of %v", c, st.Drops, dropsBefore, dropsAfter, sc.between)
		}
		for i, code := range got {
			if slices.Contains(got[i+1:], code) {
				t.Errorf("%s: %s listed twice: %q", c, code, got)
			}
			if slices.Contains(r.refused, code) {
				t.Errorf("%s: %s was refused (ErrFull) and is listed: %q", c, code, got)
			}
		}
		// Every alarm that must be there is, or is counted as dropped by
		// this operation, severity by severity.
		var missing Drops
		for _, code := range append(slices.Clone(before), r.acked...) {
			if !slices.Contains(got, code) && !slices.Contains(sc.gone, code) {
				missing[severityOf(code)]++
			}
		}
		for sev, m := range missing {
			if grew := st.Drops[sev] - dropsBefore[sev]; m > 0 && m > grew {
				t.Errorf("%s: %d acknowledged %s alarms lost (%d counted as dropped): listed %q, before %q, acknowledged now %q",
					c, m, alarm.Severity(sev), grew, got, before, r.acked)
			}
		}
		if _, err := s.Put(mk(alarm.Critical, "AFTER")); err != nil {
			t.Errorf("%s: Put after the restart = %v", c, err)
		}
		if s.Len() > max {
			t.Errorf("%s: %d entries after a Put, want at most %d", c, s.Len(), max)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return points
}

// severityOf is the severity of the alarms named code in these tests: the
// first letter says it.
func severityOf(code string) alarm.Severity {
	switch code[0] {
	case 'I':
		return alarm.Info
	case 'W':
		return alarm.Warning
	case 'N':
		return alarm.Minor
	case 'C', 'K':
		return alarm.Critical
	}
	return alarm.Major // A, B, H(OLD), M, X, Y
}

// pcBatch holds a Put (HOLD) after it staged its record and queues four
// more behind it, which the next writer takes as one batch: I1 is refused
// (everything queued is more severe), M1 evicts N, C1 evicts HOLD (on
// flash by then) and C2 evicts M1 (accepted and dropped within the batch,
// never written). When the power goes before HOLD staged, HOLD fails and
// the others are put one by one, failing too.
func pcBatch(t *testing.T, s *Spool, _ map[string]ID) (r pcRun) {
	queued := make(chan int, 8)
	s.testHookQueued = func(n int) { queued <- n }
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.testHookStep = func(step string) {
		if step == "staged" {
			once.Do(func() { close(held); <-release })
		}
	}
	hold := make(chan error, 1)
	go func() { _, err := s.Put(mk(alarm.Major, "HOLD")); hold <- err }()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	wait := func(what string) bool {
		select {
		case <-queued:
			return true
		case <-timeout.C:
			t.Errorf("batch: %s never queued", what)
			return false
		}
	}
	if !wait("HOLD") {
		close(release)
		return pcRun{err: errors.New("timeout")}
	}
	var holdErr error
	holding := true
	select {
	case <-held:
	case holdErr = <-hold:
		holding = false
	case <-timeout.C:
		t.Error("batch: HOLD neither staged nor returned")
		close(release)
		return pcRun{err: errors.New("timeout")}
	}
	batch := []alarm.Alarm{mk(alarm.Info, "I1"), mk(alarm.Major, "M1"), mk(alarm.Critical, "C1"), mk(alarm.Critical, "C2")}
	results := make([]chan error, len(batch))
	for i, a := range batch {
		results[i] = make(chan error, 1)
		go func() { _, err := s.Put(a); results[i] <- err }()
		if holding && !wait(a.Code) {
			close(release)
			return pcRun{err: errors.New("timeout")}
		}
		if !holding {
			r.note(a.Code, <-results[i]) // one by one
		}
	}
	close(release)
	if holding {
		holdErr = <-hold
	}
	r.note("HOLD", holdErr)
	if holding {
		for i, a := range batch {
			r.note(a.Code, <-results[i])
		}
	}
	// The acknowledged order is not the order of the checks; sort for
	// messages.
	slices.Sort(r.acked)
	if !holding && holdErr == nil {
		r.err = fmt.Errorf("HOLD returned without staging")
	}
	return r
}
