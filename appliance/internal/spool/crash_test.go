package spool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailagent/appliance/alarm"
)

// writeFiles empties dir and fills it with files.
func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for f, b := range files {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func readFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	m := make(map[string][]byte)
	for _, f := range files(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		m[f] = b
	}
	return m
}

// TestDamagedRecords cuts each record at every byte offset (0 included:
// an empty file), flips every byte of it (XOR 0xff, header and payload, not
// a sample) and adds a byte, and checks that Open never fails, sets exactly
// that record aside as .bad, counts and names it in Stats (LastDamage is
// what the agent logs, SetAside and NewestBad what status shows) and keeps
// every intact record, listed oldest first under its ID and delivered
// (removed) as before. appliance/agent's TestDamagedSpool runs a whole
// agent on a few of these.
func TestDamagedRecords(t *testing.T) {
	second := mk(alarm.Critical, "SECOND")
	second.Details = []alarm.Detail{{Key: "k", Value: "v\x00\"é"}}
	at := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
	tests := []struct {
		name   string
		alarms []alarm.Alarm
	}{
		{"mixed", []alarm.Alarm{mk(alarm.Major, "FIRST"), second, mk(alarm.Info, "THIRD")}},
		// The alarms of appliance/agent's TestDamagedSpool.
		{"agent", []alarm.Alarm{
			{Time: at, Severity: alarm.Critical, Code: "PSU-FAIL", Source: "psu2", Text: "power supply 2 failed"},
			{Time: at.Add(time.Second), Severity: alarm.Major, Code: "LINK-DOWN", Source: "eth1", Text: "Verbindung verloren",
				Details: []alarm.Detail{{Key: "Schnittstelle", Value: "Größe ä€ 日本"}, {Key: "port", Value: "3"}}},
			{Time: at.Add(2 * time.Second), Severity: alarm.Minor, Code: "FAN-SLOW", Source: "fan1", Text: "fan below 2000 rpm"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			damagedRecords(t, tt.alarms)
		})
	}
}

func damagedRecords(t *testing.T, alarms []alarm.Alarm) {
	src, srcDir := newForTest(t, 0)
	var ids []ID
	for _, a := range alarms {
		ids = append(ids, put(t, src, a))
	}
	src.Close()
	orig := readFiles(t, srcDir)
	var records []string
	for f := range orig {
		records = append(records, f)
	}
	slices.Sort(records)
	if len(records) != len(ids) {
		t.Fatalf("spool holds %q, want %d records", records, len(ids))
	}

	dir := filepath.Join(t.TempDir(), "spool")
	cases := 0
	check := func(how string, victim int, m map[string][]byte) {
		t.Helper()
		cases++
		writeFiles(t, dir, m)
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("%s: Open = %v", how, err)
		}
		defer s.Close()
		bad := records[victim] + badExt
		l, err := s.List()
		if err != nil {
			t.Fatalf("%s: List = %v", how, err)
		}
		var wantIDs, gotIDs []ID
		for i, id := range ids {
			if i != victim {
				wantIDs = append(wantIDs, id)
			}
		}
		for _, e := range l {
			gotIDs = append(gotIDs, e.ID)
		}
		if !slices.Equal(gotIDs, wantIDs) {
			t.Fatalf("%s: List = %q (%q), want %q", how, gotIDs, codes(l), wantIDs)
		}
		for _, e := range l {
			a := alarms[slices.Index(ids, e.ID)]
			if g := e.Alarm; !g.Time.Equal(a.Time) || g.Severity != a.Severity || g.Code != a.Code || g.Source != a.Source ||
				g.Text != a.Text || !slices.Equal(g.Details, a.Details) {
				t.Fatalf("%s: List has %+v, want %+v", how, g, a)
			}
		}
		st := s.Stats()
		if st.Corrupt != 1 || st.Len != len(ids)-1 || !strings.Contains(st.LastDamage, records[victim]) ||
			!strings.Contains(st.LastDamage, "set aside as "+bad) {
			t.Fatalf("%s: Stats = %+v, want Corrupt 1, Len %d and damage in %s set aside as %s", how, st, len(ids)-1, records[victim], bad)
		}
		if _, err := os.Stat(filepath.Join(dir, bad)); err != nil {
			t.Fatalf("%s: not set aside: %v", how, err)
		}
		if st.SetAside != 1 || st.NewestBad != bad {
			t.Fatalf("%s: SetAside %d, NewestBad %q; want 1, %s", how, st.SetAside, st.NewestBad, bad)
		}
		// Another reader sees what was set aside, though it found nothing.
		again, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("%s: Open again = %v", how, err)
		}
		defer again.Close()
		if st := again.Stats(); st.Corrupt != 0 || st.SetAside != 1 || st.NewestBad != bad {
			t.Fatalf("%s: reopened: %+v, want nothing found and one file set aside", how, st)
		}
		// The intact records are delivered; the damaged one stays aside.
		if err := s.Remove(gotIDs...); err != nil {
			t.Fatalf("%s: Remove = %v", how, err)
		}
		if err := again.Rescan(); err != nil {
			t.Fatalf("%s: Rescan = %v", how, err)
		}
		if st := again.Stats(); st.Len != 0 || st.SetAside != 1 || st.NewestBad != bad {
			t.Fatalf("%s: after delivery: %+v, want an empty spool and %s set aside", how, st, bad)
		}
		if got := files(t, dir); !slices.Equal(got, []string{bad}) {
			t.Fatalf("%s: after delivery the directory holds %q, want only %s", how, got, bad)
		}
	}
	size := 0
	for victim, f := range records {
		good := orig[f]
		size += len(good)
		for off := range len(good) {
			m := maps(orig)
			m[f] = good[:off]
			check(fmt.Sprintf("%s cut at %d", f, off), victim, m)

			m = maps(orig)
			m[f] = patch(good, func(b []byte) []byte { b[off] ^= 0xff; return b })
			check(fmt.Sprintf("%s byte %d flipped", f, off), victim, m)
		}
		m := maps(orig)
		m[f] = append(bytes.Clone(good), '\n')
		check(f+" extended", victim, m)
	}
	t.Logf("%d damaged spools (%d records, %d bytes) recovered", cases, len(records), size)
}

