package oauthtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestExchange(t *testing.T) {
	tests := []struct {
		name    string
		flavour Flavour
		client  string                                // who redeems; "post" if empty
		change  func(h *harness, f url.Values) string // changes the form, may return another token URL
		status  int
		error   string
		about   string
	}{
		{name: "good generic", flavour: Generic},
		{name: "good microsoft", flavour: Microsoft},
		{name: "good google", flavour: Google},
		{name: "wrong verifier", change: func(_ *harness, f url.Values) string {
			v, _ := pkce()
			f.Set("code_verifier", v)
			return ""
		}, status: 400, error: "invalid_grant", about: "does not hash"},
		{name: "challenge as verifier", change: func(h *harness, f url.Values) string {
			f.Set("code_verifier", f.Get("code_verifier")[:42]+"x")
			return ""
		}, status: 400, error: "invalid_grant", about: "does not hash"},
		{name: "no verifier", change: func(_ *harness, f url.Values) string { f.Del("code_verifier"); return "" },
			status: 400, error: "invalid_grant", about: "no code_verifier"},
		{name: "short verifier", change: func(_ *harness, f url.Values) string { f.Set("code_verifier", "abc"); return "" },
			status: 400, error: "invalid_grant", about: "43 to 128"},
		{name: "no redirect", change: func(_ *harness, f url.Values) string { f.Del("redirect_uri"); return "" },
			status: 400, error: "invalid_grant", about: "redirect_uri"},
		{name: "other redirect", change: func(_ *harness, f url.Values) string { f.Set("redirect_uri", loopbackURI); return "" },
			status: 400, error: "invalid_grant", about: "redirect_uri"},
		{name: "google redirect mismatch", flavour: Google,
			change: func(_ *harness, f url.Values) string { f.Set("redirect_uri", loopbackURI); return "" },
			status: 400, error: "redirect_uri_mismatch", about: "redirect_uri"},
		{name: "unknown code", change: func(_ *harness, f url.Values) string { f.Set("code", "forged"); return "" },
			status: 400, error: "invalid_grant", about: "unknown authorization code"},
		{name: "no code", change: func(_ *harness, f url.Values) string { f.Del("code"); return "" },
			status: 400, error: "invalid_request", about: "missing parameter code"},
		{name: "other client", client: "basic", status: 400, error: "invalid_grant", about: "issued to client"},
		{name: "microsoft other tenant", flavour: Microsoft, change: func(h *harness, f url.Values) string {
			return h.URL() + "/organizations/oauth2/v2.0/token"
		}, status: 400, error: "invalid_grant", about: "tenant"},
		{name: "microsoft unknown tenant", flavour: Microsoft, change: func(h *harness, f url.Values) string {
			return h.URL() + "/evil.example/oauth2/v2.0/token"
		}, status: 400, error: "invalid_request", about: "unknown tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fixture(t, tt.flavour)
			code, verifier := h.code(t, "post")
			f := exchangeForm(code, verifier)
			u := ""
			if tt.change != nil {
				u = tt.change(h, f)
			}
			client := tt.client
			if client == "" {
				client = "post"
			}
			var a answer
			if u != "" {
				f.Set("client_id", "post")
				f.Set("client_secret", postSecret)
				a = h.post(t, u, f)
			} else {
				a = h.token(t, client, f)
			}
			h.want(t, tt.about)
			if tt.status == 0 {
				if a.status != http.StatusOK {
					t.Fatalf("answer %d %s, want tokens", a.status, a.raw)
				}
				checkTokens(t, a, scopeFor(tt.flavour), true)
				return
			}
			checkError(t, a, tt.status, tt.error)
		})
	}
}

// checkTokens checks the shape of a token answer.
func checkTokens(t testing.TB, a answer, scope string, refresh bool) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("answer %d %s, want tokens", a.status, a.raw)
	}
	if len(a.str("access_token")) != 1500 || a.str("token_type") != "Bearer" || a.str("scope") != scope {
		t.Errorf("answer %.200s: want a 1500-character Bearer token for scope %q", a.raw, scope)
	}
	if exp, ok := a.body["expires_in"].(float64); !ok || exp != 3600 {
		t.Errorf("expires_in = %#v, want the number 3600", a.body["expires_in"])
	}
	if got := a.str("refresh_token") != ""; got != refresh {
		t.Errorf("refresh token %v, want %v", got, refresh)
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", a.header.Get("Cache-Control"))
	}
}

