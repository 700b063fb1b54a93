package oauth_test

// The token lifecycle (Source) over the real Client against the strict
// test authorization server: rotation, single flight, backoff. The unit
// tests in source_test.go use a fake grant; these go through HTTP, x/oauth2
// and a server that fails the test on any protocol violation.

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"mailagent/appliance/config"
	"mailagent/appliance/oauth"
	"mailagent/appliance/oauthtest"
	"mailagent/board"
)

const (
	lcRedirect = "https://box.example.test/auth.htm"
	lcClientID = "app-lifecycle"
	lcSecret   = "lifecycle-secret"
	lcMailbox  = "alarm@example.test"
)

// microsoftServer is a strict Microsoft server that rotates the refresh
// token on every use and revokes the grant when an old one comes back.
func microsoftServer(t *testing.T, inProcess bool) *oauthtest.Server {
	return oauthtest.NewServer(t, oauthtest.Options{
		Flavour:   oauthtest.Microsoft,
		Rotation:  oauthtest.RotateRevokeOnReuse,
		Account:   lcMailbox,
		InProcess: inProcess,
		Clients: []oauthtest.Client{{ID: lcClientID, Secret: lcSecret, Auth: oauthtest.AuthPost,
			RedirectURIs: []string{lcRedirect}}},
	})
}

// exchangeConfig is mode exchange pointed at srv, with defaults filled in.
func exchangeConfig(srv *oauthtest.Server) *config.Config {
	c := config.Config{Mail: config.Mail{From: lcMailbox, To: []string{"ops@example.test"}}}
	c.SMTP.Auth = "oauth2"
	c.OAuth2 = config.OAuth2{Mode: "exchange", ClientID: lcClientID, ClientSecret: config.NewSecret(lcSecret),
		Tenant: srv.Tenant(), Authority: srv.URL() + "/", RedirectURL: lcRedirect}
	d := c.WithDefaults(board.Profile{})
	return &d
}

// lcBox is a box in mode exchange whose administrator has signed in once.
type lcBox struct {
	srv    *oauthtest.Server
	client *oauth.Client
	src    *oauth.Source
	path   string // tokens.toml
}

