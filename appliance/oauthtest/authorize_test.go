package oauthtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestAuthorizeChecks(t *testing.T) {
	authParams := url.Values{"audience": {"mail"}, "scope": {"mail send"}}
	tests := []struct {
		name    string
		flavour Flavour
		change  func(p url.Values)
		status  int    // 302 if zero
		error   string // error in the redirect; "" for a code
		about   string // the violation; "" for none
	}{
		{name: "good generic", flavour: Generic},
		{name: "good microsoft", flavour: Microsoft},
		{name: "good google", flavour: Google},
		{name: "loopback port ignored", change: func(p url.Values) { p.Set("redirect_uri", "http://127.0.0.1:51234/callback") }},
		{name: "no state", change: func(p url.Values) { p.Del("state") }, error: "invalid_request", about: "no state"},
		{name: "short state", change: func(p url.Values) { p.Set("state", "xyz") }, error: "invalid_request", about: "unguessable"},
		{name: "no challenge", change: func(p url.Values) { p.Del("code_challenge") }, error: "invalid_request", about: "PKCE"},
		{name: "plain challenge", change: func(p url.Values) { p.Set("code_challenge_method", "plain") }, error: "invalid_request", about: "S256"},
		{name: "no challenge method", change: func(p url.Values) { p.Del("code_challenge_method") }, error: "invalid_request", about: "S256"},
		{name: "challenge not sha256", change: func(p url.Values) { p.Set("code_challenge", strings.Repeat("a", 50)) }, error: "invalid_request", about: "SHA-256"},
		{name: "token response type", change: func(p url.Values) { p.Set("response_type", "token") }, error: "unsupported_response_type", about: "response_type"},
		{name: "fragment mode", change: func(p url.Values) { p.Set("response_mode", "fragment") }, error: "invalid_request", about: "response_mode"},
		{name: "no scope", change: func(p url.Values) { p.Del("scope") }, error: "invalid_scope", about: "scope"},
		{name: "unknown client", change: func(p url.Values) { p.Set("client_id", "nobody") }, status: http.StatusBadRequest, about: "unknown client_id"},
		{name: "no client", change: func(p url.Values) { p.Del("client_id") }, status: http.StatusBadRequest, about: "no client_id"},
		{name: "no redirect", change: func(p url.Values) { p.Del("redirect_uri") }, status: http.StatusBadRequest, about: "no redirect_uri"},
		{name: "redirect with slash", change: func(p url.Values) { p.Set("redirect_uri", redirectURI+"/") }, status: http.StatusBadRequest, about: "not registered"},
		{name: "redirect other case", change: func(p url.Values) { p.Set("redirect_uri", strings.ToUpper(redirectURI)) }, status: http.StatusBadRequest, about: "not registered"},
		{name: "https loopback port counts", change: func(p url.Values) { p.Set("redirect_uri", "https://box.example.test:8443/auth.htm") }, status: http.StatusBadRequest, about: "not registered"},
		{name: "repeated parameter", change: func(p url.Values) { p.Add("scope", "more") }, status: http.StatusBadRequest, about: "more than once"},
		{name: "google access_type twice", flavour: Google, change: func(p url.Values) { p["access_type"] = []string{"offline", "offline"} },
			status: http.StatusBadRequest, about: "access_type given more than once"},
		{name: "generic lost its own parameter", flavour: Generic, change: func(p url.Values) { p.Del("audience") }, error: "invalid_request", about: "audience"},
		{name: "generic changed its own scope", flavour: Generic, change: func(p url.Values) { p.Set("scope", "mail") }, error: "invalid_request", about: "scope"},
		{name: "microsoft without offline_access", flavour: Microsoft,
			change: func(p url.Values) { p.Set("scope", "https://outlook.office.com/SMTP.Send") }, about: "offline_access"},
		{name: "google without access_type", flavour: Google, change: func(p url.Values) { p.Del("access_type") }, about: "access_type=offline"},
		{name: "google without prompt", flavour: Google, change: func(p url.Values) { p.Del("prompt") }, about: "prompt=consent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fixture(t, tt.flavour, func(o *Options) {
				if strings.HasPrefix(tt.name, "generic") {
					o.AuthParams = authParams
				}
			})
			p, _ := h.authParams("post")
			if tt.change != nil {
				tt.change(p)
			}
			r, err := http.NewRequest(http.MethodGet, h.authURL(p), nil)
			if err != nil {
				t.Fatal(err)
			}
			a := do(t, h.HTTPClient(), r)
			h.want(t, tt.about)
			status := tt.status
			if status == 0 {
				status = http.StatusFound
			}
			if a.status != status {
				t.Fatalf("status %d, want %d (%s)", a.status, status, a.raw)
			}
			if status != http.StatusFound {
				return
			}
			back, err := url.Parse(a.header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			bq := back.Query()
			if got := bq.Get("state"); got != p.Get("state") {
				t.Errorf("redirect state %q, want %q", got, p.Get("state"))
			}
			if tt.error == "" {
				if bq.Get("code") == "" || bq.Get("error") != "" {
					t.Errorf("redirect %s, want a code", back)
				}
				if want := p.Get("redirect_uri"); !strings.HasPrefix(back.String(), want+"?") {
					t.Errorf("redirect %s, want it to %s", back, want)
				}
				return
			}
			if bq.Get("error") != tt.error || bq.Get("code") != "" {
				t.Errorf("redirect %s, want error=%s and no code", back, tt.error)
			}
		})
	}
}

