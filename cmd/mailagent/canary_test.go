package main

// The command line's OAuth2 evidence against the strict test authorization
// server (appliance/oauthtest) and a strict SMTP server (appliance/smtptest):
// what status, test and authorize say when the provider refuses the grant,
// fails for a while, or authorises without a refresh token; and a canary
// test that no secret, token or client assertion ever shows in any output.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mailagent/appliance/agent"
	"mailagent/appliance/config"
	"mailagent/appliance/oauth"
	"mailagent/appliance/oauthtest"
	"mailagent/appliance/smtptest"
	"mailagent/board"
)

const (
	cliRedirect = "https://box.example.test/auth.htm"
	cliMailbox  = "alarm@example.test"
	cliClientID = "app-cli"
	cliSecret   = "cli-client-secret" // the client secret outside the canary test
)

// cliRun is one mailagent command and what it printed.
type cliRun struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r *cliRun) String() string {
	return fmt.Sprintf("mailagent %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// cliBox is a data directory driven through run(), as a technician drives
// mailagent in a shell, against its own authorization server. It keeps
// every command's output and every token it ever saw on flash.
type cliBox struct {
	t    *testing.T
	data string
	srv  *oauthtest.Server
	mode string
	runs []*cliRun

	mu     sync.Mutex
	tokens map[string]string // token value -> where it was seen
	codes  []string          // authorisation codes pasted back
}

// newCLIBox makes a data directory for mode against srv, with settings on
// top of the mail and SMTP basics; the SMTP server accepts no token yet.
func newCLIBox(t *testing.T, srv *oauthtest.Server, mode string, settings map[string]string) *cliBox {
	t.Helper()
	b := &cliBox{t: t, data: t.TempDir(), srv: srv, mode: mode, tokens: map[string]string{}}
	b.set("mail.from", cliMailbox)
	b.set("mail.to", "ops@example.test")
	b.set("smtp.auth", "oauth2")
	b.set("oauth2.mode", mode)
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		b.set(k, settings[k])
	}
	b.smtpAccepting("no-token-issued-yet")
	return b
}

// exchangeSettings point mode exchange at a Microsoft-flavoured srv.
func exchangeSettings(srv *oauthtest.Server, secret string) map[string]string {
	return map[string]string{"oauth2.authority": srv.URL() + "/", "oauth2.tenant": srv.Tenant(),
		"oauth2.client_id": cliClientID, "oauth2.client_secret": secret, "oauth2.redirect_url": cliRedirect}
}

// gmailSettings point mode gmail at a Google-flavoured srv.
func gmailSettings(srv *oauthtest.Server, secret string) map[string]string {
	return map[string]string{"oauth2.auth_url": srv.AuthURL(), "oauth2.token_url": srv.TokenURL(),
		"oauth2.client_id": cliClientID, "oauth2.client_secret": secret, "oauth2.redirect_url": cliRedirect}
}

// interactiveServer is a strict server of flavour with one web client.
func interactiveServer(t *testing.T, flavour oauthtest.Flavour, secret string) *oauthtest.Server {
	o := oauthtest.Options{Flavour: flavour, Account: cliMailbox, DeviceInterval: time.Second,
		Clients: []oauthtest.Client{{ID: cliClientID, Secret: secret, Auth: oauthtest.AuthPost, RedirectURIs: []string{cliRedirect}}}}
	if flavour == oauthtest.Microsoft {
		o.Rotation = oauthtest.RotateRevokeOnReuse
	}
	return oauthtest.NewServer(t, o)
}

// exec runs mailagent with args (after --data) and records the run.
func (b *cliBox) exec(stdin string, args ...string) *cliRun {
	b.t.Helper()
	full := append([]string{"--data", b.data}, args...)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), full, strings.NewReader(stdin), &stdout, &stderr)
	return b.record(&cliRun{args: full, code: code, stdout: stdout.String(), stderr: stderr.String()})
}

func (b *cliBox) record(r *cliRun) *cliRun {
	b.runs = append(b.runs, r)
	b.collectFlash(strings.Join(r.args[2:], " "))
	return r
}

// ok runs a command that must succeed.
func (b *cliBox) ok(args ...string) *cliRun {
	b.t.Helper()
	r := b.exec("", args...)
	if r.code != 0 {
		b.t.Fatalf("%v", r)
	}
	return r
}

