package lograte

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	l := &Limiter{Period: time.Minute, Now: func() time.Time { return now }}
	for i := range 1000 {
		l.Log(log, slog.LevelWarn, "alarm refused", "n", i)
		now = now.Add(100 * time.Millisecond) // 100 s in all
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{
		`level=WARN msg="alarm refused" n=0`,
		`level=WARN msg="alarm refused" n=600 held_back=599`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", buf.String(), strings.Join(want, "\n"))
	}
	// After a quiet period the next line passes at once, with what was
	// held back since the last one.
	now = now.Add(time.Hour)
	if ok, held := l.Allow(); !ok || held != 399 {
		t.Errorf("Allow after an hour = %v, %d; want true, 399", ok, held)
	}
	if ok, _ := l.Allow(); ok {
		t.Error("Allow right after a line let another through")
	}
}

func TestZeroLimiter(t *testing.T) {
	var l Limiter
	if ok, held := l.Allow(); !ok || held != 0 {
		t.Errorf("first Allow = %v, %d; want true, 0", ok, held)
	}
	if ok, _ := l.Allow(); ok {
		t.Error("second Allow within DefaultPeriod let a line through")
	}
}