func maps(m map[string][]byte) map[string][]byte {
	c := make(map[string][]byte, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// TestLeftovers: temporary files torn at any length are deleted and not
// reported, a damaged counters file is set aside and reported, damage is
// counted once, and only the newest damaged files are kept.
func TestLeftovers(t *testing.T) {
	src, srcDir := newForTest(t, 1)
	put(t, src, mk(alarm.Info, "A"))
	put(t, src, mk(alarm.Info, "B")) // drops A
	src.Close()
	orig := readFiles(t, srcDir)
	var rec string
	for f := range orig {
		if f != dropsFile {
			rec = f
		}
	}
	dir := filepath.Join(t.TempDir(), "spool")

	t.Run("torn temporary files", func(t *testing.T) {
		for off := range len(orig[rec]) + 1 {
			m := maps(orig)
			m["."+rec+tmpExt] = orig[rec][:off]
			m["."+dropsFile+tmpExt] = orig[dropsFile][:off%len(orig[dropsFile])]
			writeFiles(t, dir, m)
			s := openForTest(t, dir, 1)
			if got := codes(list(t, s)); !slices.Equal(got, []string{"B"}) {
				t.Fatalf("cut at %d: List = %q, want [B]", off, got)
			}
			if st := s.Stats(); st.Corrupt != 0 || st.Drops != (Drops{alarm.Info: 1}) {
				t.Fatalf("cut at %d: Stats = %+v, want no damage and one info drop", off, st)
			}
			if got := files(t, dir); !slices.Equal(got, []string{rec, dropsFile}) {
				t.Fatalf("cut at %d: files %q left", off, got)
			}
			s.Close()
		}
	})

	t.Run("damaged counters", func(t *testing.T) {
		m := maps(orig)
		m[dropsFile] = orig[dropsFile][:len(orig[dropsFile])-1]
		writeFiles(t, dir, m)
		s := openForTest(t, dir, 1)
		st := s.Stats()
		if st.Corrupt != 1 || st.Drops != (Drops{}) || !strings.Contains(st.LastDamage, dropsFile) {
			t.Fatalf("Stats = %+v, want the counters reported damaged", st)
		}
		if got := codes(list(t, s)); !slices.Equal(got, []string{"B"}) {
			t.Fatalf("List = %q, want [B]", got)
		}
		// Counting starts again.
		put(t, s, mk(alarm.Warning, "C"))
		if got := s.Stats().Drops; got != (Drops{alarm.Info: 1}) {
			t.Fatalf("Drops = %v, want one info", got)
		}
		s.Close()
		s = openForTest(t, dir, 1)
		if st := s.Stats(); st.Corrupt != 0 {
			t.Errorf("damage counted again after reopen: %+v", st)
		}
	})

	t.Run("kept aside", func(t *testing.T) {
		m := maps(orig)
		for i := range keepBad + 5 {
			m[fmt.Sprintf("%016x-1-00000000.alarm", i+1)] = []byte("junk")
		}
		writeFiles(t, dir, m)
		s := openForTest(t, dir, 0)
		if st := s.Stats(); st.Corrupt != keepBad+5 || st.Len != 1 {
			t.Fatalf("Stats = %+v, want %d damaged and 1 entry", st, keepBad+5)
		}
		s.Rescan() // prunes what the first scan set aside
		var bad []string
		for _, f := range files(t, dir) {
			if strings.HasSuffix(f, badExt) {
				bad = append(bad, f)
			}
		}
		if len(bad) != keepBad || bad[0] != fmt.Sprintf("%016x-1-00000000.alarm.bad", 6) {
			t.Fatalf("kept %q, want the newest %d", bad, keepBad)
		}
	})
}

// snapshotter copies the spool directory at every step an operation takes,
// as a power cut at that moment would leave it (all earlier writes on
// flash).
type snapshotter struct {
	t     *testing.T
	dir   string
	steps []string
	snaps []map[string][]byte
}

func (sn *snapshotter) hook(step string) {
	sn.steps = append(sn.steps, step)
	sn.snaps = append(sn.snaps, readFiles(sn.t, sn.dir))
}

// TestPowerCutSteps cuts the power after each step of Put (with an
// eviction), Remove and TakeDrops: Open always recovers without damage, and
// no accepted alarm is ever both gone and uncounted.
func TestPowerCutSteps(t *testing.T) {
	s, dir := newForTest(t, 2)
	sn := &snapshotter{t: t, dir: dir}
	idA := put(t, s, mk(alarm.Warning, "A"))
	put(t, s, mk(alarm.Warning, "B"))

	s.testHookStep = sn.hook
	put(t, s, mk(alarm.Warning, "C")) // evicts A
	if err := s.Remove(idA); err != nil {
		t.Fatal(err)
	}
	l := list(t, s)
	if err := s.Remove(l[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeDrops(); err != nil {
		t.Fatal(err)
	}
	s.testHookStep = nil
	if len(sn.snaps) < 6 {
		t.Fatalf("only %d steps: %q", len(sn.snaps), sn.steps)
	}

	acked := []string{"A", "B"}
	cut := filepath.Join(t.TempDir(), "cut")
	for i, snap := range sn.snaps {
		step := fmt.Sprintf("step %d (%s)", i, sn.steps[i])
		writeFiles(t, cut, snap)
		c, err := Open(cut, Options{Max: 2})
		if err != nil {
			t.Fatalf("%s: Open = %v", step, err)
		}
		got := codes(list(t, c))
		st := c.Stats()
		if st.Corrupt != 0 {
			t.Errorf("%s: damage %q", step, st.LastDamage)
		}
		missing := 0
		for _, a := range acked {
			if !slices.Contains(got, a) {
				missing++
			}
		}
		// Until B is delivered, each of A and B is queued or counted.
		if i < slices.Index(sn.steps, "removed") && missing > st.Drops.Total() {
			t.Errorf("%s: %q left, %d drops: an accepted alarm was lost uncounted", step, got, st.Drops.Total())
		}
		if len(got) > 3 {
			t.Errorf("%s: %d entries", step, len(got))
		}
		if slices.ContainsFunc(files(t, cut), func(f string) bool { return strings.HasSuffix(f, tmpExt) }) {
			t.Errorf("%s: temporary files left: %q", step, files(t, cut))
		}
		// The recovered spool works and returns to its bound.
		put(t, c, mk(alarm.Critical, "D"))
		if c.Len() > 2 {
			t.Errorf("%s: Len %d after a Put, want at most 2", step, c.Len())
		}
		c.Close()
	}
}
