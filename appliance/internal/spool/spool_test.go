package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mailagent/appliance/alarm"
)

// newForTest opens a spool in a new directory and closes it at the end.
func newForTest(t testing.TB, max int) (*Spool, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "spool")
	return openForTest(t, dir, max), dir
}

func openForTest(t testing.TB, dir string, max int) *Spool {
	t.Helper()
	s, err := Open(dir, Options{Max: max})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mk(sev alarm.Severity, code string) alarm.Alarm {
	return alarm.Alarm{
		Time:     time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Severity: sev,
		Code:     code,
		Source:   "test",
		Text:     "alarm " + code,
	}
}

func put(t testing.TB, s *Spool, a alarm.Alarm) ID {
	t.Helper()
	id, err := s.Put(a)
	if err != nil {
		t.Fatalf("Put(%s) = %v", a.Code, err)
	}
	return id
}

func list(t testing.TB, s *Spool) []Entry {
	t.Helper()
	l, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func codes(l []Entry) []string {
	var c []string
	for _, e := range l {
		c = append(c, e.Alarm.Code)
	}
	return c
}

// files lists the directory, sorted.
func files(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestPutListRemove(t *testing.T) {
	s, dir := newForTest(t, 0)
	a := testAlarm()
	id1 := put(t, s, a)
	id2 := put(t, s, mk(alarm.Info, "B"))
	id3 := put(t, s, mk(alarm.Critical, "C"))

	l := list(t, s)
	if got, want := codes(l), []string{"LINK-DOWN", "B", "C"}; !slices.Equal(got, want) {
		t.Fatalf("List codes = %q, want %q (oldest first)", got, want)
	}
	if got := []ID{l[0].ID, l[1].ID, l[2].ID}; !slices.Equal(got, []ID{id1, id2, id3}) {
		t.Fatalf("List IDs = %q, want the IDs Put returned %q", got, []ID{id1, id2, id3})
	}
	g := l[0].Alarm
	if !g.Time.Equal(a.Time) || g.Source != a.Source || g.Text != a.Text || g.Severity != a.Severity ||
		!slices.Equal(g.Details, a.Details) {
		t.Errorf("List()[0] = %+v, want %+v", g, a)
	}
	if s.Len() != 3 {
		t.Errorf("Len = %d, want 3", s.Len())
	}

	if err := s.Remove(id1, id3); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(id1); err != nil {
		t.Fatalf("Remove of a removed ID = %v, want nil", err)
	}
	if got := codes(list(t, s)); !slices.Equal(got, []string{"B"}) {
		t.Fatalf("after Remove: %q, want [B]", got)
	}

	// The queue and its IDs survive a reopen.
	s.Close()
	s = openForTest(t, dir, 0)
	l = list(t, s)
	if len(l) != 1 || l[0].ID != id2 {
		t.Fatalf("after reopen: %+v, want only %s", l, id2)
	}
	id4 := put(t, s, mk(alarm.Info, "D"))
	if id4 <= id2 {
		t.Errorf("new ID %s sorts before the older %s", id4, id2)
	}
}

func TestModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "spool")
	s := openForTest(t, dir, 1)
	put(t, s, mk(alarm.Info, "A"))
	put(t, s, mk(alarm.Info, "B")) // drops A: writes the counters
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", fi.Mode().Perm())
	}
	names := files(t, dir)
	if len(names) != 2 || !slices.Contains(names, dropsFile) {
		t.Fatalf("files %q, want a record and %s", names, dropsFile)
	}
	for _, f := range names {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
}

func TestEviction(t *testing.T) {
	const (
		cl = alarm.Cleared
		in = alarm.Info
		wa = alarm.Warning
		mi = alarm.Minor
		ma = alarm.Major
		cr = alarm.Critical
	)
	type p struct {
		sev  alarm.Severity
		code string
	}
	tests := []struct {
		name    string
		max     int
		puts    []p
		want    []string // codes left, oldest first
		drops   Drops
		refused []string // codes Put refused with ErrFull
	}{
		{"room left", 3, []p{{wa, "a"}, {ma, "b"}, {cr, "c"}}, []string{"a", "b", "c"}, Drops{}, nil},
		{"lowest severity first", 3, []p{{in, "a"}, {ma, "b"}, {in, "c"}, {wa, "d"}}, []string{"b", "c", "d"}, Drops{in: 1}, nil},
		{"then the oldest", 3, []p{{wa, "a"}, {wa, "b"}, {wa, "c"}, {wa, "d"}}, []string{"b", "c", "d"}, Drops{wa: 1}, nil},
		{"cleared before info", 3, []p{{cr, "a"}, {in, "b"}, {cl, "c"}, {in, "d"}}, []string{"a", "b", "d"}, Drops{cl: 1}, nil},
		{"each put drops the lowest left", 2, []p{{in, "a"}, {wa, "b"}, {mi, "c"}, {cr, "d"}}, []string{"c", "d"}, Drops{in: 1, wa: 1}, nil},
		{"equal severity replaces the oldest", 2, []p{{ma, "a"}, {cr, "b"}, {ma, "c"}}, []string{"b", "c"}, Drops{ma: 1}, nil},
		{"refused when all outrank", 2, []p{{ma, "a"}, {cr, "b"}, {wa, "c"}}, []string{"a", "b"}, Drops{}, []string{"c"}},
		{"cleared refused by info", 1, []p{{in, "a"}, {cl, "b"}, {in, "c"}}, []string{"c"}, Drops{in: 1}, []string{"b"}},
		{"critical always fits", 2, []p{{cr, "a"}, {cr, "b"}, {cr, "c"}, {in, "d"}}, []string{"b", "c"}, Drops{cr: 1}, []string{"d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newForTest(t, tt.max)
			var refused []string
			for _, p := range tt.puts {
				_, err := s.Put(mk(p.sev, p.code))
				switch {
				case errors.Is(err, ErrFull):
					refused = append(refused, p.code)
				case err != nil:
					t.Fatalf("Put(%s) = %v", p.code, err)
				}
			}
			if got := codes(list(t, s)); !slices.Equal(got, tt.want) {
				t.Errorf("left %q, want %q", got, tt.want)
			}
			st := s.Stats()
			if st.Drops != tt.drops {
				t.Errorf("Drops = %v, want %v", st.Drops, tt.drops)
			}
			if !slices.Equal(refused, tt.refused) || st.Refused != len(tt.refused) {
				t.Errorf("refused %q (Stats.Refused %d), want %q", refused, st.Refused, tt.refused)
			}
		})
	}
}

func TestErrFull(t *testing.T) {
	s, dir := newForTest(t, 1)
	put(t, s, mk(alarm.Critical, "A"))
	before := files(t, dir)
	_, err := s.Put(mk(alarm.Major, "B"))
	if !errors.Is(err, ErrFull) {
		t.Fatalf("Put = %v, want ErrFull", err)
	}
	if !strings.Contains(err.Error(), "B") {
		t.Errorf("error %q does not name the alarm", err)
	}
	if after := files(t, dir); !slices.Equal(before, after) {
		t.Errorf("a refused Put changed the directory: %q, then %q", before, after)
	}
}

func TestDropsPersist(t *testing.T) {
	s, dir := newForTest(t, 2)
	for i, sev := range []alarm.Severity{alarm.Info, alarm.Info, alarm.Warning, alarm.Warning, alarm.Major} {
		put(t, s, mk(sev, fmt.Sprint("A", i)))
	}
	want := Drops{alarm.Info: 2, alarm.Warning: 1}
	if got := s.Stats().Drops; got != want {
		t.Fatalf("Drops = %v, want %v", got, want)
	}
	s.Close()

	s = openForTest(t, dir, 2)
	if got := s.Stats().Drops; got != want {
		t.Fatalf("Drops after reopen = %v, want %v", got, want)
	}
	// A mail reported what Stats said; one more drop happens meanwhile.
	reported := s.Stats().Drops
	put(t, s, mk(alarm.Major, "B"))
	if err := s.ForgetDrops(reported); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Stats().Drops, (Drops{alarm.Warning: 1}); got != want {
		t.Fatalf("after ForgetDrops: %v, want %v", got, want)
	}
	s.Close()

	s = openForTest(t, dir, 2)
	got, err := s.TakeDrops()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Drops{alarm.Warning: 1}); got != want {
		t.Fatalf("TakeDrops = %v, want %v", got, want)
	}
	if slices.Contains(files(t, dir), dropsFile) {
		t.Errorf("%s still there after TakeDrops", dropsFile)
	}
	s.Close()

	s = openForTest(t, dir, 2)
	if got := s.Stats().Drops; got != (Drops{}) {
		t.Fatalf("Drops after TakeDrops and reopen = %v, want none", got)
	}
}

