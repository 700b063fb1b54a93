package oauthtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestPasswordGrant(t *testing.T) {
	good := func() url.Values {
		return url.Values{"grant_type": {GrantPassword}, "username": {mailbox}, "password": {"correct horse"},
			"scope": {scopeFor(Microsoft)}}
	}
	tests := []struct {
		name   string
		tenant string
		change func(url.Values)
		status int
		error  string
		aad    int
		rt     bool
		about  string
	}{
		{name: "tenant", rt: true},
		{name: "organizations", tenant: "organizations", rt: true},
		{name: "common", tenant: "common", status: 400, error: "invalid_request", aad: 9001023, about: "/common"},
		{name: "consumers", tenant: "consumers", status: 400, error: "invalid_request", aad: 9001023, about: "/consumers"},
		{name: "no offline_access", change: func(f url.Values) { f.Set("scope", "https://outlook.office.com/SMTP.Send") }, about: "offline_access"},
		{name: "no password", change: func(f url.Values) { f.Del("password") }, status: 400, error: "invalid_request", aad: 900144, about: "password"},
		{name: "no scope", change: func(f url.Values) { f.Del("scope") }, status: 400, error: "invalid_request", aad: 900144, about: "scope"},
		// The operator's mistakes: refused, not violations.
		{name: "wrong password", change: func(f url.Values) { f.Set("password", "wrong") }, status: 400, error: "invalid_grant", aad: 50126},
		{name: "unknown user", change: func(f url.Values) { f.Set("username", "nobody@example.test") }, status: 400, error: "invalid_grant", aad: 50034},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fixture(t, Microsoft)
			f := good()
			if tt.change != nil {
				tt.change(f)
			}
			f.Set("client_id", "public")
			u := h.TokenURL()
			if tt.tenant != "" {
				u = h.URL() + "/" + tt.tenant + "/oauth2/v2.0/token"
			}
			a := h.post(t, u, f)
			h.want(t, tt.about)
			if tt.status == 0 {
				checkTokens(t, a, f.Get("scope"), tt.rt)
				if got := h.introspect(t, a.str("access_token")).str("username"); got != mailbox {
					t.Errorf("token for %q, want %q", got, mailbox)
				}
				return
			}
			checkError(t, a, tt.status, tt.error)
			if codes, _ := a.body["error_codes"].([]any); len(codes) != 1 || codes[0] != float64(tt.aad) {
				t.Errorf("error_codes %v, want [%d]", a.body["error_codes"], tt.aad)
			}
		})
	}
}

func TestClientCredentials(t *testing.T) {
	const appScope = "https://outlook.office365.com/.default"
	tests := []struct {
		name    string
		flavour Flavour
		client  string
		tenant  string
		scope   string
		status  int
		error   string
		about   string
	}{
		{name: "secret", flavour: Microsoft, client: "post", scope: appScope},
		{name: "basic", flavour: Microsoft, client: "basic", scope: appScope},
		{name: "certificate", flavour: Microsoft, client: "jwt", scope: appScope},
		{name: "generic", client: "post", scope: "mail"},
		{name: "offline_access gives no refresh token", client: "post", scope: "mail offline_access"},
		{name: "delegated scope", flavour: Microsoft, client: "post", scope: "https://outlook.office.com/SMTP.Send",
			status: 400, error: "invalid_scope", about: "/.default"},
		{name: "no scope", flavour: Microsoft, client: "post", status: 400, error: "invalid_request", about: "scope"},
		{name: "common", flavour: Microsoft, client: "post", tenant: "common", scope: appScope,
			status: 400, error: "invalid_request", about: "tenant"},
		{name: "organizations", flavour: Microsoft, client: "post", tenant: "organizations", scope: appScope,
			status: 400, error: "invalid_request", about: "tenant"},
		{name: "public client", flavour: Microsoft, client: "public", scope: appScope,
			status: 401, error: "invalid_client", about: "public client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fixture(t, tt.flavour)
			f := url.Values{"grant_type": {GrantClientCredentials}}
			if tt.scope != "" {
				f.Set("scope", tt.scope)
			}
			var a answer
			if tt.tenant != "" {
				f.Set("client_id", "post")
				f.Set("client_secret", postSecret)
				a = h.post(t, h.URL()+"/"+tt.tenant+"/oauth2/v2.0/token", f)
			} else {
				a = h.token(t, tt.client, f)
			}
			h.want(t, tt.about)
			if tt.status != 0 {
				checkError(t, a, tt.status, tt.error)
				return
			}
			checkTokens(t, a, tt.scope, false)
			want := mailbox
			if tt.client == "basic" {
				want = "basic" // no mailbox registered: the client ID
			}
			if got := h.introspect(t, a.str("access_token")).str("username"); got != want {
				t.Errorf("app-only token for %q, want %q", got, want)
			}
		})
	}
}

