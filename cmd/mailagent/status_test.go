package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"mailagent/appliance/agent"
	"mailagent/board"
	"mailagent/console"
	"mailagent/webui"
)

// TestOneStatusEverywhere puts a box into several states and reads its
// status on every face: "mailagent status --json", GET /api/status of the
// web page, the console's banner and "mailagent status". The two JSON
// answers must be the same value, the console must show the banner of that
// value, and each face must say what the state is.
func TestOneStatusEverywhere(t *testing.T) {
	closed := closedPort(t)
	soon := time.Now().AddDate(0, 0, 10).Format("2006-01-02")
	configured := fmt.Sprintf(`[mail]
from = "alarm@example.test"
to = ["ops@example.test"]
[smtp]
host = "127.0.0.1"
port = %d
user = "alarm@example.test"
password = "pw-never-shown"
[alarms]
digest_window = "0s"
`, closed)
	oauth := fmt.Sprintf(`[mail]
from = "alarm@example.test"
to = ["ops@example.test"]
[smtp]
host = "127.0.0.1"
port = %d
auth = "oauth2"
[oauth2]
mode = "client-secret-post"
auth_url = "https://idp.example.test/authorize"
token_url = "https://idp.example.test/token"
client_id = "box"
client_secret = "secret-never-shown"
redirect_url = "https://box.example.test/auth.htm"
`, closed)
	tests := []struct {
		name   string
		config string // "" for none
		tokens string
		run    bool // the agent runs, and one alarm is raised
		queue  int  // alarms put on flash with the agent stopped
		check  func(t *testing.T, st *agent.Status)
		banner []string // what the console's banner says
		text   []string // what "mailagent status" says
	}{{
		name: "not configured",
		check: func(t *testing.T, st *agent.Status) {
			if len(st.Problems) < 3 || st.Problems[0].Key != "" || !strings.Contains(st.Problems[0].Message, "no configuration yet") {
				t.Errorf("problems %+v: want first that there is no file, then the keys", st.Problems)
			}
		},
		banner: []string{"!! the agent is not running", "!! mail cannot be sent yet: mail.from, mail.to, smtp.host (set, then commit)"},
		text:   []string{"config:     not ready:", "no configuration yet:", "mail.from: not set", "agent:      not running"},
	}, {
		name:   "configuration unreadable",
		config: "garbage = [\n",
		queue:  1,
		check: func(t *testing.T, st *agent.Status) {
			if len(st.Problems) != 1 || st.Problems[0].Key != "" || !strings.Contains(st.Problems[0].Message, "cannot be read") || len(st.Warnings) == 0 || st.Queue.Spooled != 1 {
				t.Errorf("status %+v: want the damage named, alone, and the alarm on flash", st)
			}
		},
		banner: []string{"!! the configuration cannot be read, so no mail is sent: ", "mailagent.toml is damaged: line 1"},
		text:   []string{"warning:    ", "the configuration cannot be read, so no mail is sent"},
	}, {
		name:   "queued alarms",
		config: configured,
		queue:  2,
		check: func(t *testing.T, st *agent.Status) {
			if st.Running || st.Queue.Spooled != 2 || st.Queue.Oldest == nil || len(st.Problems) != 0 {
				t.Errorf("status %+v: want 2 alarms on flash, the agent stopped, no problem", st)
			}
		},
		banner: []string{"!! the agent is not running: alarms wait on flash"},
		text:   []string{"config:     ok", "queue:      2 alarms wait on flash, oldest "},
	}, {
		name:   "failing delivery",
		config: configured,
		run:    true,
		check: func(t *testing.T, st *agent.Status) {
			d := st.Delivery
			if !st.Running || !strings.Contains(d.Failing, "connection refused") || d.Failures < 1 || d.NextTry == nil || d.FailingSince == nil || d.Hint == "" {
				t.Errorf("delivery %+v: want it failing with connection refused, a hint and the next try", d)
			}
			if st.Queue.Spooled+st.Queue.Memory != 1 {
				t.Errorf("queue %+v: want the one alarm waiting", st.Queue)
			}
		},
		banner: []string{"!! MAIL CANNOT BE DELIVERED: ", "connection refused", "!!   1 alarm wait; next try "},
		text:   []string{"delivery:   FAILING: ", "tries in a row", "            hint: "},
	}, {
		name:   "reauth required",
		config: oauth,
		tokens: `refresh_token = "rt-never-shown"
mode = "client-secret-post"
client_id = "box"
account = "alarm@example.test"
state = "reauth_required"
last_error = "invalid_grant: the refresh token was revoked"
last_error_at = 2026-12-01T10:00:00Z
last_hint = "the provider revoked the grant: authorise again"
`,
		check: func(t *testing.T, st *agent.Status) {
			o := st.OAuth2
			if o == nil || o.State != "reauth_required" || !strings.Contains(o.LastError, "invalid_grant") || o.Fix != "the provider revoked the grant: authorise again" || !o.HasRefreshToken {
				t.Errorf("oauth2 %+v: want reauth_required with the provider's code and the hint", o)
			}
		},
		banner: []string{"!! OAuth2: the provider no longer accepts the grant: a person must authorise again\n!!   the provider revoked the grant: authorise again\n"},
		text:   []string{"state:      reauth_required", "last error: invalid_grant: the refresh token was revoked", "hint:       the provider revoked the grant: authorise again"},
	}, {
		name: "a key that does not parse",
		config: strings.NewReplacer(`"client-secret-post"`, `"private-key-jwt"`,
			`client_secret = "secret-never-shown"`, "private_key = \"not a PEM key\"\nkey_id = \"k1\"").Replace(oauth),
		check: func(t *testing.T, st *agent.Status) {
			if o := st.OAuth2; o == nil || o.State != "error" || !strings.Contains(o.Fix, "oauth2.private_key") {
				t.Errorf("oauth2 %+v: want the settings refused, naming the key", o)
			}
			if len(st.Problems) != 1 || st.Problems[0].Key != "oauth2.private_key" {
				t.Errorf("problems %+v: want the key that does not parse, once", st.Problems)
			}
		},
		banner: []string{"!! mail cannot be sent yet: oauth2.private_key (set, then commit)"},
		text:   []string{"oauth2.private_key: no PEM private key in it"},
	}, {
		name:   "secret expiring",
		config: oauth + "secret_expires = " + soon + "\n",
		tokens: "refresh_token = \"rt-never-shown\"\nmode = \"client-secret-post\"\nclient_id = \"box\"\naccount = \"alarm@example.test\"\n",
		check: func(t *testing.T, st *agent.Status) {
			o := st.OAuth2
			if o == nil || o.SecretExpires != soon || o.SecretDaysLeft == nil || *o.SecretDaysLeft != 10 || !strings.Contains(o.SecretNote, "renew it soon") || o.State != "ok" {
				t.Errorf("oauth2 %+v: want the secret to expire in 10 days, with a note", o)
			}
		},
		banner: []string{"!! OAuth2 client secret expires " + soon + " (10 days): renew it soon"},
		text:   []string{"secret:     expires " + soon + " (10 days)  renew it soon"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name, doc string) {
				if doc != "" {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(doc), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			write("mailagent.toml", tt.config)
			write("tokens.toml", tt.tokens)
			for i := range tt.queue {
				if out, code := runCLI(t, "", "--board", "host", "--data", dir, "alarm", "--severity", "major", "--code", fmt.Sprint("Q", i), "queued"); code != 0 {
					t.Fatalf("alarm: exit %d\n%s", code, out)
				}
			}
			a := newStatusAgent(t, dir, tt.run)

			var cli agent.Status
			out, code := runCLI(t, "", "--board", "host", "--data", dir, "status", "--json")
			if code != 0 || json.Unmarshal([]byte(out), &cli) != nil {
				t.Fatalf("status --json: exit %d\n%s", code, out)
			}
			api := apiStatus(t, agent.NewAdmin(a))
			if !reflect.DeepEqual(cli, api) {
				t.Errorf("status --json and /api/status differ:\n%s\n%s", marshal(t, cli), marshal(t, api))
			}
			tt.check(t, &cli)

			banner := console.Banner(cli)
			screen := consoleScreen(t, agent.NewAdmin(a))
			if !strings.Contains(screen, banner) {
				t.Errorf("the console does not show the banner of the status:\nbanner:\n%s\nconsole:\n%s", banner, screen)
			}
			for _, want := range tt.banner {
				if !strings.Contains(banner, want) {
					t.Errorf("banner lacks %q:\n%s", want, banner)
				}
			}
			text, code := runCLI(t, "", "--board", "host", "--data", dir, "status")
			if code != 0 {
				t.Fatalf("status: exit %d\n%s", code, text)
			}
			for _, want := range tt.text {
				if !strings.Contains(text, want) {
					t.Errorf("status lacks %q:\n%s", want, text)
				}
			}
			for _, secret := range []string{"pw-never-shown", "secret-never-shown", "rt-never-shown"} {
				if strings.Contains(out+text+screen, secret) {
					t.Errorf("a secret shows in the status")
				}
			}
		})
	}
}

// runCLI runs mailagent in this process.
func runCLI(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &out)
	return out.String(), code
}

