package agent

// A spool damaged on flash (a record torn, emptied, extended or with a byte
// flipped): the whole agent starts on it, logs the damage by file name,
// sets the damaged record aside and mails the intact ones.

import (
	"bytes"
	"fmt"
	"log/slog"
	"mime"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/config"
	"mailagent/appliance/internal/spool"
	"mailagent/appliance/smtptest"
	"mailagent/board"
)

// TestDamagedSpool runs the agent on spools of three records of different
// severities (one with non-ASCII details) of which one is damaged: cut
// inside its payload, a byte of its details flipped (XOR 0xff), emptied, or
// one byte too long. Each time the agent starts, names the damaged file in
// its log, sets it aside as .bad, mails the two intact alarms, oldest
// first, and its queue status names the file set aside. Every cut and
// flip, at every offset of these same records, is appliance/internal/spool's
// TestDamagedRecords: there the spool, here the agent around it.
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
	details := bytes.Index(records[1], []byte("Größe"))
	if details < 0 {
		t.Fatalf("record of %s does not hold its details as UTF-8: %q", alarms[1].Code, records[1])
	}
	flipped := bytes.Clone(records[1])
	flipped[details+2] ^= 0xff // the first byte of "ö"

	tests := []struct {
		name    string
		victim  int
		damaged []byte
	}{
		{"cut inside the payload", 0, records[0][:len(records[0])/2]},
		{"a byte of the details flipped", 1, flipped},
		{"empty", 2, []byte{}},
		{"one byte too long", 2, append(bytes.Clone(records[2]), '\n')},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			device := fmt.Sprintf("case-%d", i+1)
			dir := filepath.Join(t.TempDir(), device)
			spoolDir := filepath.Join(dir, "spool")
			if err := os.MkdirAll(spoolDir, 0o700); err != nil {
				t.Fatal(err)
			}
			for i, name := range names {
				data := records[i]
				if i == tt.victim {
					data = tt.damaged
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
			logged := newLogWatch()
			a, err := New(Options{Board: board.Profile{Name: "host"}, DataDir: dir, Log: slog.New(slog.NewTextHandler(logged, nil))})
			if err != nil {
				t.Fatalf("New = %v", err)
			}
			seen := len(srv.Messages())
			ctx, stop := runForTest(t, a)

			// The intact alarms arrive, and the spool empties: the agent
			// logs each mail once it has removed its alarm from the spool.
			var want []string
			for i, al := range alarms {
				if i != tt.victim {
					want = append(want, al.Code)
				}
			}
			logged.waitFor(t, "alarm mail delivered", len(want))
			if got := mailedCodes(t, srv.Messages()[seen:], device); !slices.Equal(got, want) {
				t.Fatalf("mailed %q, want %q\nlog:\n%s", got, want, logged.String())
			}
			live, err := a.Live(ctx)
			if err != nil {
				t.Fatalf("Live = %v", err)
			}
			if live.Spooled != 0 || live.Failing != "" {
				t.Fatalf("Live = %+v, want an empty spool and no failure", live)
			}

			// The damage is reported by file name, and the file set aside.
			if l := logged.String(); !strings.Contains(l, "damaged spool records set aside") || !strings.Contains(l, names[tt.victim]+".bad") {
				t.Fatalf("the log does not report %s set aside:\n%s", names[tt.victim], l)
			}
			if _, err := os.Stat(filepath.Join(spoolDir, names[tt.victim]+".bad")); err != nil {
				t.Fatalf("damaged record not set aside: %v", err)
			}
			// And status (which reads the spool anew) still names it.
			q, err := a.Queue()
			if err != nil {
				t.Fatalf("Queue = %v", err)
			}
			if q.SetAside != 1 || q.NewestBad != names[tt.victim]+".bad" {
				t.Fatalf("Queue reports %d set aside, newest %q; want 1, %s.bad", q.SetAside, q.NewestBad, names[tt.victim])
			}
			if err := stop(); err != nil {
				t.Fatalf("Run = %v", err)
			}
		})
	}
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