// newLCBox authorises an exchange-mode box at srv the way auth.htm does
// (Start, the user signs in, Finish, Authorized) and returns it. hc, if not
// nil, makes the token requests.
func newLCBox(t *testing.T, srv *oauthtest.Server, hc *http.Client) *lcBox {
	t.Helper()
	cfg := exchangeConfig(srv)
	cl, err := oauth.NewClient(oauth.ClientOptions{Config: cfg, HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), oauth.TokensFileName)
	src, err := oauth.NewSource(oauth.SourceOptions{Path: path, Grant: cl, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	b := &lcBox{srv: srv, client: cl, src: src, path: path}
	b.authorize(t)
	return b
}

func (b *lcBox) authorize(t *testing.T) {
	t.Helper()
	authURL, p, err := b.client.Start()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := b.client.Finish(t.Context(), p, b.srv.Authorize(t, authURL))
	if err != nil {
		t.Fatalf("Finish = %v", err)
	}
	if err := b.src.Authorized(t.Context(), tok, lcMailbox); err != nil {
		t.Fatalf("Authorized = %v", err)
	}
}

// flash reads tokens.toml as it is on flash now.
func (b *lcBox) flash(t *testing.T) oauth.Tokens {
	t.Helper()
	f, err := oauth.LoadTokens(b.path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Missing || f.Damaged != nil {
		t.Fatalf("tokens.toml: missing %v, damaged %v", f.Missing, f.Damaged)
	}
	return f.Tokens
}

// live is the refresh token the server issued last and still accepts.
// With RotateRevokeOnReuse a grant has one live refresh token; there are
// more only when an earlier grant was not revoked (an injected refusal).
func (b *lcBox) live(t *testing.T) string {
	t.Helper()
	live := b.srv.LiveRefreshTokens()
	if len(live) == 0 {
		t.Fatal("server has no live refresh token")
	}
	return live[len(live)-1]
}

// checkOneLive fails unless the server accepts exactly one refresh token.
func (b *lcBox) checkOneLive(t *testing.T) {
	t.Helper()
	if n := len(b.srv.LiveRefreshTokens()); n != 1 {
		t.Errorf("server has %d live refresh tokens, want 1", n)
	}
}

// checkFlashHoldsLive fails unless tokens.toml holds the server's one live
// refresh token.
func (b *lcBox) checkFlashHoldsLive(t *testing.T, when string) {
	t.Helper()
	if got, want := b.flash(t).RefreshToken.Reveal(), b.live(t); got != want {
		t.Errorf("%s: tokens.toml holds a refresh token the server does not accept (the live one is another)", when)
	}
}

func (b *lcBox) checkNoViolations(t *testing.T) {
	t.Helper()
	if n := b.srv.Reuses(); n != 0 {
		t.Errorf("server saw %d uses of rotated-out refresh tokens, want 0", n)
	}
	if v := b.srv.Violations(); len(v) != 0 {
		t.Errorf("violations: %q", v)
	}
}

// TestRotationFiftyForcedRefreshes forces 50 refreshes, each as after an
// SMTP server refused the access token, against a server that rotates the
// refresh token every time and revokes the grant if a rotated-out one is
// ever used again. After every refresh, tokens.toml must already hold the
// new refresh token (the one the server now accepts) by the time the new
// access token is handed out.
func TestRotationFiftyForcedRefreshes(t *testing.T) {
	const n = 50
	b := newLCBox(t, microsoftServer(t, false), nil)
	ctx := t.Context()
	b.checkFlashHoldsLive(t, "after authorisation")
	before := b.srv.Requests(oauthtest.GrantRefreshToken)
	cur, err := b.src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seenAccess := map[string]bool{cur: true}
	seenRefresh := map[string]bool{b.flash(t).RefreshToken.Reveal(): true}
	for i := range n {
		next, err := b.src.Refresh(ctx, cur)
		if err != nil {
			t.Fatalf("refresh %d: %v", i+1, err)
		}
		if seenAccess[next] {
			t.Fatalf("refresh %d handed out an access token seen before", i+1)
		}
		seenAccess[next] = true
		b.checkFlashHoldsLive(t, fmt.Sprintf("refresh %d", i+1))
		rt := b.flash(t).RefreshToken.Reveal()
		if seenRefresh[rt] {
			t.Fatalf("refresh %d: the refresh token on flash did not change (the server rotates on every refresh)", i+1)
		}
		seenRefresh[rt] = true
		cur = next
	}
	if got := b.srv.Requests(oauthtest.GrantRefreshToken) - before; got != n {
		t.Errorf("server saw %d refresh requests, want %d", got, n)
	}
	b.checkOneLive(t)
	if st := b.src.Status(); st.State != oauth.StateOK || !st.HasRefreshToken {
		t.Errorf("status after %d refreshes: state %q, refresh token %v", n, st.State, st.HasRefreshToken)
	}
	b.checkNoViolations(t)
}

// TestRotationTwoProcessesOneFile refreshes alternately from two Sources
// over the same tokens.toml, as the agent and a "mailagent test" beside it
// do: each must take over the refresh token the other rotated instead of
// using its own rotated-out one.
func TestRotationTwoProcessesOneFile(t *testing.T) {
	const rounds = 10
	b := newLCBox(t, microsoftServer(t, false), nil)
	other, err := oauth.NewSource(oauth.SourceOptions{Path: b.path, Grant: b.client, Config: exchangeConfig(b.srv)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	before := b.srv.Requests(oauthtest.GrantRefreshToken)
	curA, err := b.src.Token(ctx) // from the authorisation
	if err != nil {
		t.Fatal(err)
	}
	var curB string // none yet: the second process's first Token refreshes
	for i := range rounds {
		if curA, err = b.src.Refresh(ctx, curA); err != nil {
			t.Fatalf("round %d, first process: %v", i+1, err)
		}
		b.checkFlashHoldsLive(t, fmt.Sprintf("round %d, first process", i+1))
		if curB, err = other.Refresh(ctx, curB); err != nil {
			t.Fatalf("round %d, second process: %v", i+1, err)
		}
		b.checkFlashHoldsLive(t, fmt.Sprintf("round %d, second process", i+1))
	}
	if got := b.srv.Requests(oauthtest.GrantRefreshToken) - before; got != 2*rounds {
		t.Errorf("server saw %d refresh requests, want %d", got, 2*rounds)
	}
	b.checkOneLive(t)
	b.checkNoViolations(t)
}

// TestConcurrentSendersOneRefresh lets 20 senders ask for a token at once
// when the access token has expired, while the server holds its answer
// back: exactly one refresh request reaches the server, and all 20 get the
// access token it returned.
func TestConcurrentSendersOneRefresh(t *testing.T) {
	const senders = 20
	synctest.Test(t, func(t *testing.T) {
		srv := microsoftServer(t, true)
		b := newLCBox(t, srv, srv.HTTPClient())
		ctx := t.Context()
		old, err := b.src.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour + time.Second) // the access token (1 h) has expired
		before := srv.Requests(oauthtest.GrantRefreshToken)
		srv.FailNext(1, oauthtest.Fault{Delay: 10 * time.Second, Grant: oauthtest.GrantRefreshToken})

		var wg sync.WaitGroup
		var got [senders]string
		var errs [senders]error
		for i := range senders {
			wg.Go(func() { got[i], errs[i] = b.src.Token(ctx) })
		}
		synctest.Wait()
		// Every sender is blocked now: one in the held request, the others
		// waiting for it.
		if n := srv.Requests(oauthtest.GrantRefreshToken) - before; n != 1 {
			t.Errorf("while the answer is held back, the server has seen %d refresh requests, want 1", n)
		}
		wg.Wait()
		for i := range senders {
			switch {
			case errs[i] != nil:
				t.Errorf("sender %d: %v", i, errs[i])
			case got[i] == old:
				t.Errorf("sender %d got the expired access token", i)
			case got[i] != got[0]:
				t.Errorf("sender %d got another access token than sender 0", i)
			}
		}
		if n := srv.Requests(oauthtest.GrantRefreshToken) - before; n != 1 {
			t.Errorf("%d senders on an expired token caused %d refresh requests, want 1", senders, n)
		}
		b.checkFlashHoldsLive(t, "after the shared refresh")
		b.checkOneLive(t)
		b.checkNoViolations(t)
	})
}

// TestTransientFailuresKeepTokensAndBackOff fails the refresh with 5xx
// answers and with a server that does not answer within the client's
// timeout: the refresh token stays on flash and live at the server, the
// state is error with a next-try time, no request goes out before that
// time, and the next try after it recovers.
func TestTransientFailuresKeepTokensAndBackOff(t *testing.T) {
	const clientTimeout = 30 * time.Second
	tests := []struct {
		name    string
		fault   oauthtest.Fault
		wantErr string // in status's last error
	}{
		{"503 page", oauthtest.Fault{Status: http.StatusServiceUnavailable}, "503"},
		{"500 server_error", oauthtest.Fault{Status: http.StatusInternalServerError, Error: "server_error",
			Description: "AADSTS90033: A transient error has occurred. Please try again.", ErrorCodes: []int{90033}}, "server_error"},
		{"429 temporarily_unavailable", oauthtest.Fault{Status: http.StatusTooManyRequests, Error: "temporarily_unavailable"}, "temporarily_unavailable"},
		{"timeout", oauthtest.Fault{Delay: time.Hour}, "deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := microsoftServer(t, true)
				hc := &http.Client{Transport: srv.HTTPClient().Transport, Timeout: clientTimeout}
				b := newLCBox(t, srv, hc)
				ctx := t.Context()
				rt := b.flash(t).RefreshToken.Reveal()
				time.Sleep(time.Hour + time.Second) // the access token has expired

				fault := tt.fault
				fault.Grant = oauthtest.GrantRefreshToken
				srv.FailNext(2, fault)
				before := srv.Requests("")
				var retryAt, failedAt [2]time.Time
				for i := range 2 {
					_, err := b.src.Token(ctx)
					if err == nil {
						t.Fatalf("failure %d: Token succeeded", i+1)
					}
					if _, ok := errors.AsType[*oauth.ReauthError](err); ok {
						t.Fatalf("failure %d: a transient failure asks for re-authorisation: %v", i+1, err)
					}
					failedAt[i] = time.Now()
					st := b.src.Status()
					if st.State != oauth.StateError || !strings.Contains(st.LastError, tt.wantErr) {
						t.Errorf("failure %d: status state %q, last error %q; want error, %q", i+1, st.State, st.LastError, tt.wantErr)
					}
					if !st.RetryAt.After(failedAt[i]) {
						t.Fatalf("failure %d: next try %v is not after the failure at %v", i+1, st.RetryAt, failedAt[i])
					}
					retryAt[i] = st.RetryAt
					if f := b.flash(t); f.RefreshToken.Reveal() != rt || f.State != oauth.StateError {
						t.Errorf("failure %d: tokens.toml lost the refresh token or has state %q", i+1, f.State)
					}
					if live := b.live(t); live != rt {
						t.Errorf("failure %d: the server no longer accepts the refresh token on flash", i+1)
					}
					// Senders during the backoff get an error that says when,
					// and nothing reaches the server.
					for range 5 {
						_, err := b.src.Token(ctx)
						if err == nil || !strings.Contains(err.Error(), "next try at") {
							t.Errorf("failure %d: Token during the backoff = %v, want an error naming the next try", i+1, err)
						}
					}
					time.Sleep(time.Until(retryAt[i]) - time.Second)
					if _, err := b.src.Token(ctx); err == nil {
						t.Errorf("failure %d: Token a second before the next try succeeded", i+1)
					}
					if got := srv.Requests("") - before; got != i+1 {
						t.Fatalf("failure %d: the server saw %d requests by the end of the backoff, want %d", i+1, got, i+1)
					}
					time.Sleep(time.Until(retryAt[i]) + time.Second)
				}
				if first, second := retryAt[0].Sub(failedAt[0]), retryAt[1].Sub(failedAt[1]); second <= first {
					t.Errorf("backoff did not grow: %v after the first failure, %v after the second", first, second)
				}

				// The server answers again.
				tok, err := b.src.Token(ctx)
				if err != nil || tok == "" {
					t.Fatalf("Token after the backoff = %v", err)
				}
				if got := srv.Requests("") - before; got != 3 {
					t.Errorf("server saw %d requests in all, want 3 (two failures, one recovery)", got)
				}
				st := b.src.Status()
				if st.State != oauth.StateOK || st.LastError != "" || !st.RetryAt.IsZero() {
					t.Errorf("status after recovery: state %q, last error %q, next try %v", st.State, st.LastError, st.RetryAt)
				}
				if f := b.flash(t); f.State != oauth.StateOK || f.RefreshToken.Reveal() == rt {
					t.Errorf("tokens.toml after recovery: state %q, refresh token rotated %v", f.State, f.RefreshToken.Reveal() != rt)
				}
				b.checkFlashHoldsLive(t, "after recovery")
				b.checkNoViolations(t)
			})
		})
	}
}

// TestTransientFailureKeepsALiveAccessToken fails the refresh ahead of
// expiry: the access token that still works goes on being handed out.
func TestTransientFailureKeepsALiveAccessToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := microsoftServer(t, true)
		b := newLCBox(t, srv, srv.HTTPClient())
		ctx := t.Context()
		old, err := b.src.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Hour - oauth.DefaultAhead + time.Second) // inside the refresh-ahead window
		srv.FailNext(1, oauthtest.Fault{Status: http.StatusBadGateway, Grant: oauthtest.GrantRefreshToken})
		before := srv.Requests("")
		got, err := b.src.Token(ctx)
		if err != nil || got != old {
			t.Fatalf("Token with a failing refresh ahead of expiry = %v, same token %v; want the old token", err, got == old)
		}
		if n := srv.Requests("") - before; n != 1 {
			t.Errorf("server saw %d requests, want 1", n)
		}
		if st := b.src.Status(); st.State != oauth.StateError || st.RetryAt.IsZero() {
			t.Errorf("status: state %q, next try %v; want error with a next try", st.State, st.RetryAt)
		}
		if got, err := b.src.Token(ctx); err != nil || got != old {
			t.Errorf("Token during the backoff = %v; want the old token", err)
		}
		if n := srv.Requests("") - before; n != 1 {
			t.Errorf("server saw %d requests, want 1 (none during the backoff)", n)
		}
		b.checkFlashHoldsLive(t, "after the failed refresh")
		b.checkNoViolations(t)
	})
}

