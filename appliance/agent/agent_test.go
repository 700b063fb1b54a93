package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/config"
	"mailagent/appliance/internal/outbox"
	"mailagent/appliance/oauth"
	"mailagent/appliance/smtptest"
	"mailagent/board"
)

const longToken = "ya29.secret-token-"

// newForTest writes mailagent.toml (and tokens.toml, if tokens is not nil)
// for srv into a fresh data directory and loads an agent from it.
func newForTest(t *testing.T, srv *smtptest.Server, extra string, tokens *oauth.Tokens) *Agent {
	t.Helper()
	a, _ := newWatchedForTest(t, srv, extra, tokens)
	return a
}

// newWatchedForTest is newForTest whose log, besides the test's output,
// goes to a logWatch the test can wait on.
func newWatchedForTest(t *testing.T, srv *smtptest.Server, extra string, tokens *oauth.Tokens) (*Agent, *logWatch) {
	t.Helper()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, srv.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`
[device]
name = "gw-lab-1"
[mail]
from = "alarm@example.test"
from_name = "Störmelder Lab"
to = ["ops@example.test"]
subject_prefix = "[alarm]"
[alarms]
digest_window = "0s"
[smtp]
host = %q
port = %d
ca_file = %q
%s
`, srv.Host(), srv.Port(), ca, extra)
	if err := os.WriteFile(filepath.Join(dir, config.FileName), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if tokens != nil {
		if err := oauth.SaveTokens(filepath.Join(dir, oauth.TokensFileName), tokens); err != nil {
			t.Fatal(err)
		}
	}
	logged := newLogWatch()
	a, err := New(Options{Board: board.Profile{Name: "host"}, DataDir: dir, Log: slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logged), nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Problems(); err != nil {
		t.Fatalf("config has problems: %v", err)
	}
	return a, logged
}

// runForTest runs a until stop, which cancels it and returns what Run
// returned (also at the end of the test, if not called). It returns once a
// is ready and fails the test if Run ends before.
func runForTest(t *testing.T, a *Agent) (ctx context.Context, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Run = %v", err)
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return ctx, stop
}

func token(testing.TB) string {
	return longToken + strings.Repeat("x", 2000)
}

func TestSendTestPassword(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{Users: map[string]string{"alarm@example.test": "pw-secret"}})
	a := newForTest(t, srv, "auth = \"password\"\nuser = \"alarm@example.test\"\npassword = \"pw-secret\"", nil)
	var trace bytes.Buffer
	reply, err := a.SendTest(context.Background(), func(step, detail string) { fmt.Fprintf(&trace, "%s: %s\n", step, detail) })
	if err != nil {
		t.Fatalf("SendTest = %v\ntrace:\n%s", err, trace.String())
	}
	for _, step := range []string{"connect:", "tls:", "mechanisms:", "auth: PLAIN", "sent:"} {
		if !strings.Contains(trace.String(), step) {
			t.Errorf("trace lacks %q:\n%s", step, trace.String())
		}
	}
	if strings.Contains(trace.String(), "pw-secret") {
		t.Error("trace shows the password")
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d mails, want 1", len(msgs))
	}
	if msgs[0].QueueID == "" || !strings.Contains(reply, msgs[0].QueueID) {
		t.Errorf("reply %q, server's queue id %q", reply, msgs[0].QueueID)
	}
	m, err := mail.ReadMessage(bytes.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Header.Get("Subject"); got != "[alarm] gw-lab-1: test mail" {
		t.Errorf("Subject = %q", got)
	}
	from, err := m.Header.AddressList("From")
	if err != nil || from[0].Name != "Störmelder Lab" {
		t.Errorf("From = %v, %v", from, err)
	}
	if m.Header.Get("Auto-Submitted") != "auto-generated" || m.Header.Get("Message-ID") == "" {
		t.Errorf("headers lack Auto-Submitted or Message-ID: %v", m.Header)
	}
}

func TestSendTestOAuth2(t *testing.T) {
	tok := token(t)
	tests := []struct {
		name, mech string
		offered    []string
	}{
		{"xoauth2 preferred", "XOAUTH2", []string{"OAUTHBEARER", "XOAUTH2"}},
		{"oauthbearer only", "OAUTHBEARER", []string{"OAUTHBEARER"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.New(t, smtptest.Options{Mechanisms: tt.offered, Tokens: map[string]string{tok: "alarm@example.test"}})
			a := newForTest(t, srv, "auth = \"oauth2\"\n[oauth2]\nmode = \"client-secret-post\"\nauth_url = \"https://idp.example.test/auth\"\ntoken_url = \"https://idp.example.test/token\"\nclient_id = \"c\"\nclient_secret = \"s\"",
				&oauth.Tokens{AccessToken: config.NewSecret(tok), TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)})
			if _, err := a.SendTest(context.Background(), nil); err != nil {
				t.Fatalf("SendTest = %v", err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 || msgs[0].Mechanism != tt.mech || msgs[0].AuthUser != "alarm@example.test" {
				t.Fatalf("server got %+v, want one mail over %s", msgs, tt.mech)
			}
		})
	}
}

func TestTokenRefusedOrExpired(t *testing.T) {
	tok := token(t)
	tests := []struct {
		name    string
		tokens  oauth.Tokens
		wantErr string
		hint    string
	}{
		{"refused", oauth.Tokens{AccessToken: config.NewSecret(tok + "-revoked"), Expiry: time.Now().Add(time.Hour)}, "535", "token"},
		{"expired", oauth.Tokens{AccessToken: config.NewSecret(tok), Expiry: time.Now().Add(-time.Minute)}, "expired", tokensHint},
		{"none", oauth.Tokens{}, "not authorised yet", "authorize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.New(t, smtptest.Options{Tokens: map[string]string{tok: "alarm@example.test"}})
			a := newForTest(t, srv, "auth = \"oauth2\"\n[oauth2]\nmode = \"gmail\"\nclient_id = \"c\"\nclient_secret = \"s\"", &tt.tokens)
			_, err := a.SendTest(context.Background(), nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("SendTest = %v, want %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), longToken) || strings.Contains(Hint(err), longToken) {
				t.Errorf("error or hint shows the token: %v / %s", err, Hint(err))
			}
			if h := Hint(err); !strings.Contains(h, tt.hint) {
				t.Errorf("Hint = %q, want it to mention %q", h, tt.hint)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("server got %d mails", n)
			}
			if tt.name == "expired" && len(srv.Auths()) != 0 {
				t.Errorf("an expired token was sent: %+v", srv.Auths())
			}
		})
	}
}

const tokensHint = "tokens.toml"

func TestAlarmThroughSocket(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{Users: map[string]string{"alarm@example.test": "pw"}})
	a := newForTest(t, srv, "user = \"alarm@example.test\"\npassword = \"pw\"", nil)
	ctx, stopAgent := runForTest(t, a)
	al := alarm.Alarm{Severity: alarm.Major, Code: "LINK-DOWN", Source: "eth1", Text: "link lost on port 3\r\nSubject: injected\r\n.\r\n",
		Details: []alarm.Detail{{Key: "port", Value: "3"}}}
	if spooled, err := a.Raise(context.Background(), al); err != nil || spooled {
		t.Fatalf("Raise = %v, %v; want taken by the agent", spooled, err)
	}
	wait, stop := context.WithTimeout(ctx, 10*time.Second)
	srv.WaitMessages(wait, 1)
	stop()
	if err := stopAgent(); err != nil {
		t.Errorf("Run = %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d mails", len(msgs))
	}
	m, err := mail.ReadMessage(bytes.NewReader(msgs[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Header.Get("Subject"), "[alarm] gw-lab-1: MAJOR LINK-DOWN - link lost on port 3"; got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
	if len(m.Header["Subject"]) != 1 {
		t.Errorf("alarm text made a header: %v", m.Header)
	}
}

func TestNotConfigured(t *testing.T) {
	a, err := New(Options{Board: board.Profile{Name: "host"}, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.SendTest(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "mail.from: not set") || !strings.Contains(Hint(err), "config set") {
		t.Errorf("SendTest on an empty box = %v (hint %q)", err, Hint(err))
	}
}

func TestConfigChangeAppliesToNextMail(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{Users: map[string]string{"alarm@example.test": "right"}})
	a := newForTest(t, srv, "user = \"alarm@example.test\"\npassword = \"wrong\"", nil)
	if _, err := a.SendTest(context.Background(), nil); err == nil {
		t.Fatal("SendTest with the wrong password succeeded")
	}
	f, err := config.Load(a.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	f.Config.SMTP.Password = config.NewSecret("right")
	if err := config.Save(a.ConfigPath(), &f.Config); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SendTest(context.Background(), nil); err != nil {
		t.Fatalf("SendTest after the password was fixed = %v", err)
	}
	// A file damaged meanwhile: the good copy (just saved) is used.
	if err := os.WriteFile(a.ConfigPath(), []byte("[smtp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SendTest(context.Background(), nil); err != nil {
		t.Fatalf("SendTest with a damaged file and a good copy = %v", err)
	}
	if w := a.Warnings(); len(w) != 1 || !strings.Contains(w[0], "damaged") {
		t.Errorf("Warnings = %q, want the damaged file named", w)
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("server got %d mails, want 2", n)
	}
}

func TestClockNotSet(t *testing.T) {
	dir := t.TempDir()
	doc := `[mail]
from = "alarm@example.test"
to = ["ops@example.test"]
[smtp]
host = "smtp.example.test"
[oauth2]
mode = "microsoft-app"
tenant = "example.onmicrosoft.com"
client_id = "app"
client_secret = "secret"
`
	if err := os.WriteFile(filepath.Join(dir, config.FileName), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Board: board.Profile{Name: "host"}, DataDir: dir, BuildDate: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		Now: func() time.Time { return time.Date(1970, 1, 1, 0, 5, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, unset := a.ClockUnset(); !unset {
		t.Error("ClockUnset() = false for a clock in 1970")
	}
	_, err = a.ObtainNow(context.Background())
	if err == nil || !strings.Contains(err.Error(), "system clock not set") {
		t.Errorf("ObtainNow with the clock in 1970 = %v, want \"system clock not set\"", err)
	}
}

func TestDeliveryFailureRaisesAttention(t *testing.T) {
	srv := smtptest.New(t, smtptest.Options{Users: map[string]string{"alarm@example.test": "right"}})
	a, logged := newWatchedForTest(t, srv, "user = \"alarm@example.test\"\npassword = \"wrong\"", nil)
	led := filepath.Join(t.TempDir(), "brightness")
	a.board.Attention = led
	ctx, _ := runForTest(t, a)
	if _, err := a.Raise(ctx, alarm.Alarm{Severity: alarm.Critical, Code: "PSU", Text: "power supply failed"}); err != nil {
		t.Fatal(err)
	}
	ledIs := func(want string) {
		t.Helper()
		b, err := os.ReadFile(led)
		if got := strings.TrimSpace(string(b)); err != nil || got != want {
			t.Fatalf("attention indicator %q (%v), want %q", got, err, want)
		}
	}
	// The agent sets the indicator, then logs the failure.
	logged.waitFor(t, "alarm mail cannot be delivered", 1)
	ledIs("1")
	ls, err := a.Live(ctx)
	if err != nil || !strings.Contains(ls.Failing, "535") || ls.Hint == "" || ls.Spooled != 1 || ls.NextTry.IsZero() {
		t.Fatalf("Live = %+v, %v; want the 535, a hint, the alarm on flash and a next try", ls, err)
	}
	// The admin fixes the password and asks for a retry.
	f, _ := config.Load(a.ConfigPath())
	f.Config.SMTP.Password = config.NewSecret("right")
	if err := config.Save(a.ConfigPath(), &f.Config); err != nil {
		t.Fatal(err)
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The mail goes; the agent clears the indicator, then logs that.
	logged.waitFor(t, "alarm mail is delivered again", 1)
	ledIs("0")
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("server got %d mails, want 1", n)
	}
}

func TestSecretExpiryWarnings(t *testing.T) {
	dir := t.TempDir()
	doc := `[mail]
from = "alarm@example.test"
to = ["ops@example.test"]
[smtp]
host = "smtp.example.test"
[oauth2]
mode = "microsoft-app"
tenant = "example.onmicrosoft.com"
client_id = "app"
client_secret = "secret"
secret_expires = 2026-12-20
`
	if err := os.WriteFile(filepath.Join(dir, config.FileName), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	a, err := New(Options{Board: board.Profile{Name: "host"}, DataDir: dir, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	c := a.Config()
	sp, err := a.openSpool(&c)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	ob := outbox.New(outbox.Options{Spool: sp, Device: "gw", Now: func() time.Time { return now }, Send: func(ctx context.Context, ms []outbox.Mail) ([]string, []error) {
		return nil, []error{errors.New("not now")}
	}})
	a.outbox, a.minSeverity = ob, alarm.Info
	_, src, err := a.oauthFor(&c)
	if err != nil {
		t.Fatal(err)
	}
	check := func(when time.Time, wantQueued int, wantLevel int) {
		t.Helper()
		now = when
		a.watchSecret(&c, src)
		a.watchSecret(&c, src) // twice: no second warning
		q, err := a.Queue()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, al := range q.Spooled {
			if al.Code == "SECRET-EXPIRES" {
				n++
			}
		}
		if n != wantQueued || src.SecretWarning() != wantLevel {
			t.Fatalf("at %s: %d warnings queued (want %d), level %d (want %d)", when.Format(time.DateOnly), n, wantQueued, src.SecretWarning(), wantLevel)
		}
	}
	check(now, 0, 0)                                             // 49 days ahead
	check(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), 0, 30) // 25 days: a warning (below major: kept in memory)
	if st := ob.Status(); st.Memory != 1 {
		t.Fatalf("30-day warning: %d in memory, want 1", st.Memory)
	}
	check(time.Date(2026, 12, 15, 12, 0, 0, 0, time.UTC), 1, 7) // 5 days: major, on flash
	check(time.Date(2026, 12, 19, 18, 0, 0, 0, time.UTC), 2, 1) // hours: critical
	// a restart remembers the level
	a2, _ := New(Options{Board: board.Profile{Name: "host"}, DataDir: dir})
	c2 := a2.Config()
	_, src2, _ := a2.oauthFor(&c2)
	if src2.SecretWarning() != 1 {
		t.Errorf("after a restart the warning level is %d, want 1", src2.SecretWarning())
	}
}

// TestMakeDataDir: on a box's first start the data directory may not exist
// yet; run makes it (0700) before it writes anything there.
func TestMakeDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "flash", "mailagent")
	a, err := New(Options{Board: board.Profile{Name: "host"}, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("New made the data directory already: %v", err)
	}
	for range 2 { // and again, when it is there
		if err := a.MakeDataDir(); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory: %v, %v", fi, err)
	}
}
