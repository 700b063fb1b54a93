package oauth_test

// Provider rules (issue 13) against the strict test server: each test
// models what a real provider refuses, with the source in oauthtest.

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"mailagent/appliance/config"
	"mailagent/appliance/oauth"
	"mailagent/appliance/oauthtest"
	"mailagent/board"
)

// deviceBox signs an exchange-mode box in with a device code at srv, the
// way agent.DeviceAuthorize does, and returns it.
func deviceBox(t *testing.T, srv *oauthtest.Server) *lcBox {
	t.Helper()
	cfg := exchangeConfig(srv)
	cl, err := oauth.NewClient(oauth.ClientOptions{Config: cfg, HTTP: srv.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), oauth.TokensFileName)
	src, err := oauth.NewSource(oauth.SourceOptions{Path: path, Grant: cl, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	da, err := cl.DeviceAuth(t.Context())
	if err != nil {
		t.Fatalf("DeviceAuth = %v", err)
	}
	srv.ApproveDevice(da.UserCode)
	tok, err := cl.DevicePoll(t.Context(), da)
	if err != nil {
		t.Fatalf("DevicePoll = %v", err)
	}
	if err := src.AuthorizedBy(t.Context(), tok, lcMailbox, oauth.GrantDeviceCode); err != nil {
		t.Fatalf("AuthorizedBy = %v", err)
	}
	return &lcBox{srv: srv, client: cl, src: src, path: path}
}

// TestDeviceCodeGrantRefreshesAsPublicClient: Entra treats a device-code
// grant as a public client's and refuses a refresh that presents the
// client secret (AADSTS700025), although the app has one; the box must
// keep refreshing, and the grant is recorded in tokens.toml.
func TestDeviceCodeGrantRefreshesAsPublicClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := deviceBox(t, microsoftServer(t, true))
		if g := b.flash(t).Grant; g != oauth.GrantDeviceCode {
			t.Errorf("tokens.toml grant = %q, want %q", g, oauth.GrantDeviceCode)
		}
		cur, err := b.src.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			next, err := b.src.Refresh(t.Context(), cur)
			if err != nil {
				t.Fatalf("refresh %d of the device-code grant: %v", i+1, err)
			}
			cur = next
		}
		if st := b.src.Status(); st.State != oauth.StateOK {
			t.Errorf("state %q after the refreshes, want ok", st.State)
		}
		b.checkNoViolations(t)
	})
}

// TestDeviceCodeGrantOfAnOldFile: a tokens.toml from before grants were
// recorded refreshes as before, with the secret; for a device-code grant
// Entra refuses that (AADSTS700025), and the box says to sign in again,
// which records the grant.
func TestDeviceCodeGrantOfAnOldFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var refused []string
		srv := oauthtest.NewServer(t, oauthtest.Options{Flavour: oauthtest.Microsoft, Rotation: oauthtest.RotateRevokeOnReuse,
			Account: lcMailbox, InProcess: true, Report: func(v string) { refused = append(refused, v) },
			Clients: []oauthtest.Client{{ID: lcClientID, Secret: lcSecret, Auth: oauthtest.AuthPost, RedirectURIs: []string{lcRedirect}}}})
		b := deviceBox(t, srv)
		// The file as an older mailagent wrote it: no grant.
		f := b.flash(t)
		f.Grant = ""
		if err := oauth.SaveTokens(b.path, &f); err != nil {
			t.Fatal(err)
		}
		src, err := oauth.NewSource(oauth.SourceOptions{Path: b.path, Grant: b.client, Config: exchangeConfig(srv)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.Token(t.Context())
		var re *oauth.ReauthError
		if !errors.As(err, &re) {
			t.Fatalf("Token = %v, want re-authorisation required", err)
		}
		if st := src.Status(); st.State != oauth.StateReauthRequired || !strings.Contains(st.Hint, "authorise again") || !strings.Contains(st.LastError, "AADSTS700025") {
			t.Errorf("status %q, %q, hint %q: want reauth_required with AADSTS700025 and to authorise again", st.State, st.LastError, st.Hint)
		}
		if len(refused) != 1 {
			t.Errorf("server reported %q, want the one refused refresh", refused)
		}
	})
}

// TestDeviceCodeNeedsPublicClientFlows: an app without "Allow public
// client flows" refuses the public device-code poll with AADSTS7000218;
// the hint names the switch and where it is.
func TestDeviceCodeNeedsPublicClientFlows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := oauthtest.NewServer(t, oauthtest.Options{
			Flavour: oauthtest.Microsoft, Account: lcMailbox, InProcess: true, NoPublicClientFlows: true,
			Clients: []oauthtest.Client{{ID: lcClientID, Secret: lcSecret, Auth: oauthtest.AuthPost, RedirectURIs: []string{lcRedirect}}},
		})
		cl, err := oauth.NewClient(oauth.ClientOptions{Config: exchangeConfig(srv), HTTP: srv.HTTPClient()})
		if err != nil {
			t.Fatal(err)
		}
		da, err := cl.DeviceAuth(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		srv.ApproveDevice(da.UserCode)
		_, err = cl.DevicePoll(t.Context(), da)
		var pe *oauth.ProviderError
		if !errors.As(err, &pe) || pe.Code != "invalid_client" {
			t.Fatalf("DevicePoll = %v, want invalid_client", err)
		}
		for _, want := range []string{"Allow public client flows", "Authentication → Advanced settings"} {
			if !strings.Contains(pe.Hint(), want) {
				t.Errorf("hint %q lacks %q", pe.Hint(), want)
			}
		}
		if strings.Contains(err.Error()+pe.Hint(), lcSecret) {
			t.Error("the client secret is in the error")
		}
	})
}