func TestExchangeReplayRevokesGrant(t *testing.T) {
	h := fixture(t, Microsoft, func(o *Options) { o.Rotation = Rotate })
	code, verifier := h.code(t, "post")
	first := h.token(t, "post", exchangeForm(code, verifier))
	checkTokens(t, first, scopeFor(Microsoft), true)

	again := h.token(t, "post", exchangeForm(code, verifier))
	h.want(t, "redeemed twice")
	checkError(t, again, 400, "invalid_grant")
	if codes, _ := again.body["error_codes"].([]any); len(codes) != 1 || codes[0] != float64(54005) {
		t.Errorf("error_codes %v, want [54005]", again.body["error_codes"])
	}
	// RFC 6749 §4.1.2: what the code gave is revoked.
	if a := h.introspect(t, first.str("access_token")); a.body["active"] != false {
		t.Errorf("access token of a replayed code still active: %s", a.raw)
	}
	checkError(t, h.token(t, "post", refreshForm(first.str("refresh_token"))), 400, "invalid_grant")
	h.want(t, "")
	if live := h.LiveRefreshTokens(); len(live) != 0 {
		t.Errorf("%d live refresh tokens after replay, want none", len(live))
	}
}

func TestExchangeExpiredCode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := fixture(t, Microsoft)
		code, verifier := h.code(t, "post")
		time.Sleep(codeTTL + time.Second)
		a := h.token(t, "post", exchangeForm(code, verifier))
		h.want(t, "") // the user was slow, not the client
		checkError(t, a, 400, "invalid_grant")
		if !strings.HasPrefix(a.str("error_description"), "AADSTS70008:") {
			t.Errorf("description %q, want AADSTS70008", a.str("error_description"))
		}
	})
}

