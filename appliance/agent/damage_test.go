package agent

// A spool damaged on flash (a record torn at any length, or any byte of a
// record flipped): the whole agent starts on it, logs the damage by file
// name, sets the damaged record aside and mails the intact ones.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/config"
	"mailagent/appliance/internal/spool"
	"mailagent/appliance/smtptest"
	"mailagent/board"
)

// TestDamagedSpool runs the agent once per damaged spool: three records of
// different severities (one with non-ASCII details), and one of them cut at
// every length from 0 to one byte short, with one byte flipped (XOR 0xff),
// or one byte too long. Flips cover every offset of every record, header
// and payload, not a sample: a full agent start with two mails over
// STARTTLS costs a few milliseconds (975 cases in about 15 s with -race).
// Each time the agent starts, names the damaged file in its log, sets it
// aside as .bad and mails the two intact alarms, oldest first.
func TestDamagedSpool(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{Users: map[string]string{"alarm@example.test": "pw"}})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)
	alarms := []alarm.Alarm{
		{Time: at, Severity: alarm.Critical, Code: "PSU-FAIL", Source: "psu2", Text: "power supply 2 failed"},
		{Time: at.Add(time.Second), Severity: alarm.Major, Code: "LINK-DOWN", Source: "eth1", Text: "Verbindung verloren",
			Details: []alarm.Detail{{Key: "Schnittstelle", Value: "Größe ä€ 日本"}, {Key: "port", Value: "3"}}},
		{Time: at.Add(2 * time.Second), Severity: alarm.Minor, Code: "FAN-SLOW", Source: "fan1", Text: "fan below 2000 rpm"},
	}
	names, records := spoolRecords(t, alarms)

	root := t.TempDir()
	cases := 0
	check := func(how string, victim int, damaged []byte) {
		t.Helper()
		cases++
		device := fmt.Sprintf("case-%d", cases)
		dir := filepath.Join(root, device)
		spoolDir := filepath.Join(dir, "spool")
		if err := os.MkdirAll(spoolDir, 0o700); err != nil {
			t.Fatal(err)
		}
		for i, name := range names {
			data := records[i]
			if i == victim {
				data = damaged
			}
			if err := os.WriteFile(filepath.Join(spoolDir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		doc := fmt.Sprintf(`[device]
name = %q
[mail]
from = "alarm@example.test"
to = ["ops@example.test"]
[alarms]
digest_window = "0s"
[smtp]
host = %q
port = %d
ca_file = %q
user = "alarm@example.test"
password = "pw"
`, device, srv.Host(), srv.Port(), ca)
		if err := os.WriteFile(filepath.Join(dir, config.FileName), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		var logged lockedBuffer
		a, err := New(Options{Board: board.Profile{Name: "host"}, DataDir: dir, Log: slog.New(slog.NewTextHandler(&logged, nil))})
		if err != nil {
			t.Fatalf("%s: New = %v", how, err)
		}
		seen := len(srv.Messages())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ready := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx, func() { close(ready) }) }()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("%s: Run = %v", how, err)
		}

		// The intact alarms arrive, and the spool empties.
		var want []string
		for i, al := range alarms {
			if i != victim {
				want = append(want, al.Code)
			}
		}
		var got []string
		var live *LiveStatus
		for range 1000 {
			got = mailedCodes(t, srv.Messages()[seen:], device)
			if len(got) >= len(want) {
				if live, err = a.Live(ctx); err != nil {
					t.Fatalf("%s: Live = %v", how, err)
				}
				if live.Spooled == 0 {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: mailed %q, want %q\nlog:\n%s", how, got, want, logged.String())
		}
		if live.Spooled != 0 || live.Failing != "" {
			t.Fatalf("%s: Live = %+v, want an empty spool and no failure", how, live)
		}

		// The damage is reported by file name, and the file set aside.
		if l := logged.String(); !strings.Contains(l, "damaged spool records set aside") || !strings.Contains(l, names[victim]+".bad") {
			t.Fatalf("%s: the log does not report %s set aside:\n%s", how, names[victim], l)
		}
		if _, err := os.Stat(filepath.Join(spoolDir, names[victim]+".bad")); err != nil {
			t.Fatalf("%s: damaged record not set aside: %v", how, err)
		}
		// And status (which reads the spool anew) still names it.
		q, err := a.Queue()
		if err != nil {
			t.Fatalf("%s: Queue = %v", how, err)
		}
		if q.SetAside != 1 || q.NewestBad != names[victim]+".bad" {
			t.Fatalf("%s: Queue reports %d set aside, newest %q; want 1, %s.bad", how, q.SetAside, q.NewestBad, names[victim])
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("%s: Run = %v", how, err)
		}
	}
	for victim, good := range records {
		for off := range len(good) {
			check(fmt.Sprintf("%s cut at %d", names[victim], off), victim, good[:off])
			flipped := bytes.Clone(good)
			flipped[off] ^= 0xff
			check(fmt.Sprintf("%s byte %d flipped", names[victim], off), victim, flipped)
		}
		check(names[victim]+" one byte too long", victim, append(bytes.Clone(good), '\n'))
	}
	t.Logf("%d damaged spools (records of %d, %d and %d bytes): agent started, damage reported, intact alarms mailed",
		cases, len(records[0]), len(records[1]), len(records[2]))
}

// spoolRecords puts alarms into a spool and returns its record files, in
// the order of alarms, by name and content.
func spoolRecords(t *testing.T, alarms []alarm.Alarm) (names []string, records [][]byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "spool")
	sp, err := spool.Open(dir, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, al := range alarms {
		id, err := sp.Put(al)
		if err != nil {
			t.Fatal(err)
		}
		name := string(id) + ".alarm"
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("record of %s: %v", al.Code, err)
		}
		names, records = append(names, name), append(records, data)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != len(alarms) {
		t.Fatalf("spool holds %d files, want %d records", len(entries), len(alarms))
	}
	return names, records
}

// mailedCodes lists the alarm codes in msgs from device, in the order
// received.
func mailedCodes(t *testing.T, msgs []smtptest.Message, device string) []string {
	t.Helper()
	var codes []string
	for _, m := range msgs {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if err != nil {
			t.Fatal(err)
		}
		rest, ok := strings.CutPrefix(subject, device+": ")
		if !ok {
			continue
		}
		// "SEVERITY CODE - text"
		if f := strings.Fields(rest); len(f) >= 2 {
			codes = append(codes, f[1])
		}
	}
	return codes
}

// lockedBuffer is a log destination the test reads while the agent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