// TestInvalidGrantStopsTokenRequests makes the grant die at the server in
// the ways providers kill one: the state becomes reauth_required with the
// provider's code and a hint, and no token request goes out again until a
// new authorisation, which brings the state back to ok.
func TestInvalidGrantStopsTokenRequests(t *testing.T) {
	tests := []struct {
		name               string
		kill               func(*oauthtest.Server)
		wantError, wantFix string
	}{
		{"injected AADSTS700082", func(s *oauthtest.Server) {
			s.FailNext(1, oauthtest.Fault{Error: "invalid_grant", ErrorCodes: []int{700082},
				Description: "AADSTS700082: The refresh token has expired due to inactivity.", Grant: oauthtest.GrantRefreshToken})
		}, "invalid_grant: AADSTS700082", "90 days"},
		{"expired at the server", (*oauthtest.Server).ExpireRefreshTokens, "AADSTS700082", "90 days"},
		{"revoked at the server", (*oauthtest.Server).RevokeAll, "AADSTS50173", "authorise again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := microsoftServer(t, true)
				b := newLCBox(t, srv, srv.HTTPClient())
				ctx := t.Context()
				time.Sleep(time.Hour + time.Second)
				tt.kill(srv)
				before := srv.Requests("")
				_, err := b.src.Token(ctx)
				re, ok := errors.AsType[*oauth.ReauthError](err)
				if !ok {
					t.Fatalf("Token on a dead grant = %v, want a *oauth.ReauthError", err)
				}
				if !strings.Contains(re.Error(), tt.wantError) || !strings.Contains(re.Hint(), tt.wantFix) {
					t.Errorf("error %q, hint %q; want %q, %q", re.Error(), re.Hint(), tt.wantError, tt.wantFix)
				}
				st := b.src.Status()
				if st.State != oauth.StateReauthRequired || !strings.Contains(st.LastError, tt.wantError) || !strings.Contains(st.Hint, tt.wantFix) {
					t.Errorf("status: state %q, last error %q, hint %q", st.State, st.LastError, st.Hint)
				}
				if f := b.flash(t); f.State != oauth.StateReauthRequired || !strings.Contains(f.LastError, tt.wantError) {
					t.Errorf("tokens.toml: state %q, last error %q", f.State, f.LastError)
				}
				// No retry storm: not now, not in a day, not on a refused
				// access token, not on a keep-alive.
				for range 3 {
					if _, err := b.src.Token(ctx); !isReauth(err) {
						t.Errorf("Token = %v, want re-authorisation required", err)
					}
				}
				time.Sleep(24 * time.Hour)
				if _, err := b.src.Token(ctx); !isReauth(err) {
					t.Errorf("Token a day later = %v, want re-authorisation required", err)
				}
				if _, err := b.src.Refresh(ctx, "refused"); !isReauth(err) {
					t.Errorf("Refresh = %v, want re-authorisation required", err)
				}
				if err := b.src.KeepAlive(ctx, time.Hour); !isReauth(err) {
					t.Errorf("KeepAlive = %v, want re-authorisation required", err)
				}
				if n := srv.Requests("") - before; n != 1 {
					t.Errorf("server saw %d token requests, want 1 (none after the refusal)", n)
				}

				b.authorize(t)
				if st := b.src.Status(); st.State != oauth.StateOK || st.LastError != "" || st.Hint != "" {
					t.Errorf("status after a new authorisation: state %q, last error %q, hint %q", st.State, st.LastError, st.Hint)
				}
				if _, err := b.src.Token(ctx); err != nil {
					t.Errorf("Token after a new authorisation = %v", err)
				}
				b.checkFlashHoldsLive(t, "after a new authorisation")
				if v := srv.Violations(); len(v) != 0 {
					t.Errorf("violations: %q", v)
				}
			})
		})
	}
}

func isReauth(err error) bool {
	_, ok := errors.AsType[*oauth.ReauthError](err)
	return ok
}
