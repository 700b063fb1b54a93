package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/config"
	"mailagent/board"
)

func newAdminForTest(t *testing.T, doc string) (*Admin, string) {
	t.Helper()
	dir := t.TempDir()
	if doc != "" {
		if err := os.WriteFile(filepath.Join(dir, config.FileName), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, err := New(Options{Board: board.Profile{Name: "host", Listen: "127.0.0.1:0"}, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return NewAdmin(a), dir
}

func TestAdminUpdateConfig(t *testing.T) {
	const doc = "[mail]\nfrom = \"box@example.test\"\n"
	w, dir := newAdminForTest(t, doc)
	path := filepath.Join(dir, config.FileName)

	refused := errors.New("refused")
	err := w.UpdateConfig(func(c *config.Config) error {
		c.Mail.From = "other@example.test"
		return refused
	})
	if b, _ := os.ReadFile(path); !errors.Is(err, refused) || string(b) != doc {
		t.Fatalf("a refused change: err %v, file now %q; want the error and the file as it was", err, b)
	}

	if err := w.UpdateConfig(func(c *config.Config) error {
		c.Mail.To = []string{"ops@example.test"}
		c.SMTP.Password = config.NewSecret("s3cret-value")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c, err := w.Config()
	if err != nil || c.Mail.From != "box@example.test" || len(c.Mail.To) != 1 || c.SMTP.Password.Reveal() != "s3cret-value" {
		t.Fatalf("after the change: %+v, %v", c, err)
	}
	if got := w.a.Config().Mail.To; len(got) != 1 {
		t.Errorf("the agent did not take up the change: mail.to %v", got)
	}

	// no change, no write: the file keeps an mtime set an hour back, which
	// any write would move (whatever the file system's timestamp grain)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	if err := w.UpdateConfig(func(c *config.Config) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || !st.ModTime().Equal(old) {
		t.Errorf("an empty change wrote the file")
	}

	if err := w.SetPasswordHash("$2a$11$abcdefghijklmnopqrstuv"); err != nil || w.PasswordHash() != "$2a$11$abcdefghijklmnopqrstuv" {
		t.Errorf("SetPasswordHash: %v, hash now %q", err, w.PasswordHash())
	}
}

func TestStatusOnlyReads(t *testing.T) {
	w, dir := newAdminForTest(t, "")
	st := w.Status(context.Background())
	if st.Running || len(st.Problems) == 0 || st.Problems[0].Key != "" {
		t.Errorf("status of a new box: %+v; want not running, and first the missing file", st)
	}
	keys := map[string]bool{}
	for _, p := range st.Problems {
		keys[p.Key] = true
	}
	if !keys["mail.from"] || !keys["mail.to"] {
		t.Errorf("problems %+v do not name mail.from and mail.to", st.Problems)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("Status wrote into the data directory: %v", entries)
	}
}

func TestRecentAlarms(t *testing.T) {
	var r recentAlarms
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range RecentAlarmsKept + 5 {
		r.add(at.Add(time.Duration(i)*time.Second), alarm.Alarm{Code: "A", Text: "n"}, "queued")
	}
	l := r.list()
	if len(l) != RecentAlarmsKept {
		t.Fatalf("%d alarms kept; want %d", len(l), RecentAlarmsKept)
	}
	if want := at.Add(time.Duration(RecentAlarmsKept+4) * time.Second); !l[0].At.Equal(want) || !l[len(l)-1].At.Equal(at.Add(5*time.Second)) {
		t.Errorf("order: first %v, last %v; want newest first", l[0].At, l[len(l)-1].At)
	}
}

func TestWebUIFinishUnknownState(t *testing.T) {
	w, dir := newAdminForTest(t, "")
	_, err := w.FinishAuthorize(context.Background(), "never-started", "?code=c&state=never-started")
	var ae *AuthorizeError
	if !errors.As(err, &ae) || ae.Hint == "" {
		t.Fatalf("FinishAuthorize with an unknown state = %v; want an *AuthorizeError with a hint", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tokens.toml")); err == nil {
		t.Error("a refused grant wrote tokens.toml")
	}
}