const (
	saEmail = "alarms@mailagent-test.iam.gserviceaccount.com"
	saKeyID = "kid-sa-clock"
)

// serviceAccountBox is a google-service-account box at a Google-flavoured
// srv that knows its key and lets it act as lcMailbox.
func serviceAccountBox(t *testing.T) (*oauthtest.Server, *oauth.Source, string) {
	t.Helper()
	key, _ := oauthtest.KeyPair(t, "service-account-clock")
	srv := oauthtest.NewServer(t, oauthtest.Options{Flavour: oauthtest.Google, InProcess: true,
		ServiceAccounts: []oauthtest.ServiceAccount{{Email: saEmail, KeyID: saKeyID, PublicKey: &key.PublicKey, Subjects: []string{lcMailbox}}}})
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := config.Config{Mail: config.Mail{From: lcMailbox, To: []string{"ops@example.test"}}}
	c.SMTP.Auth = "oauth2"
	c.OAuth2 = config.OAuth2{Mode: "google-service-account", ClientID: "104242424242424242424", ClientEmail: saEmail,
		PrivateKeyID: saKeyID, PrivateKey: config.NewSecret(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))),
		Subject: lcMailbox, TokenURL: srv.TokenURL()}
	cfg := c.WithDefaults(board.Profile{})
	cl, err := oauth.NewClient(oauth.ClientOptions{Config: &cfg, HTTP: srv.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), oauth.TokensFileName)
	src, err := oauth.NewSource(oauth.SourceOptions{Path: path, Grant: cl, Config: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	return srv, src, path
}

// TestServiceAccountClockOffRecovers: Google checks a service account's
// JWT (iat, exp) against its own clock and answers invalid_grant "Invalid
// JWT: Token must be a short-lived token (60 minutes) and in a reasonable
// timeframe" when the box's clock is off. No person can fix that by
// signing in: the state is error (not reauth_required), status says the
// clock is off and by how much, and the box gets its token by itself once
// the clock is right.
func TestServiceAccountClockOffRecovers(t *testing.T) {
	for _, off := range []struct {
		d    time.Duration
		said string
	}{{10 * time.Minute, "10m0s ahead"}, {25 * time.Hour, "25h0m0s ahead"}} {
		t.Run(off.said, func(t *testing.T) { serviceAccountClockOff(t, off.d, off.said) })
	}
}

func serviceAccountClockOff(t *testing.T, off time.Duration, said string) {
	synctest.Test(t, func(t *testing.T) {
		srv, src, path := serviceAccountBox(t)
		srv.Advance(-off) // the box's clock is ahead
		_, err := src.Token(t.Context())
		if err == nil {
			t.Fatalf("Token with the clock %s: no error", said)
		}
		if !errors.Is(err, oauth.ErrClockSkew) {
			t.Errorf("Token = %v, want ErrClockSkew", err)
		}
		st := src.Status()
		if st.State != oauth.StateError {
			t.Errorf("state %q, want %q (a person cannot fix the clock by signing in)", st.State, oauth.StateError)
		}
		for _, want := range []string{said} {
			if !strings.Contains(st.LastError, want) || !strings.Contains(st.Hint, want) {
				t.Errorf("status error %q, hint %q: want %q in both", st.LastError, st.Hint, want)
			}
		}
		if !strings.Contains(st.Hint, "NTP") {
			t.Errorf("hint %q does not name NTP", st.Hint)
		}

		srv.Advance(off)        // NTP set the clock
		time.Sleep(time.Minute) // past the first backoff (30 s ±20 %)
		if _, err := src.Token(t.Context()); err != nil {
			t.Fatalf("Token once the clock is right = %v", err)
		}
		if st := src.Status(); st.State != oauth.StateOK {
			t.Errorf("state %q once the clock is right, want ok", st.State)
		}
		if f, err := oauth.LoadTokens(path); err != nil {
			t.Error(err)
		} else if f.Tokens.Grant != oauth.GrantJWTBearer {
			t.Errorf("tokens.toml grant %q, want %q", f.Tokens.Grant, oauth.GrantJWTBearer)
		}
		if v := srv.Violations(); len(v) != 0 {
			t.Errorf("violations: %q", v)
		}
	})
}

// TestGmailAuthURLOverrideSendsEachParameterOnce: an oauth2.auth_url that
// already carries access_type and prompt (copied from a guide) must not
// make them appear twice: the providers refuse a repeated parameter (RFC
// 6749 §3.1; Google: 400 invalid_request), which oauthtest does too.
func TestGmailAuthURLOverrideSendsEachParameterOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := oauthtest.NewServer(t, oauthtest.Options{Flavour: oauthtest.Google, Account: lcMailbox, InProcess: true,
			Clients: []oauthtest.Client{{ID: lcClientID, Secret: lcSecret, Auth: oauthtest.AuthPost, RedirectURIs: []string{lcRedirect}}}})
		c := config.Config{Mail: config.Mail{From: lcMailbox, To: []string{"ops@example.test"}}}
		c.SMTP.Auth = "oauth2"
		c.OAuth2 = config.OAuth2{Mode: "gmail", ClientID: lcClientID, ClientSecret: config.NewSecret(lcSecret), RedirectURL: lcRedirect,
			AuthURL: srv.AuthURL() + "?access_type=offline&prompt=consent&include_granted_scopes=true", TokenURL: srv.TokenURL()}
		cfg := c.WithDefaults(board.Profile{})
		cl, err := oauth.NewClient(oauth.ClientOptions{Config: &cfg, HTTP: srv.HTTPClient()})
		if err != nil {
			t.Fatal(err)
		}
		authURL, p, err := cl.Start()
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(authURL)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		for k, vs := range q {
			if len(vs) != 1 {
				t.Errorf("parameter %s sent %d times: %q", k, len(vs), vs)
			}
		}
		if q.Get("access_type") != "offline" || q.Get("prompt") != "consent" || q.Get("include_granted_scopes") != "true" || q.Get("state") != p.State {
			t.Errorf("authorisation query %v: want the override's parameters and mailagent's state", q)
		}
		tok, err := cl.Finish(t.Context(), p, srv.Authorize(t, authURL))
		if err != nil || tok.RefreshToken == "" {
			t.Fatalf("Finish = %v, %v; want tokens with a refresh token", tok, err)
		}
	})
}