func TestAuthorizeReuse(t *testing.T) {
	h := fixture(t, Generic)
	p, _ := h.authParams("post")
	if back := h.Authorize(t, h.authURL(p)); !strings.Contains(back, "code=") {
		t.Fatalf("first authorization gave %q", back)
	}
	h.want(t, "")

	// The same state again, with a new challenge.
	first := p.Get("code_challenge")
	_, challenge := pkce()
	p.Set("code_challenge", challenge)
	if back := h.Authorize(t, h.authURL(p)); !strings.Contains(back, "error=invalid_request") {
		t.Errorf("reused state gave %q", back)
	}
	h.want(t, "state reused")

	// The first challenge again, with a new state.
	p.Set("state", randomString(24))
	p.Set("code_challenge", first)
	if back := h.Authorize(t, h.authURL(p)); !strings.Contains(back, "error=invalid_request") {
		t.Errorf("reused challenge gave %q", back)
	}
	h.want(t, "code_challenge reused")
}

func TestAuthorizeRefreshTokenRules(t *testing.T) {
	tests := []struct {
		name    string
		flavour Flavour
		change  []func(url.Values) // per authorization, in turn
		rt      []bool             // whether each exchange gives a refresh token
		about   []string
	}{
		{name: "google consent each time", flavour: Google, change: []func(url.Values){nil, nil}, rt: []bool{true, true}, about: []string{"", ""}},
		{name: "google without prompt again", flavour: Google,
			change: []func(url.Values){nil, func(p url.Values) { p.Del("prompt") }},
			rt:     []bool{true, false}, about: []string{"", "prompt=consent"}},
		{name: "google first consent without prompt", flavour: Google,
			change: []func(url.Values){func(p url.Values) { p.Del("prompt") }},
			rt:     []bool{true}, about: []string{"prompt=consent"}},
		{name: "google online", flavour: Google,
			change: []func(url.Values){func(p url.Values) { p.Del("access_type") }},
			rt:     []bool{false}, about: []string{"access_type"}},
		{name: "microsoft offline_access", flavour: Microsoft, change: []func(url.Values){nil}, rt: []bool{true}, about: []string{""}},
		{name: "microsoft without offline_access", flavour: Microsoft,
			change: []func(url.Values){func(p url.Values) { p.Set("scope", "https://outlook.office.com/SMTP.Send") }},
			rt:     []bool{false}, about: []string{"offline_access"}},
		{name: "generic", flavour: Generic, change: []func(url.Values){nil}, rt: []bool{true}, about: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fixture(t, tt.flavour)
			for i, change := range tt.change {
				p, verifier := h.authParams("post")
				if change != nil {
					change(p)
				}
				back, _ := url.Parse(h.Authorize(t, h.authURL(p)))
				h.want(t, tt.about[i])
				a := h.token(t, "post", exchangeForm(back.Query().Get("code"), verifier))
				h.want(t, "")
				if a.status != http.StatusOK {
					t.Fatalf("exchange %d: %d %s", i, a.status, a.raw)
				}
				if got := a.str("refresh_token") != ""; got != tt.rt[i] {
					t.Errorf("exchange %d: refresh token %v, want %v", i, got, tt.rt[i])
				}
			}
		})
	}
}

func TestAuthorizeHelper(t *testing.T) {
	h := fixture(t, Microsoft)
	p, _ := h.authParams("post")

	h.DenyNext()
	back, _ := url.Parse(h.Authorize(t, h.authURL(p)))
	if q := back.Query(); q.Get("error") != "access_denied" || !strings.HasPrefix(q.Get("error_description"), "AADSTS65004") ||
		q.Get("state") != p.Get("state") || q.Get("code") != "" {
		t.Errorf("denied authorization came back as %s", back)
	}
	h.want(t, "")

	// The helper refuses addresses of other servers, and returns "" where
	// the provider shows its own page.
	rec := &recorder{TB: t}
	if got := h.Authorize(rec, "https://login.example.test/authorize?x=1"); got != "" || rec.take() != 1 {
		t.Errorf("Authorize of another server = %q", got)
	}
	p, _ = h.authParams("nobody")
	if got := h.Authorize(rec, h.authURL(p)); got != "" || rec.take() != 0 {
		t.Errorf("Authorize for an unknown client = %q", got)
	}
	h.want(t, "unknown client_id")
}

func TestAuthorizeAccount(t *testing.T) {
	tests := []struct {
		name    string
		account string
		users   map[string]string
		hint    string
		want    string
	}{
		{"configured", "admin@example.test", map[string]string{"a@example.test": ""}, "a@example.test", "admin@example.test"},
		{"hint of a user", "", map[string]string{"a@example.test": "", "b@example.test": ""}, "b@example.test", "b@example.test"},
		{"hint of a stranger", "", map[string]string{"a@example.test": "", "b@example.test": ""}, "c@example.test", "a@example.test"},
		{"hint without users", "", nil, "c@example.test", "c@example.test"},
		{"nobody", "", nil, "", "user@example.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fixture(t, Generic, func(o *Options) { o.Account, o.Users = tt.account, tt.users })
			p, verifier := h.authParams("post")
			if tt.hint == "" {
				p.Del("login_hint")
			} else {
				p.Set("login_hint", tt.hint)
			}
			back, _ := url.Parse(h.Authorize(t, h.authURL(p)))
			a := h.token(t, "post", exchangeForm(back.Query().Get("code"), verifier))
			h.want(t, "")
			if got := h.introspect(t, a.str("access_token")).str("username"); got != tt.want {
				t.Errorf("token for %q, want %q", got, tt.want)
			}
		})
	}
}