func TestJWTBearer(t *testing.T) {
	other, _ := KeyPair(t, "other")
	now := time.Now().Unix()
	tests := []struct {
		name    string
		flavour Flavour
		header  map[string]any
		claims  map[string]any
		key     bool // signed with another key
		status  int
		error   string
		desc    string // Google's description
		about   string
	}{
		{name: "google", flavour: Google},
		{name: "generic"},
		{name: "with prn", flavour: Google, claims: map[string]any{"prn": mailbox}},
		{name: "ps256", flavour: Google, header: map[string]any{"alg": "PS256"},
			status: 400, error: "invalid_grant", desc: "Invalid JWT Signature.", about: "alg"},
		{name: "other key", flavour: Google, key: true,
			status: 400, error: "invalid_grant", desc: "Invalid JWT Signature.", about: "signature"},
		{name: "other kid", flavour: Google, header: map[string]any{"kid": "feedface"},
			status: 400, error: "invalid_grant", desc: "Invalid JWT Signature.", about: "kid"},
		{name: "aud", flavour: Google, claims: map[string]any{"aud": "https://www.googleapis.com/oauth2/v4/token"},
			status: 400, error: "invalid_grant", desc: "Invalid JWT: Failed audience check.", about: "aud"},
		{name: "over an hour", flavour: Google, claims: map[string]any{"iat": now, "exp": now + 3601},
			status: 400, error: "invalid_grant", desc: "Invalid JWT: Token must be a short-lived token", about: "lives"},
		// Outside the server's time window: the box's clock, refused
		// as Google does, not a violation.
		{name: "expired", flavour: Google, claims: map[string]any{"iat": now - 3600, "exp": now - 1},
			status: 400, error: "invalid_grant", desc: "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values"},
		{name: "iat in the future", flavour: Google, claims: map[string]any{"iat": now + 600, "exp": now + 1200},
			status: 400, error: "invalid_grant", desc: "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values"},
		{name: "no exp", flavour: Google, claims: map[string]any{"exp": nil},
			status: 400, error: "invalid_grant", about: "NumericDates"},
		{name: "no scope", flavour: Google, claims: map[string]any{"scope": nil},
			status: 400, error: "invalid_scope", about: "scope"},
		{name: "no sub", flavour: Google, claims: map[string]any{"sub": nil},
			status: 400, error: "invalid_grant", about: "no sub"},
		// The administrator's business: refused, not violations.
		{name: "no delegation", flavour: Google, claims: map[string]any{"sub": "boss@example.test"},
			status: 401, error: "unauthorized_client", desc: "Client is unauthorized"},
		{name: "unknown account", flavour: Google, claims: map[string]any{"iss": "gone@project.iam.gserviceaccount.com"},
			status: 400, error: "invalid_grant", desc: "Invalid grant: account not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fixture(t, tt.flavour)
			assertion := h.grantAssertion(t, tt.header, tt.claims)
			if tt.key {
				j, _ := parseJWT(assertion)
				assertion = signJWT(t, other, j.header, j.claims)
			}
			a := h.post(t, h.TokenURL(), url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion}})
			h.want(t, tt.about)
			if tt.status != 0 {
				checkError(t, a, tt.status, tt.error)
				if !strings.HasPrefix(a.str("error_description"), tt.desc) {
					t.Errorf("description %q, want it to start %q", a.str("error_description"), tt.desc)
				}
				return
			}
			checkTokens(t, a, "https://mail.google.com/", false)
			if got := h.introspect(t, a.str("access_token")).str("username"); got != mailbox {
				t.Errorf("token for %q, want the subject %q", got, mailbox)
			}
			if h.Requests(GrantJWTBearer) != 1 || h.Requests("") != 1 {
				t.Errorf("Requests: %d jwt-bearer of %d, want 1 of 1", h.Requests(GrantJWTBearer), h.Requests(""))
			}
		})
	}
	t.Run("no assertion", func(t *testing.T) {
		h := fixture(t, Google)
		a := h.post(t, h.TokenURL(), url.Values{"grant_type": {GrantJWTBearer}})
		h.want(t, "assertion")
		checkError(t, a, http.StatusBadRequest, "invalid_request")
	})
}

// TestJWTBearerServerClock: the time window is the server's clock, which
// Advance moves and the Date header of every token answer shows.
func TestJWTBearerServerClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := fixture(t, Google)
		h.Advance(-10 * time.Minute) // the client's clock is 10 minutes ahead
		a := h.post(t, h.TokenURL(), url.Values{"grant_type": {GrantJWTBearer}, "assertion": {h.grantAssertion(t, nil, nil)}})
		checkError(t, a, http.StatusBadRequest, "invalid_grant")
		if !strings.Contains(a.str("error_description"), "reasonable timeframe") {
			t.Errorf("description %q, want Google's time window text", a.str("error_description"))
		}
		if d, err := http.ParseTime(a.header.Get("Date")); err != nil || !d.Equal(time.Now().Add(-10*time.Minute).Truncate(time.Second)) {
			t.Errorf("Date %q, want the server's clock, 10 minutes behind", a.header.Get("Date"))
		}
		h.want(t, "")
		h.Advance(10 * time.Minute)
		checkTokens(t, h.post(t, h.TokenURL(), url.Values{"grant_type": {GrantJWTBearer}, "assertion": {h.grantAssertion(t, nil, nil)}}), "https://mail.google.com/", false)
	})
}