// TestMicrosoftErrorHints: Microsoft's answers, as the strict server gives
// them, map to the hint that fixes them.
func TestMicrosoftErrorHints(t *testing.T) {
	appBox := func(t *testing.T, srv *oauthtest.Server, scopes ...string) *oauth.Client {
		t.Helper()
		c := config.Config{Mail: config.Mail{From: lcMailbox, To: []string{"ops@example.test"}}}
		c.SMTP.Auth = "oauth2"
		c.OAuth2 = config.OAuth2{Mode: "microsoft-app", ClientID: lcClientID, ClientSecret: config.NewSecret(lcSecret),
			Tenant: srv.Tenant(), Authority: srv.URL() + "/", Scopes: scopes}
		cfg := c.WithDefaults(board.Profile{})
		cl, err := oauth.NewClient(oauth.ClientOptions{Config: &cfg, HTTP: srv.HTTPClient()})
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	tests := []struct {
		name  string
		run   func(t *testing.T, srv *oauthtest.Server) error
		aad   string
		want  []string
		never string
	}{
		{name: "code expired at redemption (70008)", aad: "AADSTS70008", want: []string{"authorisation code expired", "10 minutes"}, never: "90 days",
			run: func(t *testing.T, srv *oauthtest.Server) error {
				cl, err := oauth.NewClient(oauth.ClientOptions{Config: exchangeConfig(srv), HTTP: srv.HTTPClient()})
				if err != nil {
					t.Fatal(err)
				}
				u, p, err := cl.Start()
				if err != nil {
					t.Fatal(err)
				}
				back := srv.Authorize(t, u)
				time.Sleep(11 * time.Minute) // the admin pasted the address back too late
				_, err = cl.Finish(t.Context(), p, back)
				return err
			}},
		{name: "resource not in the tenant (500011)", aad: "AADSTS500011", want: []string{"not in this tenant", "https://outlook.office365.com/.default"},
			run: func(t *testing.T, srv *oauthtest.Server) error {
				_, err := appBox(t, srv, "https://outlook.office365.us/.default").Obtain(t.Context())
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := oauthtest.NewServer(t, oauthtest.Options{Flavour: oauthtest.Microsoft, Account: lcMailbox, InProcess: true,
					Clients: []oauthtest.Client{{ID: lcClientID, Secret: lcSecret, Auth: oauthtest.AuthPost, RedirectURIs: []string{lcRedirect}, Mailbox: lcMailbox}}})
				err := tt.run(t, srv)
				var pe *oauth.ProviderError
				if !errors.As(err, &pe) || !strings.HasPrefix(pe.Description, tt.aad) {
					t.Fatalf("error %v, want %s", err, tt.aad)
				}
				for _, w := range tt.want {
					if !strings.Contains(pe.Hint(), w) {
						t.Errorf("hint %q lacks %q", pe.Hint(), w)
					}
				}
				if tt.never != "" && strings.Contains(pe.Hint(), tt.never) {
					t.Errorf("hint %q says %q", pe.Hint(), tt.never)
				}
				if strings.Contains(err.Error()+pe.Hint(), lcSecret) {
					t.Error("the client secret is in the error")
				}
			})
		})
	}
}
