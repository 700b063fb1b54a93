package agent

// The token states the agent reports (its token source's Status) when the provider
// refuses the grant, fails for a while, or authorises without a refresh
// token, against the strict test authorization server.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"mailagent/appliance/config"
	"mailagent/appliance/oauth"
	"mailagent/appliance/oauthtest"
	"mailagent/appliance/smtptest"
	"mailagent/board"
)

const (
	boxMailbox  = "alarm@example.test"
	boxRedirect = "https://box.example.test/auth.htm"
	boxClientMS = "app-exchange"
	boxClientG  = "123-box.apps.googleusercontent.com"
	boxSecret   = "box-client-secret"
)

// smtpServers starts SMTP servers for a test whose body runs in a
// synctest bubble: a server started inside would join the bubble, and its
// goroutine waiting on the socket would keep the bubble's clock from ever
// moving. Servers made here run outside it.
type smtpServers struct {
	start   time.Time // outside the bubble, when the servers were set up
	tokens  chan string
	servers chan *smtptest.Server
}

// newSMTPServers must be called outside the bubble.
func newSMTPServers(t *testing.T) *smtpServers {
	s := &smtpServers{start: time.Now(), tokens: make(chan string), servers: make(chan *smtptest.Server)}
	go func() {
		for token := range s.tokens {
			s.servers <- smtptest.New(t, smtptest.Options{Tokens: map[string]string{token: boxMailbox}})
		}
	}()
	t.Cleanup(func() { close(s.tokens) })
	return s
}

// accepting returns a new server that accepts token for the mailbox.
func (s *smtpServers) accepting(token string) *smtptest.Server {
	s.tokens <- token
	return <-s.servers
}

// oauthBox is an agent in an interactive OAuth2 mode whose provider is a
// strict oauthtest server. It lives in a testing/synctest bubble, so that
// the agent, x/oauth2 and the server share one clock the test moves with
// time.Sleep; the SMTP servers are real ones on 127.0.0.1. It keeps the access token on flash
// (keep_access_token), so that a test can start an SMTP server that
// accepts exactly the token the agent holds.
type oauthBox struct {
	t    *testing.T
	smtp *smtpServers
	a    *Agent
	srv  *oauthtest.Server
	dir  string
	mode string
}