// TestWrites checks the counts the package doc promises.
func TestWrites(t *testing.T) {
	s, _ := newForTest(t, 3)
	a := mk(alarm.Info, "A")
	size := int64(len(mustEncode(t, a)))

	step := func(what string, f func(), bytes int64, syncs int) {
		t.Helper()
		before := s.Stats()
		f()
		after := s.Stats()
		if got := after.Written - before.Written; got != bytes {
			t.Errorf("%s wrote %d bytes, want %d", what, got, bytes)
		}
		if got := after.Syncs - before.Syncs; got != syncs {
			t.Errorf("%s: %d fsyncs, want %d", what, got, syncs)
		}
	}
	var ids []ID
	for range 3 {
		step("Put", func() { ids = append(ids, put(t, s, a)) }, size, 2)
	}
	dropsSize := int64(len(encodeDrops(Drops{alarm.Info: 1})))
	step("Put evicting", func() { ids = append(ids, put(t, s, a)) }, size+dropsSize, 2)
	step("Remove batch", func() {
		if err := s.Remove(ids...); err != nil {
			t.Fatal(err)
		}
	}, 0, 1)
	step("TakeDrops", func() {
		if _, err := s.TakeDrops(); err != nil {
			t.Fatal(err)
		}
	}, 0, 1)
}