// newStatusAgent loads the agent of dir; with run, it runs until the test
// ends, and one alarm is raised and waited on until its delivery failed.
func newStatusAgent(t *testing.T, dir string, run bool) *agent.Agent {
	t.Helper()
	failed := make(chan struct{})
	var once sync.Once
	log := slog.New(signalHandler{msg: "alarm mail cannot be delivered", fn: func() { once.Do(func() { close(failed) }) }})
	a, err := agent.New(agent.Options{Board: mustBoard(t), DataDir: dir, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if !run {
		return a
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- a.Run(ctx, func() { close(ready) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent: %v", err)
	}
	if out, code := runCLI(t, "", "--board", "host", "--data", dir, "alarm", "--severity", "major", "--code", "LINK", "link lost"); code != 0 {
		t.Fatalf("alarm: exit %d\n%s", code, out)
	}
	select {
	case <-failed:
	case <-time.After(time.Minute):
		t.Fatal("the delivery did not fail within a minute")
	}
	return a
}

func mustBoard(t *testing.T) board.Profile {
	t.Helper()
	b, err := board.Lookup("host")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signalHandler calls fn when a record with message msg is logged.
type signalHandler struct {
	msg string
	fn  func()
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.msg) {
		h.fn()
	}
	return nil
}
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

// apiStatus is GET /api/status of the web page, logged in through the
// trusted proxy (which, unlike a first password, writes nothing).
func apiStatus(t *testing.T, admin *agent.Admin) agent.Status {
	t.Helper()
	page, err := webui.New(webui.Options{Backend: admin, TrustProxy: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(page)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/status", nil)
	req.Header.Set(webui.DefaultProxyHeader, "admin")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st agent.Status
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &st) != nil {
		t.Fatalf("GET /api/status = %d\n%s", resp.StatusCode, b)
	}
	return st
}

// consoleScreen is what a console session shows before its first prompt.
func consoleScreen(t *testing.T, admin *agent.Admin) string {
	t.Helper()
	env := &Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Board: mustBoard(t), LogLevel: new(slog.LevelVar)}
	env.Log = slog.New(slog.DiscardHandler)
	var out bytes.Buffer
	if err := console.Run(context.Background(), console.NewTerm(strings.NewReader("exit\n"), &out, false), consoleOptions(env, admin, nil)); err != nil {
		t.Fatal(err)
	}
	screen, _, _ := strings.Cut(out.String(), "mailagent> ")
	return screen
}

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// closedPort returns a TCP port on 127.0.0.1 that nothing listens on (it
// was free a moment ago).
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}