// newOAuthBox makes the data directory and agent for mode ("exchange" or
// "gmail") against a new server; the SMTP server accepts no token yet.
// Call it inside a synctest bubble: it first moves the bubble's clock from
// 2000-01-01 to the present, where the SMTP servers' certificates are valid
// (for a day).
func newOAuthBox(t *testing.T, smtp *smtpServers, mode string) *oauthBox {
	t.Helper()
	time.Sleep(time.Until(smtp.start))
	o := oauthtest.Options{Account: boxMailbox, DeviceInterval: time.Second, InProcess: true}
	switch mode {
	case "exchange":
		o.Flavour, o.Rotation = oauthtest.Microsoft, oauthtest.RotateRevokeOnReuse
		o.Clients = []oauthtest.Client{{ID: boxClientMS, Secret: boxSecret, Auth: oauthtest.AuthPost, RedirectURIs: []string{boxRedirect}}}
	case "gmail":
		o.Flavour = oauthtest.Google
		o.Clients = []oauthtest.Client{{ID: boxClientG, Secret: boxSecret, Auth: oauthtest.AuthPost, RedirectURIs: []string{boxRedirect}}}
	default:
		t.Fatalf("no box for mode %s", mode)
	}
	b := &oauthBox{t: t, smtp: smtp, srv: oauthtest.NewServer(t, o), dir: t.TempDir(), mode: mode}
	b.smtpAccepting("no-token-issued-yet")
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(Options{Board: board.Profile{Name: "host"}, DataDir: b.dir, Log: log, HTTPClient: b.srv.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Problems(); err != nil {
		t.Fatalf("config has problems: %v", err)
	}
	b.a = a
	return b
}

// smtpAccepting starts an SMTP server that accepts token for the mailbox
// and writes mailagent.toml to use it; the agent reads it at the next mail.
func (b *oauthBox) smtpAccepting(token string) *smtptest.Server {
	t := b.t
	t.Helper()
	srv := b.smtp.accepting(token)
	ca := filepath.Join(b.dir, "ca.pem")
	if err := os.WriteFile(ca, srv.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	var provider string
	switch b.mode {
	case "exchange":
		provider = fmt.Sprintf("client_id = %q\ntenant = %q\nauthority = %q\n", boxClientMS, b.srv.Tenant(), b.srv.URL()+"/")
	case "gmail":
		provider = fmt.Sprintf("client_id = %q\nauth_url = %q\ntoken_url = %q\n", boxClientG, b.srv.AuthURL(), b.srv.TokenURL())
	}
	doc := fmt.Sprintf(`[device]
name = "gw-lab-1"
[mail]
from = %q
to = ["ops@example.test"]
[smtp]
host = %q
port = %d
ca_file = %q
auth = "oauth2"
[oauth2]
mode = %q
client_secret = %q
redirect_url = %q
keep_access_token = true
%s`, boxMailbox, srv.Host(), srv.Port(), ca, b.mode, boxSecret, boxRedirect, provider)
	if err := os.WriteFile(filepath.Join(b.dir, config.FileName), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv
}

// authorizePaste signs in the way "mailagent authorize --paste" and
// auth.htm do.
func (b *oauthBox) authorizePaste() error {
	b.t.Helper()
	g, err := b.a.StartAuthorize()
	if err != nil {
		b.t.Fatal(err)
	}
	_, err = b.a.FinishAuthorize(context.Background(), g, b.srv.Authorize(b.t, g.URL))
	return err
}

// authorizeDevice signs in with the device code, the user approving at once.
func (b *oauthBox) authorizeDevice() error {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := b.a.DeviceAuthorize(ctx, func(p DevicePrompt) { b.srv.ApproveDevice(p.Code) })
	return err
}

func (b *oauthBox) mustAuthorize() {
	b.t.Helper()
	if err := b.authorizePaste(); err != nil {
		b.t.Fatalf("authorisation: %v", err)
	}
}

func (b *oauthBox) status() oauth.Status {
	b.t.Helper()
	return b.source().Status()
}

// flash reads tokens.toml.
func (b *oauthBox) flash() oauth.Tokens {
	b.t.Helper()
	f, err := oauth.LoadTokens(filepath.Join(b.dir, oauth.TokensFileName))
	if err != nil || f.Missing {
		b.t.Fatalf("tokens.toml: %v (missing %v)", err, f != nil && f.Missing)
	}
	return f.Tokens
}

// sendsWithTokenOnFlash points the agent at an SMTP server that accepts
// the access token on flash and sends a test mail without any token
// request.
func (b *oauthBox) sendsWithTokenOnFlash() {
	b.t.Helper()
	srv := b.smtpAccepting(b.flash().AccessToken.Reveal())
	before := b.srv.Requests("")
	if _, err := b.a.SendTest(context.Background(), nil); err != nil {
		b.t.Fatalf("SendTest with the token on flash = %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		b.t.Errorf("SMTP server accepted %d mails, want 1", n)
	}
	if n := b.srv.Requests("") - before; n != 0 {
		b.t.Errorf("the test mail made %d token requests, want 0", n)
	}
}

// source is the token source the agent's mails use.
func (b *oauthBox) source() *oauth.Source {
	b.t.Helper()
	c := b.a.Config()
	_, src, err := b.a.oauthFor(&c)
	if err != nil {
		b.t.Fatal(err)
	}
	return src
}

func (b *oauthBox) checkNoViolations() {
	b.t.Helper()
	if v := b.srv.Violations(); len(v) != 0 {
		b.t.Errorf("authorization server violations: %q", v)
	}
}

// TestReauthRequiredThroughTheAgent lets the provider refuse the grant as
// it does in the field: the next mail fails with "re-authorisation
// required" and a hint, TokenStatus names the provider's code and the hint,
// further mails make no token request, and a new authorisation brings the
// state back to ok and the mail through.
func TestReauthRequiredThroughTheAgent(t *testing.T) {
	tests := []struct {
		name, mode string
		kill       func(*oauthtest.Server)
		wantError  []string // in the last error
		wantHint   string
	}{
		{"exchange injected AADSTS700082", "exchange", func(s *oauthtest.Server) {
			s.FailNext(1, oauthtest.Fault{Error: "invalid_grant", ErrorCodes: []int{700082}, Grant: oauthtest.GrantRefreshToken,
				Description: "AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2026-01-01T00:00:00Z and was inactive for 90.00:00:00."})
		}, []string{"invalid_grant", "AADSTS700082"}, "90 days"},
		{"exchange expired at the server", "exchange", (*oauthtest.Server).ExpireRefreshTokens, []string{"invalid_grant", "AADSTS700082"}, "90 days"},
		{"exchange revoked at the server", "exchange", (*oauthtest.Server).RevokeAll, []string{"invalid_grant", "AADSTS50173"}, "authorise again"},
		{"gmail injected", "gmail", func(s *oauthtest.Server) {
			s.FailNext(1, oauthtest.Fault{Error: "invalid_grant", Description: "Token has been expired or revoked.", Grant: oauthtest.GrantRefreshToken})
		}, []string{"invalid_grant", "Token has been expired or revoked."}, `"Testing"`},
		{"gmail revoked at the server", "gmail", (*oauthtest.Server).RevokeAll, []string{"invalid_grant"}, `"Testing"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			smtp := newSMTPServers(t)
			synctest.Test(t, func(t *testing.T) {
				b := newOAuthBox(t, smtp, tt.mode)
				b.mustAuthorize()
				b.sendsWithTokenOnFlash()
				b.smtpAccepting("no-such-token")
				time.Sleep(2 * time.Hour) // the access token has expired
				tt.kill(b.srv)
				before := b.srv.Requests("")

				_, err := b.a.SendTest(context.Background(), nil)
				if _, ok := errors.AsType[*oauth.ReauthError](err); !ok {
					t.Fatalf("SendTest on a dead grant = %v, want a *oauth.ReauthError", err)
				}
				if h := Hint(err); !strings.Contains(h, tt.wantHint) {
					t.Errorf("Hint = %q, want %q in it", h, tt.wantHint)
				}
				st := b.status()
				if st.State != oauth.StateReauthRequired || !strings.Contains(st.Hint, tt.wantHint) {
					t.Errorf("status: state %q, hint %q; want %s, %q", st.State, st.Hint, oauth.StateReauthRequired, tt.wantHint)
				}
				for _, w := range tt.wantError {
					if !strings.Contains(st.LastError, w) {
						t.Errorf("status: last error %q lacks %q", st.LastError, w)
					}
				}
				if f := b.flash(); f.State != oauth.StateReauthRequired || f.LastHint != st.Hint {
					t.Errorf("tokens.toml: state %q, hint %q", f.State, f.LastHint)
				}

				// No further token request, however often mail is tried.
				for i := range 3 {
					time.Sleep(time.Hour)
					_, err := b.a.SendTest(context.Background(), nil)
					if _, ok := errors.AsType[*oauth.ReauthError](err); !ok || !strings.Contains(Hint(err), tt.wantHint) {
						t.Errorf("mail %d after the refusal: %v (hint %q), want re-authorisation required with the hint", i+1, err, Hint(err))
					}
				}
				if n := b.srv.Requests("") - before; n != 1 {
					t.Errorf("server saw %d token requests since the refusal, want 1 (the refused one)", n)
				}

				b.mustAuthorize()
				if st := b.status(); st.State != oauth.StateOK || st.LastError != "" || st.Hint != "" || !st.HasRefreshToken {
					t.Errorf("status after a new authorisation: %+v", st)
				}
				b.sendsWithTokenOnFlash()
				b.checkNoViolations()
			})
		})
	}
}

// TestTransientFailureThroughTheAgent fails the refresh with a 503: the
// mail fails, TokenStatus says error with the next try, tokens.toml keeps
// the refresh token, no token request goes out before the next try, and
// the one after it recovers.
func TestTransientFailureThroughTheAgent(t *testing.T) {
	smtp := newSMTPServers(t)
	synctest.Test(t, func(t *testing.T) {
		b := newOAuthBox(t, smtp, "exchange")
		b.mustAuthorize()
		rt := b.flash().RefreshToken.Reveal()
		b.smtpAccepting("no-such-token")
		time.Sleep(2 * time.Hour)
		b.srv.FailNext(1, oauthtest.Fault{Status: http.StatusServiceUnavailable, Grant: oauthtest.GrantRefreshToken})
		before := b.srv.Requests("")

		_, err := b.a.SendTest(context.Background(), nil)
		if err == nil {
			t.Fatal("SendTest with the token server failing succeeded")
		}
		if _, ok := errors.AsType[*oauth.ReauthError](err); ok {
			t.Fatalf("a 503 asks for re-authorisation: %v", err)
		}
		st := b.status()
		if st.State != oauth.StateError || !strings.Contains(st.LastError, "503") {
			t.Errorf("status: state %q, last error %q; want error naming the 503", st.State, st.LastError)
		}
		if !st.RetryAt.After(time.Now()) {
			t.Fatalf("status: next try %v is not after now %v", st.RetryAt, time.Now())
		}
		if f := b.flash(); f.RefreshToken.Reveal() != rt || f.State != oauth.StateError {
			t.Errorf("tokens.toml: refresh token kept %v, state %q", f.RefreshToken.Reveal() == rt, f.State)
		}
		if live := b.srv.LiveRefreshTokens(); len(live) != 1 || live[0] != rt {
			t.Errorf("the server no longer accepts the refresh token on flash")
		}

		for i := range 3 {
			_, err := b.a.SendTest(context.Background(), nil)
			if err == nil || !strings.Contains(err.Error(), "next try at") {
				t.Errorf("mail %d during the backoff: %v, want an error naming the next try", i+1, err)
			}
			if got := b.status().RetryAt; !got.Equal(st.RetryAt) {
				t.Errorf("mail %d during the backoff moved the next try from %v to %v", i+1, st.RetryAt, got)
			}
		}
		if n := b.srv.Requests("") - before; n != 1 {
			t.Errorf("server saw %d token requests, want 1 (none during the backoff)", n)
		}

		// The server answers again.
		time.Sleep(time.Until(st.RetryAt) + time.Second)
		if _, err := b.source().Token(context.Background()); err != nil {
			t.Fatalf("token after the backoff: %v", err)
		}
		if st := b.status(); st.State != oauth.StateOK || st.LastError != "" || !st.RetryAt.IsZero() {
			t.Errorf("status after recovery: %+v", st)
		}
		if n := b.srv.Requests("") - before; n != 2 {
			t.Errorf("server saw %d token requests, want 2", n)
		}
		b.sendsWithTokenOnFlash()
		b.checkNoViolations()
	})
}

// TestNoRefreshTokenThroughTheAgent authorises with an answer that has no
// refresh token, on a new box and on one already authorised: the
// authorisation fails with the fix for the provider, and TokenStatus shows
// a state that is not ok, with the same fix, until a refresh with a grant
// that still works (or a new authorisation) makes it ok again.
func TestNoRefreshTokenThroughTheAgent(t *testing.T) {
	tests := []struct {
		mode, how string
		wantFix   string
	}{
		{"gmail", "paste", "prompt=consent"},
		{"exchange", "paste", "offline_access"},
		{"exchange", "device", "offline_access"},
	}
	for _, tt := range tests {
		for _, before := range []bool{false, true} {
			name := tt.mode + "/" + tt.how + "/new box"
			if before {
				name = tt.mode + "/" + tt.how + "/authorised before"
			}
			t.Run(name, func(t *testing.T) {
				smtp := newSMTPServers(t)
				synctest.Test(t, func(t *testing.T) {
					b := newOAuthBox(t, smtp, tt.mode)
					var rt string
					if before {
						b.mustAuthorize()
						rt = b.flash().RefreshToken.Reveal()
					}
					grant, authorize := oauthtest.GrantAuthorizationCode, b.authorizePaste
					if tt.how == "device" {
						grant, authorize = oauthtest.GrantDeviceCode, b.authorizeDevice
					}
					b.srv.FailNext(1, oauthtest.Fault{OmitRefreshToken: true, Grant: grant})
					err := authorize()
					if !errors.Is(err, oauth.ErrNoRefreshToken) {
						t.Fatalf("authorisation without a refresh token = %v, want ErrNoRefreshToken", err)
					}
					if h := Hint(err); !strings.Contains(h, tt.wantFix) {
						t.Errorf("Hint = %q, want %q in it", h, tt.wantFix)
					}
					st := b.status()
					if st.State == oauth.StateOK || st.State == "not_authorised" || !strings.Contains(st.Hint, tt.wantFix) {
						t.Errorf("status: state %q, hint %q; want a failed state with %q", st.State, st.Hint, tt.wantFix)
					}
					if st.LastError == "" {
						t.Errorf("status: no last error")
					}
					f := b.flash()
					if f.State == oauth.StateOK || f.State == "" {
						t.Errorf("tokens.toml: state %q", f.State)
					}
					if f.RefreshToken.Reveal() != rt {
						t.Errorf("tokens.toml: the refresh token changed (had one: %v)", before)
					}
					if before {
						// The earlier grant still works: the next refresh says so.
						time.Sleep(2 * time.Hour)
						if _, err := b.source().Token(context.Background()); err != nil {
							t.Fatalf("token from the earlier grant: %v", err)
						}
					} else {
						b.mustAuthorize()
					}
					if st := b.status(); st.State != oauth.StateOK || st.Hint != "" {
						t.Errorf("status afterwards: state %q, hint %q", st.State, st.Hint)
					}
					b.sendsWithTokenOnFlash()
					b.checkNoViolations()
				})
			})
		}
	}
}

// TestFailedSignInKeepsAWorkingGrant declines a new sign-in on a box that
// is authorised: the failure is the authorisation's, and the state of the
// grant in place stays ok.
func TestFailedSignInKeepsAWorkingGrant(t *testing.T) {
	smtp := newSMTPServers(t)
	synctest.Test(t, func(t *testing.T) {
		b := newOAuthBox(t, smtp, "exchange")
		b.mustAuthorize()
		rt := b.flash().RefreshToken.Reveal()
		b.srv.DenyNext()
		err := b.authorizePaste()
		if err == nil || !strings.Contains(Hint(err), "authorise again") {
			t.Fatalf("declined sign-in = %v (hint %q), want an error with a hint", err, Hint(err))
		}
		if st := b.status(); st.State != oauth.StateOK || st.LastError != "" {
			t.Errorf("status after a declined sign-in: state %q, last error %q", st.State, st.LastError)
		}
		if f := b.flash(); f.RefreshToken.Reveal() != rt || f.State != oauth.StateOK {
			t.Errorf("tokens.toml after a declined sign-in: state %q, refresh token kept %v", f.State, f.RefreshToken.Reveal() == rt)
		}
		b.sendsWithTokenOnFlash()
		b.checkNoViolations()
	})
}