// failsWith runs a command that must exit 1 with every one of want on
// stderr.
func (b *cliBox) failsWith(args []string, want ...string) *cliRun {
	b.t.Helper()
	r := b.exec("", args...)
	if r.code != 1 {
		b.t.Errorf("want exit 1: %v", r)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			b.t.Errorf("stderr lacks %q: %v", w, r)
		}
	}
	return r
}

// set sets a configuration key; the value goes through stdin, as secrets
// are best given.
func (b *cliBox) set(key, value string) {
	b.t.Helper()
	if r := b.exec(value, "config", "set", key, "-"); r.code != 0 {
		b.t.Fatalf("%v", r)
	}
}

// smtpAccepting starts an SMTP server that accepts token for the mailbox
// and points the configuration at it.
func (b *cliBox) smtpAccepting(token string) *smtptest.Server {
	b.t.Helper()
	srv := smtptest.New(b.t, smtptest.Options{Tokens: map[string]string{token: cliMailbox}})
	ca := filepath.Join(b.t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CAPEM(), 0o600); err != nil {
		b.t.Fatal(err)
	}
	b.set("smtp.host", srv.Host())
	b.set("smtp.port", strconv.Itoa(srv.Port()))
	b.set("smtp.ca_file", ca)
	return srv
}

// flash reads tokens.toml; the zero Tokens when there is none.
func (b *cliBox) flash() oauth.Tokens {
	b.t.Helper()
	f, err := oauth.LoadTokens(filepath.Join(b.data, oauth.TokensFileName))
	if err != nil {
		b.t.Fatal(err)
	}
	return f.Tokens
}

// collectFlash keeps the tokens on flash after a command.
func (b *cliBox) collectFlash(after string) {
	t := b.flash()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range []struct {
		what string
		v    config.Secret
	}{{"refresh token", t.RefreshToken}, {"access token", t.AccessToken}} {
		if v := s.v.Reveal(); v != "" {
			if _, seen := b.tokens[v]; !seen {
				b.tokens[v] = fmt.Sprintf("%s on flash after %q", s.what, after)
			}
		}
	}
}

// authorize runs "mailagent authorize" as a technician at a terminal: for
// "paste" it opens the printed address in the (test) browser and pastes
// back where the browser ended up; for "device" it approves the printed
// code; for "none" it only runs the command. Extra args go before the
// command (-v).
func (b *cliBox) authorize(how string, extra ...string) *cliRun {
	b.t.Helper()
	args := append([]string{"--data", b.data}, extra...)
	args = append(args, "authorize")
	switch how {
	case "paste":
		args = append(args, "--paste")
	case "device":
		args = append(args, "--device")
	}
	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code := run(context.Background(), args, stdinR, stdoutW, &stderr)
		stdoutW.Close()
		done <- code
	}()
	var out strings.Builder
	answered := false
	deviceCode := regexp.MustCompile(`enter the code (\S+)`)
	sc := bufio.NewScanner(stdoutR)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		switch {
		case answered:
		case how == "paste" && strings.HasPrefix(line, "http"):
			answered = true
			redirect := b.srv.Authorize(b.t, line)
			if u, err := url.Parse(redirect); err == nil && u.Query().Get("code") != "" {
				b.mu.Lock()
				b.codes = append(b.codes, u.Query().Get("code"))
				b.mu.Unlock()
			}
			go fmt.Fprintln(stdinW, redirect)
		case how == "device" && deviceCode.MatchString(line):
			answered = true
			b.srv.ApproveDevice(deviceCode.FindStringSubmatch(line)[1])
		}
	}
	io.Copy(io.Discard, stdoutR)
	stdinW.Close()
	code := <-done
	return b.record(&cliRun{args: args, code: code, stdout: out.String(), stderr: stderr.String()})
}

// mustAuthorize authorises and fails the test unless it worked.
func (b *cliBox) mustAuthorize(how string) {
	b.t.Helper()
	r := b.authorize(how)
	if r.code != 0 || !strings.Contains(r.stdout, "ok: authorised as "+cliMailbox) {
		b.t.Fatalf("authorisation failed: %v", r)
	}
}

// pause stands for the time a person takes to try again after a failed
// token request: the strict server takes the same failed request within a
// second for x/oauth2's double send (AuthStyleAutoDetect), and each command
// is a new process that asks at once. The server's clock moves on; the test
// does not wait.
func (b *cliBox) pause() { b.srv.Advance(1100 * time.Millisecond) }