func TestClientAuthentication(t *testing.T) {
	// A style adds client credentials to a token request.
	type style func(t testing.TB, h *harness, f url.Values, r *http.Request)
	var (
		inBody = func(id, secret string) style {
			return func(_ testing.TB, _ *harness, f url.Values, _ *http.Request) {
				f.Set("client_id", id)
				f.Set("client_secret", secret)
			}
		}
		inHeader = func(id, secret string) style {
			return func(_ testing.TB, _ *harness, _ url.Values, r *http.Request) {
				r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
			}
		}
		idOnly = func(id string) style {
			return func(_ testing.TB, _ *harness, f url.Values, _ *http.Request) { f.Set("client_id", id) }
		}
		signed = func(t testing.TB, h *harness, f url.Values, _ *http.Request) {
			f.Set("client_assertion_type", AssertionType)
			f.Set("client_assertion", h.assertion(t, nil, nil))
		}
	)
	tests := []struct {
		name    string
		flavour Flavour
		client  string
		styles  []style
		status  int
		error   string
		aad     int
		about   string
	}{
		{name: "post", client: "post", styles: []style{inBody("post", postSecret)}},
		{name: "basic form-encoded", client: "basic", styles: []style{inHeader("basic", basicSecret)}},
		{name: "public", client: "public", styles: []style{idOnly("public")}},
		{name: "assertion", client: "jwt", styles: []style{idOnly("jwt"), signed}},
		{name: "assertion without client_id", client: "jwt", styles: []style{signed}},

		{name: "post client in header", flavour: Microsoft, client: "post", styles: []style{inHeader("post", postSecret)},
			status: 401, error: "invalid_client", about: "registered for client_secret_post"},
		{name: "basic client in body", client: "basic", styles: []style{inBody("basic", basicSecret)},
			status: 401, error: "invalid_client", about: "registered for client_secret_basic"},
		{name: "basic not form-encoded", client: "basic", styles: []style{func(_ testing.TB, _ *harness, _ url.Values, r *http.Request) {
			r.SetBasicAuth("basic", basicSecret) // "%+" is no escape
		}}, status: 401, error: "invalid_client", about: "form-encoded"},
		{name: "public with secret", flavour: Microsoft, client: "public", styles: []style{inBody("public", "x")},
			status: 401, error: "invalid_client", aad: 700025, about: "registered for none"},
		{name: "confidential without secret", flavour: Microsoft, client: "post", styles: []style{idOnly("post")},
			status: 401, error: "invalid_client", aad: 7000218, about: "authenticated with none"},
		{name: "assertion client with secret", client: "jwt", styles: []style{inBody("jwt", "x")},
			status: 401, error: "invalid_client", about: "registered for private_key_jwt"},
		{name: "secret client with assertion", client: "post", styles: []style{idOnly("post"), signed},
			status: 401, error: "invalid_client", about: "registered for client_secret_post"},
		{name: "two methods", client: "basic", styles: []style{inHeader("basic", basicSecret), inBody("basic", basicSecret)},
			status: 400, error: "invalid_request", about: "more than one"},
		{name: "assertion and secret", client: "jwt", styles: []style{inBody("jwt", "x"), signed},
			status: 400, error: "invalid_request", about: "more than one"},
		{name: "basic and other client_id", client: "basic", styles: []style{inHeader("basic", basicSecret), idOnly("post")},
			status: 401, error: "invalid_client", about: "differs"},
		{name: "unknown client", client: "post", styles: []style{inBody("nobody", "x")},
			status: 401, error: "invalid_client", about: "unknown client_id"},
		{name: "microsoft unknown client", flavour: Microsoft, client: "post", styles: []style{idOnly("nobody")},
			status: 400, error: "unauthorized_client", aad: 700016, about: "unknown client_id"},
		{name: "no client", client: "post", status: 400, error: "invalid_request", about: "client_id"},

		// The operator's mistakes: refused, not violations.
		{name: "wrong secret", flavour: Microsoft, client: "post", styles: []style{inBody("post", "wrong")},
			status: 401, error: "invalid_client", aad: 7000215},
		{name: "wrong basic secret", client: "basic", styles: []style{inHeader("basic", "wrong")},
			status: 401, error: "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fixture(t, tt.flavour)
			code, verifier := h.code(t, tt.client)
			f := exchangeForm(code, verifier)
			r, err := http.NewRequest(http.MethodPost, h.TokenURL(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range tt.styles {
				st(t, h, f, r)
			}
			r.Body = readCloser(f.Encode())
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			a := do(t, h.HTTPClient(), r)
			h.want(t, tt.about)
			if tt.status == 0 {
				checkTokens(t, a, scopeFor(tt.flavour), true)
				return
			}
			checkError(t, a, tt.status, tt.error)
			_, _, basic := r.BasicAuth()
			if got := a.header.Get("Www-Authenticate") != ""; a.status == 401 && got != basic {
				t.Errorf("WWW-Authenticate %q after a request with Basic %v", a.header.Get("Www-Authenticate"), basic)
			}
			if tt.aad != 0 {
				if codes, _ := a.body["error_codes"].([]any); len(codes) != 1 || codes[0] != float64(tt.aad) {
					t.Errorf("error_codes %v, want [%d]", a.body["error_codes"], tt.aad)
				}
			}
		})
	}
}

func TestTokenRequestForm(t *testing.T) {
	good := refreshForm("whatever")
	tests := []struct {
		name    string
		flavour Flavour
		method  string
		path    string // instead of the token URL's
		ctype   string
		query   string
		form    url.Values
		header  http.Header
		status  int
		about   string
	}{
		{name: "get", method: http.MethodGet, status: 405, about: "GET, want POST"},
		{name: "json", ctype: "application/json", status: 400, about: "Content-Type"},
		{name: "query", query: "grant_type=refresh_token", status: 400, about: "URL query"},
		{name: "repeated", form: url.Values{"grant_type": {GrantRefreshToken, GrantRefreshToken}}, status: 400, about: "more than once"},
		{name: "no grant type", form: url.Values{"refresh_token": {"x"}}, status: 400, about: "grant_type"},
		{name: "implicit", form: url.Values{"grant_type": {"implicit"}}, status: 400, about: "not supported"},
		{name: "password outside microsoft", form: url.Values{"grant_type": {GrantPassword}}, status: 400, about: "not supported"},
		{name: "client credentials at google", flavour: Google, form: url.Values{"grant_type": {GrantClientCredentials}}, status: 400, about: "not supported"},
		{name: "jwt bearer at microsoft", flavour: Microsoft, form: url.Values{"grant_type": {GrantJWTBearer}}, status: 400, about: "not supported"},
		{name: "origin at microsoft", flavour: Microsoft, header: http.Header{"Origin": {"https://box.example.test"}}, status: 400, about: "Origin"},
		{name: "unknown path", path: "/oauth/token", status: 404, about: "no such endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fixture(t, tt.flavour)
			form := tt.form
			if form == nil {
				form = good
			}
			u := h.TokenURL()
			if tt.path != "" {
				u = h.URL() + tt.path
			}
			if tt.query != "" {
				u += "?" + tt.query
			}
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			r, err := http.NewRequest(method, u, strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			for k, v := range tt.header {
				r.Header[k] = v
			}
			a := do(t, h.HTTPClient(), r)
			h.want(t, tt.about)
			if a.status != tt.status {
				t.Errorf("status %d, want %d (%s)", a.status, tt.status, a.raw)
			}
		})
	}
}

func TestErrorBodies(t *testing.T) {
	tests := []struct {
		flavour Flavour
		desc    string
		codes   bool
	}{
		{Generic, "refresh token expired", false},
		{Microsoft, "AADSTS700082: The refresh token has expired due to inactivity.", true},
		{Google, "Token has been expired or revoked.", false},
	}
	for _, tt := range tests {
		t.Run(tt.flavour.String(), func(t *testing.T) {
			h := fixture(t, tt.flavour)
			rt := h.tokens(t, "post").str("refresh_token")
			h.ExpireRefreshTokens()
			a := h.token(t, "post", refreshForm(rt))
			h.want(t, "")
			checkError(t, a, 400, "invalid_grant")
			if !strings.HasPrefix(a.str("error_description"), tt.desc) {
				t.Errorf("error_description %q, want it to start %q", a.str("error_description"), tt.desc)
			}
			if codes, ok := a.body["error_codes"].([]any); ok != tt.codes || (ok && codes[0] != float64(700082)) {
				t.Errorf("error_codes %v", a.body["error_codes"])
			}
			if tt.flavour == Microsoft {
				for _, k := range []string{"timestamp", "trace_id", "correlation_id"} {
					if a.str(k) == "" {
						t.Errorf("no %s in %s", k, a.raw)
					}
				}
			}
		})
	}
}

func TestDoubleRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := fixture(t, Generic)
		rt := h.tokens(t, "post").str("refresh_token")
		h.ExpireRefreshTokens()

		// x/oauth2's AuthStyleAutoDetect: Basic first, then the body.
		basic := func(r *http.Request) { r.SetBasicAuth("post", url.QueryEscape(postSecret)) }
		a := h.post(t, h.TokenURL(), refreshForm(rt), basic)
		checkError(t, a, 401, "invalid_client")
		h.want(t, "registered for client_secret_post")
		a = h.token(t, "post", refreshForm(rt))
		checkError(t, a, 400, "invalid_grant")
		h.want(t, "the same failed request again")

		// A deliberate retry later is no double request, but a refresh token
		// refused with invalid_grant must not come back at all.
		time.Sleep(time.Minute)
		h.token(t, "post", refreshForm(rt))
		vs := h.take()
		if len(vs) != 1 || !strings.Contains(vs[0], "after invalid_grant") {
			t.Errorf("violations %q, want only the reuse after invalid_grant", vs)
		}
	})
}

// TestAdvance: outside a bubble, a retry after Advance is a deliberate one,
// as if the time had passed; the same retry at once is a double request.
func TestAdvance(t *testing.T) {
	h := fixture(t, Generic)
	rt := h.tokens(t, "post").str("refresh_token")
	h.FailNext(2, Fault{Status: http.StatusServiceUnavailable, Grant: GrantRefreshToken})
	if a := h.token(t, "post", refreshForm(rt)); a.status != http.StatusServiceUnavailable {
		t.Fatalf("answer %d %s, want the 503", a.status, a.raw)
	}
	h.want(t, "")
	h.token(t, "post", refreshForm(rt))
	h.want(t, "the same failed request again")
	h.Advance(time.Second)
	checkTokens(t, h.token(t, "post", refreshForm(rt)), scopeFor(Generic), false)
	h.want(t, "")
}

func readCloser(s string) *nopCloser { return &nopCloser{strings.NewReader(s)} }

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }
