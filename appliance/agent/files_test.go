package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/config"
	"mailagent/appliance/smtptest"
	"mailagent/board"
)

// TestRunsWithoutItsConfiguration: mailagent.toml damaged and no good copy
// to use. The agent starts and runs, names the file, takes alarms (on
// flash, as a major must be), and refuses every mail with the damage and
// what to do, never mailing on the defaults. Before, New failed, and with
// it status, alarm and run.
func TestRunsWithoutItsConfiguration(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, config.FileName)
	if err := os.WriteFile(path, []byte("[smtp]\nhost = \"smtp.exa\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Board: board.Profile{Name: "host"}, DataDir: dir})
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	if w := strings.Join(a.Warnings(), "\n"); !strings.Contains(w, path+" is damaged: line 2") || !strings.Contains(w, "sends no mail") {
		t.Errorf("Warnings = %q, want the file named and no mail", w)
	}
	if err := a.Problems(); !errors.Is(err, ErrNotConfigured) || !strings.Contains(err.Error(), "cannot be read") {
		t.Errorf("Problems = %v, want the configuration unreadable", err)
	}
	_, err = a.SendTest(context.Background(), nil)
	if !errors.Is(err, ErrNotConfigured) || !strings.Contains(err.Error(), path) || !strings.Contains(Hint(err), "config check") {
		t.Errorf("SendTest = %v (hint %q), want it refused with the damage and what to do", err, Hint(err))
	}
	ctx, stop := runForTest(t, a)
	al := alarm.Alarm{Time: time.Now(), Severity: alarm.Major, Code: "LINK-DOWN", Text: "eth1 down"}
	if spooled, err := a.Raise(ctx, al); err != nil || spooled {
		t.Fatalf("Raise = %v, %v; want the running agent to take it", spooled, err)
	}
	live, err := a.Live(ctx)
	if err != nil || live.Spooled != 1 {
		t.Fatalf("Live = %+v, %v; want the alarm kept on flash", live, err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	// Fixed by hand: the next Reload uses it.
	if err := os.WriteFile(path, []byte("[smtp]\nhost = \"smtp.example.test\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil || len(a.Warnings()) != 0 || a.Config().SMTP.Host != "smtp.example.test" {
		t.Errorf("after the fix: Reload = %v, warnings %q, host %q", err, a.Warnings(), a.Config().SMTP.Host)
	}
	// Damaged again while running: the configuration read before is kept,
	// and the damage named.
	if err := os.WriteFile(path, []byte("[smtp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err == nil || a.Config().SMTP.Host != "smtp.example.test" || !strings.Contains(strings.Join(a.Warnings(), "\n"), "read before") {
		t.Errorf("damaged again: Reload = %v, host %q, warnings %q", err, a.Config().SMTP.Host, a.Warnings())
	}
}

// TestProblemElsewhereDoesNotSilenceMail: a bad value of a key mail is not
// sent with (an alarm password too short, written before the rule, and a
// trust_proxy that is no address) is named by status, and the mail still
// goes out. Before, any problem anywhere stopped every mail.
func TestProblemElsewhereDoesNotSilenceMail(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{Users: map[string]string{"alarm@example.test": "pw-secret"}})
	a := newForTest(t, srv, "auth = \"password\"\nuser = \"alarm@example.test\"\npassword = \"pw-secret\"\n[http]\nalarm_user = \"poster\"\nalarm_password = \"a\"\ntrust_proxy = [\"not an address\"]", nil)
	if _, err := a.SendTest(context.Background(), nil); err != nil {
		t.Fatalf("SendTest = %v, want the mail sent", err)
	}
	st := a.Status(context.Background())
	var keys []string
	for _, p := range st.Problems {
		keys = append(keys, p.Key)
	}
	if got := strings.Join(keys, " "); got != "http.trust_proxy http.alarm_password" {
		t.Errorf("status problems %q, want the two http keys", got)
	}
}