// statusJSON runs "status --json".
func (b *cliBox) statusJSON() agent.Status {
	b.t.Helper()
	r := b.ok("status", "--json")
	var s agent.Status
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		b.t.Fatalf("status --json does not parse: %v\n%s", err, r.stdout)
	}
	if s.OAuth2 == nil {
		b.t.Fatalf("status --json has no oauth2 part:\n%s", r.stdout)
	}
	return s
}

// statusLine returns the value of "name:" in the output of "status".
func statusLine(out, name string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestReauthRequiredOnTheCommandLine lets the provider refuse the grant:
// "mailagent test" says re-authorisation is required, with the provider's
// code and a hint; "status" and "status --json" show the state, the code
// and the hint; further tests make no token request; "mailagent authorize"
// brings the state back to ok.
func TestReauthRequiredOnTheCommandLine(t *testing.T) {
	tests := []struct {
		name, mode string
		kill       func(*oauthtest.Server)
		wantError  []string
		wantHint   string
	}{
		{"exchange injected AADSTS700082", "exchange", func(s *oauthtest.Server) {
			s.FailNext(1, oauthtest.Fault{Error: "invalid_grant", ErrorCodes: []int{700082}, Grant: oauthtest.GrantRefreshToken,
				Description: "AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2026-01-01T00:00:00Z and was inactive for 90.00:00:00."})
		}, []string{"invalid_grant", "AADSTS700082"}, "the refresh token expired after 90 days without use"},
		{"exchange revoked at the server", "exchange", (*oauthtest.Server).RevokeAll, []string{"invalid_grant", "AADSTS50173"}, "authorise again"},
		{"gmail expired at the server", "gmail", (*oauthtest.Server).ExpireRefreshTokens, []string{"invalid_grant"}, `"Testing"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b *cliBox
			if tt.mode == "gmail" {
				srv := interactiveServer(t, oauthtest.Google, cliSecret)
				b = newCLIBox(t, srv, tt.mode, gmailSettings(srv, cliSecret))
			} else {
				srv := interactiveServer(t, oauthtest.Microsoft, cliSecret)
				b = newCLIBox(t, srv, tt.mode, exchangeSettings(srv, cliSecret))
			}
			b.mustAuthorize("paste")
			tt.kill(b.srv)

			want := append([]string{"error: ", "re-authorisation required", "hint: ", tt.wantHint}, tt.wantError...)
			b.failsWith([]string{"test"}, want...)
			before := b.srv.Requests("")

			st := b.ok("status").stdout
			if got := statusLine(st, "state"); got != oauth.StateReauthRequired {
				t.Errorf("status: state %q, want %s:\n%s", got, oauth.StateReauthRequired, st)
			}
			for _, w := range tt.wantError {
				if !strings.Contains(statusLine(st, "last error"), w) {
					t.Errorf("status: last error lacks %q:\n%s", w, st)
				}
			}
			if !strings.Contains(statusLine(st, "hint"), tt.wantHint) {
				t.Errorf("status: hint lacks %q:\n%s", tt.wantHint, st)
			}
			js := b.statusJSON().OAuth2
			if js.State != oauth.StateReauthRequired || !strings.Contains(js.Fix, tt.wantHint) || !strings.HasPrefix(statusLine(st, "last error"), js.LastError) {
				t.Errorf("status --json: state %q, last error %q, hint %q", js.State, js.LastError, js.Fix)
			}
			for _, w := range tt.wantError {
				if !strings.Contains(js.LastError, w) {
					t.Errorf("status --json: last error lacks %q: %q", w, js.LastError)
				}
			}

			// However often the technician tries, no token request goes out.
			for range 3 {
				b.failsWith([]string{"test"}, "re-authorisation required", "hint: ", tt.wantHint)
			}
			if n := b.srv.Requests("") - before; n != 0 {
				t.Errorf("%d token requests after the refusal, want 0", n)
			}

			b.mustAuthorize("paste")
			st = b.ok("status").stdout
			if statusLine(st, "state") != oauth.StateOK || statusLine(st, "last error") != "" || statusLine(st, "hint") != "" {
				t.Errorf("status after a new authorisation:\n%s", st)
			}
			if js := b.statusJSON().OAuth2; js.State != oauth.StateOK || js.LastError != "" || js.Fix != "" || !js.HasRefreshToken {
				t.Errorf("status --json after a new authorisation: %+v", js)
			}
			if v := b.srv.Violations(); len(v) != 0 {
				t.Errorf("violations: %q", v)
			}
		})
	}
}

// TestTransientFailureOnTheCommandLine fails the refresh with a 503: the
// test mail fails, status shows the error state and the 503, tokens.toml
// keeps the refresh token, and once the server answers again the next
// token request brings the state back to ok. (The backoff itself lives in
// the agent's memory; appliance/oauth and appliance/agent test it.)
func TestTransientFailureOnTheCommandLine(t *testing.T) {
	srv := interactiveServer(t, oauthtest.Microsoft, cliSecret)
	b := newCLIBox(t, srv, "exchange", exchangeSettings(srv, cliSecret))
	b.mustAuthorize("paste")
	rt := b.flash().RefreshToken.Reveal()
	srv.FailNext(1, oauthtest.Fault{Status: http.StatusServiceUnavailable, Grant: oauthtest.GrantRefreshToken})
	b.failsWith([]string{"test"}, "error: ", "503")

	st := b.ok("status").stdout
	if statusLine(st, "state") != oauth.StateError || !strings.Contains(statusLine(st, "last error"), "503") {
		t.Errorf("status after a 503:\n%s", st)
	}
	if js := b.statusJSON().OAuth2; js.State != oauth.StateError || !strings.Contains(js.LastError, "503") || !js.HasRefreshToken {
		t.Errorf("status --json after a 503: %+v", js)
	}
	if f := b.flash(); f.RefreshToken.Reveal() != rt {
		t.Errorf("tokens.toml lost its refresh token on a 503")
	}
	if live := srv.LiveRefreshTokens(); len(live) != 1 || live[0] != rt {
		t.Errorf("the server no longer accepts the refresh token on flash")
	}

	// The server answers again, and the technician tries again. (Each
	// command is a new process and tries at once; the backoff is the
	// running agent's.) The mail itself is refused by the SMTP server, which knows
	// no token; what matters here is the token state.
	b.pause()
	b.exec("", "test")
	if st := b.ok("status").stdout; statusLine(st, "state") != oauth.StateOK || statusLine(st, "last error") != "" {
		t.Errorf("status once the server answers again:\n%s", st)
	}
	if live := srv.LiveRefreshTokens(); len(live) != 1 || live[0] != b.flash().RefreshToken.Reveal() {
		t.Errorf("tokens.toml does not hold the refresh token the server accepts")
	}
	if n := srv.Reuses(); n != 0 {
		t.Errorf("%d reuses of rotated-out refresh tokens", n)
	}
}

// TestNoRefreshTokenOnTheCommandLine authorises with an answer that lacks
// the refresh token: "mailagent authorize --paste" exits 1 with the error
// and the fix for the provider, and status shows a state that is not ok
// with that fix, until an authorisation that gives one.
func TestNoRefreshTokenOnTheCommandLine(t *testing.T) {
	tests := []struct {
		mode    string
		flavour oauthtest.Flavour
		wantFix string
	}{
		{"gmail", oauthtest.Google, "prompt=consent"},
		{"exchange", oauthtest.Microsoft, "offline_access"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			srv := interactiveServer(t, tt.flavour, cliSecret)
			settings := exchangeSettings(srv, cliSecret)
			if tt.mode == "gmail" {
				settings = gmailSettings(srv, cliSecret)
			}
			b := newCLIBox(t, srv, tt.mode, settings)
			srv.FailNext(1, oauthtest.Fault{OmitRefreshToken: true, Grant: oauthtest.GrantAuthorizationCode})
			r := b.authorize("paste")
			if r.code != 1 || !strings.Contains(r.stderr, "error: ") || !strings.Contains(r.stderr, "no refresh token") ||
				!strings.Contains(r.stderr, "hint: ") || !strings.Contains(r.stderr, tt.wantFix) || strings.Contains(r.stdout, "ok: authorised") {
				t.Errorf("authorize without a refresh token: want exit 1, the error and a hint naming %s: %v", tt.wantFix, r)
			}
			st := b.ok("status").stdout
			if state := statusLine(st, "state"); state == oauth.StateOK || state == "not_authorised" || !strings.Contains(statusLine(st, "hint"), tt.wantFix) {
				t.Errorf("status after an authorisation without a refresh token:\n%s", st)
			}
			if js := b.statusJSON().OAuth2; js.State != oauth.StateError || !strings.Contains(js.Fix, tt.wantFix) || js.HasRefreshToken {
				t.Errorf("status --json after an authorisation without a refresh token: %+v", js)
			}
			b.mustAuthorize("paste")
			if st := b.ok("status").stdout; statusLine(st, "state") != oauth.StateOK || statusLine(st, "hint") != "" {
				t.Errorf("status after an authorisation with a refresh token:\n%s", st)
			}
		})
	}
}

// Canary values for every secret key.
const (
	canarySMTPPassword  = "canary-smtp-password-7f3a9e"
	canaryClientSecret  = "canary-client-secret-91bc4d"
	canaryROPCPassword  = "canary-ropc-password-44de0a"
	canaryAlarmPassword = "canary-alarm-password-5e21c7"
	canaryAdminHash     = "$scrypt$canary-admin-hash-0c9d62"
)

// needle is something that must not appear in any output.
type needle struct {
	what, value string
}

// jwtShape matches a compact JWS: a header and a payload that are both
// base64url JSON objects.
var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}`)

// leaks lists the needles found in output (and JWTs of any kind). Each
// secret is also looked for URL-escaped and base64-encoded, and long ones
// by their first and last 16 characters, so that a shortened or encoded
// leak counts too.
func leaks(output string, needles []needle) []string {
	var found []string
	for _, n := range needles {
		forms := []string{n.value, url.QueryEscape(n.value), base64.StdEncoding.EncodeToString([]byte(n.value)),
			base64.RawURLEncoding.EncodeToString([]byte(n.value))}
		if len(n.value) >= 32 {
			forms = append(forms, n.value[:16], n.value[len(n.value)-16:])
		}
		for _, f := range forms {
			if strings.Contains(output, f) {
				found = append(found, n.what)
				break
			}
		}
	}
	if m := jwtShape.FindString(output); m != "" {
		found = append(found, "a JWT ("+m[:12]+"…)")
	}
	return found
}

// TestLeaksFindsWhatItLooksFor checks the scanner itself, so that the
// canary test can fail.
func TestLeaksFindsWhatItLooksFor(t *testing.T) {
	long := strings.Repeat("a1B2", 20)
	needles := []needle{{"secret", canaryClientSecret}, {"token", long}}
	for _, tt := range []struct {
		output string
		want   int
	}{
		{"nothing here", 0},
		{"level=DEBUG msg=x secret=" + canaryClientSecret, 1},
		{"client_secret=" + url.QueryEscape(canaryClientSecret), 1},
		{"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(canaryClientSecret)), 1},
		{"token " + long[:20] + "…", 1},
		{"…" + long[len(long)-20:], 1},
		{"assertion eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln", 1},
		{canaryClientSecret + " " + long, 2},
	} {
		if got := leaks(tt.output, needles); len(got) != tt.want {
			t.Errorf("leaks(%q) = %q, want %d", tt.output, got, tt.want)
		}
	}
}

// canaryMode is one mode of the canary test: the server, the settings
// besides the canary secrets, and how it is authorised.
type canaryMode struct {
	mode, how string
	server    func(t *testing.T, key *rsa.PrivateKey, cert *x509.Certificate) *oauthtest.Server
	settings  func(srv *oauthtest.Server, certPEM string) map[string]string
	// fail makes the next authorisation fail at the token endpoint.
	fail oauthtest.Fault
}

// TestNoSecretInAnyOutput sets every secret key to a canary value (the
// private key is a real key, its base64 lines the canaries), lets the
// server issue tokens, runs every command that prints something — config
// show, get, export, check and set, status and status --json, test that
// succeeds and test that fails, authorize that succeeds and that fails,
// alarm without the agent, and the agent itself — with debug logging, and
// looks for the secrets, every refresh and access token that reached
// tokens.toml or is live at the server, the pasted authorisation codes
// and the client assertions in all of it.
func TestNoSecretInAnyOutput(t *testing.T) {
	key, cert := oauthtest.KeyPair(t, "mailagent-canary")
	keyPEM, certPEM := canaryKeyPEM(t, key), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	modes := []canaryMode{
		{mode: "exchange", how: "paste",
			server: func(t *testing.T, _ *rsa.PrivateKey, _ *x509.Certificate) *oauthtest.Server {
				return interactiveServer(t, oauthtest.Microsoft, canaryClientSecret)
			},
			settings: func(srv *oauthtest.Server, _ string) map[string]string {
				return exchangeSettings(srv, canaryClientSecret)
			},
			fail: oauthtest.Fault{Error: "invalid_client", ErrorCodes: []int{7000222}, Grant: oauthtest.GrantAuthorizationCode,
				Description: "AADSTS7000222: The provided client secret keys for app '" + cliClientID + "' are expired."}},
		{mode: "microsoft365", how: "none",
			server: func(t *testing.T, _ *rsa.PrivateKey, _ *x509.Certificate) *oauthtest.Server {
				return oauthtest.NewServer(t, oauthtest.Options{Flavour: oauthtest.Microsoft, Rotation: oauthtest.RotateRevokeOnReuse,
					Users:   map[string]string{cliMailbox: canaryROPCPassword},
					Clients: []oauthtest.Client{{ID: cliClientID, Secret: canaryClientSecret, Auth: oauthtest.AuthPost}}})
			},
			settings: func(srv *oauthtest.Server, _ string) map[string]string {
				return map[string]string{"oauth2.authority": srv.URL() + "/", "oauth2.tenant": srv.Tenant(),
					"oauth2.client_id": cliClientID, "oauth2.username": cliMailbox}
			},
			fail: oauthtest.Fault{Error: "invalid_grant", ErrorCodes: []int{50126}, Grant: oauthtest.GrantPassword,
				Description: "AADSTS50126: Error validating credentials due to invalid username or password."}},
		{mode: "private-key-jwt", how: "paste",
			server: func(t *testing.T, _ *rsa.PrivateKey, cert *x509.Certificate) *oauthtest.Server {
				return oauthtest.NewServer(t, oauthtest.Options{Flavour: oauthtest.Generic, Rotation: oauthtest.RotateRevokeOnReuse,
					Account: cliMailbox, AuthParams: url.Values{"scope": {"mail.send offline"}},
					Clients: []oauthtest.Client{{ID: cliClientID, Auth: oauthtest.AuthPrivateKeyJWT, Certificate: cert, KeyID: "kid-canary",
						RedirectURIs: []string{cliRedirect}}}})
			},
			settings: func(srv *oauthtest.Server, certPEM string) map[string]string {
				return map[string]string{"oauth2.auth_url": srv.AuthURL(), "oauth2.token_url": srv.TokenURL(), "oauth2.client_id": cliClientID,
					"oauth2.key_id": "kid-canary", "oauth2.certificate": certPEM, "oauth2.redirect_url": cliRedirect}
			},
			fail: oauthtest.Fault{Error: "invalid_client", Description: "client assertion refused", Grant: oauthtest.GrantAuthorizationCode}},
		{mode: "google-service-account", how: "none",
			server: func(t *testing.T, key *rsa.PrivateKey, _ *x509.Certificate) *oauthtest.Server {
				return oauthtest.NewServer(t, oauthtest.Options{Flavour: oauthtest.Google, ServiceAccounts: []oauthtest.ServiceAccount{
					{Email: "alarms@project.iam.gserviceaccount.com", KeyID: "key-canary", PublicKey: &key.PublicKey, Subjects: []string{cliMailbox}}}})
			},
			settings: func(srv *oauthtest.Server, _ string) map[string]string {
				return map[string]string{"oauth2.token_url": srv.TokenURL(), "oauth2.client_email": "alarms@project.iam.gserviceaccount.com",
					"oauth2.private_key_id": "key-canary", "oauth2.subject": cliMailbox}
			},
			fail: oauthtest.Fault{Error: "invalid_grant", Description: "Invalid JWT Signature.", Grant: oauthtest.GrantJWTBearer}},
	}
	for _, m := range modes {
		t.Run(m.mode, func(t *testing.T) {
			srv := m.server(t, key, cert)
			settings := m.settings(srv, certPEM)
			secrets := map[string]string{
				"smtp.password":        canarySMTPPassword,
				"oauth2.client_secret": canaryClientSecret,
				"oauth2.password":      canaryROPCPassword,
				"oauth2.private_key":   keyPEM,
				"http.alarm_password":  canaryAlarmPassword,
				"admin.password_hash":  canaryAdminHash,
			}
			for k, v := range secrets {
				settings[k] = v
			}
			settings["http.listen"] = "127.0.0.1:0" // the agent runs beside other tests
			settings["http.alarm_user"] = "alarm-poster"
			settings["http.alarm_user"] = "peer-box"
			settings["oauth2.keep_access_token"] = "true" // every access token reaches flash, where the test finds it
			settings["alarms.digest_window"] = "0s"       // the agent mails an alarm at once
			b := newCLIBox(t, srv, m.mode, settings)

			// The configuration, every way it is shown.
			b.ok("config", "show")
			for _, section := range []string{"smtp", "oauth2", "http", "admin"} {
				b.ok("config", "show", section)
			}
			for _, k := range slices.Sorted(maps.Keys(secrets)) {
				if r := b.ok("config", "get", k); strings.TrimSpace(r.stdout) != "(set)" {
					t.Errorf("config get %s = %q, want (set)", k, r.stdout)
				}
			}
			b.ok("config", "export")
			b.ok("-v", "config", "check")
			b.ok("-v", "status")
			b.ok("-v", "status", "--json")

			// Authorisation that fails, then succeeds.
			if m.how == "paste" {
				srv.DenyNext()
				if r := b.authorize(m.how, "-v"); r.code == 0 {
					t.Errorf("declined sign-in: %v", r)
				}
			}
			srv.FailNext(1, m.fail)
			if r := b.authorize(m.how, "-v"); r.code == 0 {
				t.Errorf("authorisation refused by the server: %v", r)
			}
			b.pause()
			if r := b.authorize(m.how, "-v"); r.code != 0 {
				t.Fatalf("authorisation: %v", r)
			}
			if m.mode == "exchange" {
				if r := b.authorize("device", "-v"); r.code != 0 {
					t.Errorf("device authorisation: %v", r)
				}
			}
			b.ok("-v", "status")
			b.ok("-v", "status", "--json")

			// A test mail that goes through with the token on flash, and
			// one the SMTP server refuses (535, a refresh, 535 again).
			b.smtpAccepting(b.flash().AccessToken.Reveal())
			b.ok("-v", "test")
			b.smtpAccepting("not-a-token-the-server-issued")
			if r := b.exec("", "-v", "test"); r.code == 0 {
				t.Errorf("test with a refused token: %v", r)
			}
			b.ok("-v", "status")
			b.ok("-v", "status", "--json")

			// A refresh the server refuses.
			srv.FailNext(1, oauthtest.Fault{Error: "invalid_grant", Description: "refused for the canary test"})
			b.exec("", "-v", "test")
			b.ok("-v", "status")

			// An alarm without the agent, then the agent itself with an
			// alarm sent to it.
			b.exec("", "-v", "alarm", "--severity", "major", "--code", "CANARY", "canary alarm without agent")
			b.exec("", "-v", "queue")
			b.pause()
			b.mustAuthorize(m.how)
			mails := b.smtpAccepting(b.flash().AccessToken.Reveal())
			b.runAgent(t, mails, []string{"-v", "alarm", "--severity", "major", "--code", "CANARY", "--detail", "port=4", "canary alarm"})
			b.ok("-v", "status")
			b.ok("config", "export")

			needles := canaryNeedles(t, b, keyPEM)
			if hdr := assertionHeader(t, b); hdr != "" {
				needles = append(needles, needle{"client assertion header", hdr})
			}
			t.Logf("%d commands, %d needles (%d tokens, %d codes)", len(b.runs), len(needles), len(b.tokens), len(b.codes))
			for _, r := range b.runs {
				for _, out := range []struct{ name, text string }{{"stdout", r.stdout}, {"stderr", r.stderr}} {
					if found := leaks(out.text, needles); len(found) > 0 {
						t.Errorf("mailagent %s: %s shows %s", strings.Join(r.args[2:], " "), out.name, strings.Join(found, ", "))
					}
				}
			}
		})
	}
}

// canaryNeedles are the secrets, the PEM key's lines, and every token and
// code seen.
func canaryNeedles(t *testing.T, b *cliBox, keyPEM string) []needle {
	t.Helper()
	ns := []needle{
		{"smtp.password", canarySMTPPassword},
		{"oauth2.client_secret", canaryClientSecret},
		{"oauth2.password", canaryROPCPassword},
		{"http.alarm_password", canaryAlarmPassword},
		{"admin.password_hash", canaryAdminHash},
	}
	for i, line := range strings.Split(strings.TrimSpace(keyPEM), "\n") {
		if !strings.HasPrefix(line, "-----") {
			ns = append(ns, needle{fmt.Sprintf("oauth2.private_key line %d", i), line})
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for v, where := range b.tokens {
		ns = append(ns, needle{where, v})
	}
	for i, rt := range b.srv.LiveRefreshTokens() {
		ns = append(ns, needle{fmt.Sprintf("live refresh token %d at the server", i), rt})
	}
	for i, c := range b.codes {
		ns = append(ns, needle{fmt.Sprintf("authorisation code %d", i), c})
	}
	if len(b.tokens) < 2 {
		t.Errorf("only %d tokens reached tokens.toml: the test did not see the tokens it looks for", len(b.tokens))
	}
	return ns
}

// canaryKeyPEM is key in PKCS #8 PEM.
func canaryKeyPEM(t *testing.T, key *rsa.PrivateKey) string {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// assertionHeader is the header part of the JWT the box signs in its
// mode (client assertion or JWT bearer grant), made by the same code
// from the same configuration against a token endpoint that only records
// the request; "" in modes that sign nothing. It does not change with
// each assertion (alg, typ, kid, x5t#S256), so finding it anywhere means
// an assertion leaked.
func assertionHeader(t *testing.T, b *cliBox) string {
	t.Helper()
	if b.mode != "private-key-jwt" && b.mode != "google-service-account" {
		return ""
	}
	f, err := config.Load(filepath.Join(b.data, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	c := f.Config.WithDefaults(board.Profile{})
	var mu sync.Mutex
	var assertion string
	rec := roundTrip(func(r *http.Request) (*http.Response, error) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		mu.Lock()
		assertion = form.Get("client_assertion") + form.Get("assertion")
		mu.Unlock()
		return &http.Response{StatusCode: http.StatusBadRequest, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(`{"error":"invalid_request"}`)), Request: r}, nil
	})
	cl, err := oauth.NewClient(oauth.ClientOptions{Config: &c, HTTP: &http.Client{Transport: rec}})
	if err != nil {
		t.Fatal(err)
	}
	if b.mode == "google-service-account" {
		_, err = cl.Obtain(context.Background())
	} else {
		_, err = cl.Refresh(context.Background(), "recorded-refresh-token")
	}
	if err == nil {
		t.Fatal("the recording token endpoint gave a token")
	}
	mu.Lock()
	defer mu.Unlock()
	hdr, _, ok := strings.Cut(assertion, ".")
	if !ok || !strings.HasPrefix(hdr, "eyJ") {
		t.Fatalf("no assertion recorded in mode %s", b.mode)
	}
	return hdr
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// syncBuffer is a bytes.Buffer for a command that runs in its own
// goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runAgent runs "mailagent -v run" until it is ready, runs the command
// alarm beside it, waits a while for the agent to mail it to mails, and
// stops it; both outputs are recorded.
func (b *cliBox) runAgent(t *testing.T, mails *smtptest.Server, alarm []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	args := []string{"--data", b.data, "-v", "run"}
	stdoutR, stdoutW := io.Pipe()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, args, strings.NewReader(""), stdoutW, &stderr)
		stdoutW.Close()
		done <- code
	}()
	var out strings.Builder
	sc := bufio.NewScanner(stdoutR)
	ready := false
	for !ready && sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		ready = strings.Contains(sc.Text(), " running on board ")
	}
	rest := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(stdoutR)
		rest <- string(b)
	}()
	if ready {
		if r := b.exec("", append([]string{}, alarm...)...); r.code != 0 {
			t.Errorf("alarm to the running agent: %v", r)
		}
		// Let the agent use its token; the outputs are what this test
		// checks, so a mail that takes longer is only noted.
		wait, stop := context.WithTimeout(ctx, 5*time.Second)
		if _, err := mails.WaitMessages(wait, 1); err != nil {
			t.Logf("the agent had not mailed the alarm when it was stopped")
		}
		stop()
	} else {
		t.Errorf("the agent did not start")
	}
	cancel()
	code := <-done
	out.WriteString(<-rest)
	r := b.record(&cliRun{args: args, code: code, stdout: out.String(), stderr: stderr.String()})
	if code != 0 && !errors.Is(ctx.Err(), context.Canceled) {
		t.Errorf("agent: %v", r)
	}
	if !strings.Contains(r.stderr, "level=DEBUG") && !strings.Contains(r.stderr, "level=INFO") {
		t.Logf("the agent logged nothing: %v", r)
	}
}