type stamp struct {
	name  string
	ino   uint64
	size  int64
	mtime time.Time
}

func stamps(t *testing.T, dir string) []stamp {
	t.Helper()
	var st []stamp
	for _, f := range files(t, dir) {
		fi, err := os.Lstat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		st = append(st, stamp{f, fi.Sys().(*syscall.Stat_t).Ino, fi.Size(), fi.ModTime()})
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	return append(st, stamp{".", fi.Sys().(*syscall.Stat_t).Ino, fi.Size(), fi.ModTime()})
}

// TestIdleWritesNothing: reading operations, empty takes and a second Open
// leave every file and the directory as they were.
func TestIdleWritesNothing(t *testing.T) {
	s, dir := newForTest(t, 2)
	put(t, s, mk(alarm.Info, "A"))
	put(t, s, mk(alarm.Info, "B"))
	id := put(t, s, mk(alarm.Major, "C")) // a drop: the counters file exists
	if err := s.Remove(id); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for _, f := range append(files(t, dir), ".") {
		if err := os.Chtimes(filepath.Join(dir, f), old, old); err != nil {
			t.Fatal(err)
		}
	}
	before, stats := stamps(t, dir), s.Stats()

	for range 3 {
		list(t, s)
		s.Len()
		s.Stats()
		if err := s.Rescan(); err != nil {
			t.Fatal(err)
		}
		if err := s.Remove(id); err != nil { // already gone
			t.Fatal(err)
		}
		if err := s.ForgetDrops(Drops{}); err != nil {
			t.Fatal(err)
		}
	}
	other := openForTest(t, dir, 2)
	list(t, other)
	other.Close()

	if after := stamps(t, dir); !slices.Equal(before, after) {
		t.Errorf("files changed while idle:\n before %v\n after  %v", before, after)
	}
	if got := s.Stats(); got.Written != stats.Written || got.Syncs != stats.Syncs {
		t.Errorf("idle: Written %d -> %d, Syncs %d -> %d", stats.Written, got.Written, stats.Syncs, got.Syncs)
	}
}

func TestRemoveRejectsBadIDs(t *testing.T) {
	s, dir := newForTest(t, 0)
	id := put(t, s, mk(alarm.Info, "A"))
	// An ID in upper-case hex. Not ToUpper(id): one random tag in 43 has
	// only decimal digits, which ToUpper leaves as they are.
	upper := ID(strings.ToUpper(string(id[:len(id)-8]) + "abcdef01"))
	for _, bad := range []ID{"", "../spool", "drops", id + ".alarm", upper} {
		if err := s.Remove(id, bad); err == nil {
			t.Errorf("Remove(%q) = nil, want an error", bad)
		}
	}
	if len(files(t, dir)) != 1 {
		t.Errorf("a refused Remove removed something: %q", files(t, dir))
	}
}

func TestInvalid(t *testing.T) {
	s, _ := newForTest(t, 0)
	a := mk(alarm.Info, "")
	if _, err := s.Put(a); err == nil || !strings.Contains(err.Error(), "code") {
		t.Errorf("Put(no code) = %v, want an error naming the code", err)
	}
	if _, err := Open(t.TempDir(), Options{Max: -1}); err == nil {
		t.Error("Open(Max -1) = nil error")
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(f, Options{}); err == nil || !strings.Contains(err.Error(), f) {
		t.Errorf("Open(a file) = %v, want an error naming it", err)
	}
}

func TestClosed(t *testing.T) {
	s, _ := newForTest(t, 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(mk(alarm.Info, "A")); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
	if _, err := s.List(); !errors.Is(err, ErrClosed) {
		t.Errorf("List after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}

// BenchmarkPut measures an accepted alarm and its delivery: Put, then
// Remove, with the fsyncs they need.
func BenchmarkPut(b *testing.B) {
	s, _ := newForTest(b, 0)
	a := testAlarm()
	n := 0
	for b.Loop() {
		id, err := s.Put(a)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Remove(id); err != nil {
			b.Fatal(err)
		}
		n++
	}
	st := s.Stats()
	b.ReportMetric(float64(st.Written)/float64(n), "flash-bytes/op")
	b.ReportMetric(float64(st.Syncs)/float64(n), "fsyncs/op")
}

// TestFailedPutChangesNothing: when the drop counters cannot be written, the
// Put fails, nothing is evicted and no temporary file stays.
func TestFailedPutChangesNothing(t *testing.T) {
	s, dir := newForTest(t, 1)
	put(t, s, mk(alarm.Info, "A"))
	if err := os.Mkdir(filepath.Join(dir, dropsFile), 0o700); err != nil {
		t.Fatal(err)
	}
	before := files(t, dir)
	_, err := s.Put(mk(alarm.Info, "B"))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, dropsFile)) {
		t.Fatalf("Put = %v, want an error naming %s", err, dropsFile)
	}
	t.Log(err)
	if after := files(t, dir); !slices.Equal(before, after) {
		t.Errorf("a failed Put changed the directory: %q, then %q", before, after)
	}
	if got := codes(list(t, s)); !slices.Equal(got, []string{"A"}) {
		t.Errorf("List = %q, want [A]", got)
	}
	if got := s.Stats().Drops; got != (Drops{}) {
		t.Errorf("Drops = %v, want none", got)
	}
}

// TestGroupCommit holds one Put at its first step until eight more wait,
// then checks that the eight are written as one batch, with the outcome of
// putting them one by one: evictions, refusals and drop counts, and an
// alarm dropped within the batch never written.
func TestGroupCommit(t *testing.T) {
	s, dir := newForTest(t, 3)
	put(t, s, mk(alarm.Critical, "K"))
	// Each Put that joins the waiting ones says how many wait then.
	queued := make(chan int, 16)
	s.testHookQueued = func(n int) { queued <- n }
	// until waits, boundedly (a minute), for the Put that makes n waiting.
	until := func(n int) bool {
		timeout := time.NewTimer(time.Minute)
		defer timeout.Stop()
		select {
		case got := <-queued:
			if got != n {
				t.Errorf("%d Puts waiting, want %d", got, n)
			}
			return true
		case <-timeout.C:
			return false
		}
	}
	release := make(chan struct{})
	held := make(chan struct{})
	var once sync.Once
	s.testHookStep = func(step string) {
		if step == "staged" {
			once.Do(func() {
				close(held)
				<-release
			})
		}
	}
	before := s.Stats()
	first := make(chan error, 1)
	go func() { _, err := s.Put(mk(alarm.Major, "HOLD")); first <- err }()
	select {
	case <-held:
	case err := <-first:
		t.Fatalf("Put(HOLD) = %v and never reached the step \"staged\"", err)
	}
	if n := <-queued; n != 1 {
		t.Fatalf("Put(HOLD) found %d Puts waiting, want only itself", n)
	}

	batch := []alarm.Alarm{
		mk(alarm.Info, "I1"), mk(alarm.Major, "M1"), mk(alarm.Major, "M2"), mk(alarm.Info, "I2"),
		mk(alarm.Critical, "C1"), mk(alarm.Minor, "N1"), mk(alarm.Major, "M3"), mk(alarm.Info, "I3"),
	}
	type result struct {
		id  ID
		err error
	}
	results := make([]chan result, len(batch))
	for i, a := range batch {
		results[i] = make(chan result, 1)
		go func() { id, err := s.Put(a); results[i] <- result{id, err} }()
		if !until(i + 1) {
			close(release)
			t.Fatalf("Put %s never started waiting", a.Code)
		}
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("Put(HOLD) = %v", err)
	}
	refused := map[string]bool{"I2": true, "N1": true, "I3": true}
	for i, a := range batch {
		r := <-results[i]
		switch {
		case refused[a.Code] && !errors.Is(r.err, ErrFull):
			t.Errorf("Put(%s) = %q, %v; want ErrFull", a.Code, r.id, r.err)
		case !refused[a.Code] && (r.err != nil || r.id == ""):
			t.Errorf("Put(%s) = %q, %v; want an ID", a.Code, r.id, r.err)
		}
	}
	after := s.Stats()
	if got := codes(list(t, s)); !slices.Equal(got, []string{"K", "C1", "M3"}) {
		t.Errorf("List = %q, want [K C1 M3]", got)
	}
	want := Drops{}
	want[alarm.Info], want[alarm.Major] = 1, 3
	if after.Drops != want {
		t.Errorf("Drops = %v, want %v (I1, then HOLD, M1 and M2)", after.Drops, want)
	}
	// HOLD alone: its record, its fsync and the directory's. The batch
	// wrote C1 and M3 (I1, M1 and M2 were dropped within it) and the drop
	// counters, with one syncfs for the three files and one directory sync.
	hold := len(mustEncode(t, mk(alarm.Major, "HOLD")))
	recs := len(mustEncode(t, mk(alarm.Critical, "C1"))) + len(mustEncode(t, mk(alarm.Major, "M3")))
	drops := len(encodeDrops(want))
	if got, want := after.Written-before.Written, int64(hold+recs+drops); got != want {
		t.Errorf("wrote %d bytes, want %d (HOLD; then C1, M3 and the drop counters)", got, want)
	}
	if got := after.Syncs - before.Syncs; got != 2+2 {
		t.Errorf("asked for %d syncs, want 2 for HOLD and 2 for the batch", got)
	}
	if got := after.Refused - before.Refused; got != 3 {
		t.Errorf("Refused grew by %d, want 3", got)
	}
	// What is on flash says the same to a new reader.
	again := openForTest(t, dir, 3)
	if got := codes(list(t, again)); !slices.Equal(got, []string{"K", "C1", "M3"}) {
		t.Errorf("reopened: List = %q, want [K C1 M3]", got)
	}
	if got := again.Stats().Drops; got != want {
		t.Errorf("reopened: Drops = %v, want %v", got, want)
	}
}

// BenchmarkPutBurst measures Puts from 24 senders at once into a full
// spool, as in an alarm storm: most evict, and group commit shares the
// syncs.
func BenchmarkPutBurst(b *testing.B) {
	s, _ := newForTest(b, 50)
	sevs := []alarm.Severity{alarm.Major, alarm.Critical}
	for i := range 50 {
		put(b, s, mk(sevs[i%2], "FILL"))
	}
	b.SetParallelism(12) // 24 senders on 2 cores
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := s.Put(mk(sevs[i%2], "BURST")); err != nil && !errors.Is(err, ErrFull) {
				b.Error(err)
			}
		}
	})
	st := s.Stats()
	b.ReportMetric(float64(st.Syncs)/float64(n.Load()), "syncs/op")
	b.ReportMetric(float64(st.Written)/float64(n.Load()), "flash-bytes/op")
}
