package outbox

import (
	"strings"
	"testing"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/internal/spool"
)

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func at(min int, sev alarm.Severity, source, code, text string) alarm.Alarm {
	return alarm.Alarm{Time: t0.Add(time.Duration(min) * time.Minute), Severity: sev, Source: source, Code: code, Text: text}
}

func TestDigest(t *testing.T) {
	var storm []alarm.Alarm
	for i := range 57 {
		storm = append(storm, at(i, alarm.Minor, "eth1", "LINK-FLAP", "link flapped"))
	}
	tests := []struct {
		name    string
		d       Digest
		subject string
		body    []string // substrings, in order
		notBody []string
	}{
		{
			name:    "one alarm",
			d:       Digest{Device: "gw-1", Alarms: []alarm.Alarm{at(0, alarm.Major, "eth1", "LINK-DOWN", "link lost\nsecond line")}},
			subject: "gw-1: MAJOR LINK-DOWN - link lost",
			body:    []string{"MAJOR LINK-DOWN from eth1\n", "  at 2026-11-24 10:00:00 UTC\n", "  link lost\n  second line\n"},
		},
		{
			name:    "repeats fold",
			d:       Digest{Device: "gw-1", Alarms: storm},
			subject: "gw-1: 57 alarms, worst MINOR (LINK-FLAP)",
			body:    []string{"MINOR LINK-FLAP from eth1\n", "  occurred 57 times, first 2026-11-24 10:00:00 UTC, last 2026-11-24 10:56:00 UTC\n"},
		},
		{
			name: "clear shown with its alarm",
			d: Digest{Device: "gw-1", Alarms: []alarm.Alarm{
				at(0, alarm.Major, "eth1", "LINK-DOWN", "link lost"),
				at(3, alarm.Cleared, "eth1", "LINK-DOWN", "link up again"),
			}},
			subject: "gw-1: 2 alarms, worst MAJOR (LINK-DOWN)",
			body:    []string{"MAJOR LINK-DOWN from eth1\n", "  link lost\n", "  cleared at 2026-11-24 10:03:00 UTC: link up again\n"},
		},
		{
			name: "only a clear",
			d:    Digest{Device: "gw-1", Alarms: []alarm.Alarm{at(0, alarm.Cleared, "", "FAN", "")}},
			body: []string{"CLEARED FAN at 2026-11-24 10:00:00 UTC\n"},
		},
		{
			name: "worst first, drops reported",
			d: Digest{Device: "gw-1", Dropped: spool.Drops{alarm.Info: 40, alarm.Major: 3}, Alarms: []alarm.Alarm{
				at(0, alarm.Warning, "psu", "TEMP", "warm"),
				at(1, alarm.Critical, "psu", "PSU-FAIL", "power supply 2 failed"),
			}},
			subject: "gw-1: 2 alarms, worst CRITICAL (TEMP, PSU-FAIL)",
			body:    []string{"43 alarms were dropped because the queue was full (3 major, 40 info).", "CRITICAL PSU-FAIL", "WARNING TEMP"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.subject != "" {
				if got := tt.d.Subject(); got != tt.subject {
					t.Errorf("Subject() = %q, want %q", got, tt.subject)
				}
			}
			body := tt.d.Body()
			rest := body
			for _, want := range tt.body {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("Body() lacks %q (in order):\n%s", want, body)
				}
				rest = rest[i+len(want):]
			}
		})
	}
}
