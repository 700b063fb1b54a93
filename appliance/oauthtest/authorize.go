package oauthtest

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// codeTTL is how long an authorization code can be redeemed (Microsoft:
// about 10 minutes; RFC 6749 §4.1.2 recommends at most 10).
const codeTTL = 10 * time.Minute

// minState is the shortest state accepted: 16 characters of a random
// string carry at least 64 bits.
const minState = 16

// authCode is an issued authorization code and what it is bound to.
type authCode struct {
	client    string
	redirect  string
	challenge string
	scope     string
	account   string
	tenant    string
	issued    time.Time
	used      bool
	refresh   bool // the grant includes a refresh token
	family    int  // the grant the code was redeemed into; 0 before
}

// Authorize plays the browser and the user: it GETs authURL from this
// server's authorization endpoint, signs in as the account (see
// [Options.Account]), consents, and returns the address the browser is sent
// back to, "redirect_uri?code=…&state=…", which is what a user pastes back.
// After [Server.DenyNext] it carries error=access_denied instead. A request
// that violates the protocol is reported as such; Authorize then returns the
// error redirect, or "" if the provider would show its own error page.
func (s *Server) Authorize(t testing.TB, authURL string) (redirect string) {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Errorf("oauthtest: Authorize: %v", err)
		return ""
	}
	if u.Scheme+"://"+u.Host != s.base {
		t.Errorf("oauthtest: Authorize(%q): not an address of this server (%s)", authURL, s.base)
		return ""
	}
	resp, err := s.HTTPClient().Get(authURL)
	if err != nil {
		t.Errorf("oauthtest: Authorize: %v", err)
		return ""
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusFound {
		return ""
	}
	return resp.Header.Get("Location")
}

func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := s.newReq(r, "authorization request")
	rp := s.authorization(q)
	s.flush(q.viol)
	rp.write(w)
}

// authorization validates an authorization request and answers with the
// redirect, or with an error page while the redirect URI is not trusted.
func (s *Server) authorization(q *req) reply {
	r := q.r
	page := func(format string, args ...any) reply {
		q.violate(format, args...)
		return reply{status: http.StatusBadRequest, page: fmt.Sprintf(format, args...)}
	}
	if r.Method != http.MethodGet {
		q.violate("%s, want GET", r.Method)
		return reply{status: http.StatusMethodNotAllowed, header: http.Header{"Allow": {http.MethodGet}}, page: "method not allowed"}
	}
	q.form = r.URL.Query()
	p := q.form
	if s.o.Flavour == Microsoft {
		if !s.knownTenant(q) {
			return page("AADSTS90002: Tenant '%s' not found", q.tenant)
		}
	}
	if k := repeated(p); k != "" {
		return page("parameter %s given more than once", k)
	}

	// Until client and redirect URI check out, errors stay on the provider's
	// page (RFC 6749 §4.1.2.1).
	id := p.Get("client_id")
	if id == "" {
		return page("no client_id")
	}
	c := s.client(id)
	if c == nil {
		return page("unknown client_id %q", id)
	}
	ru := p.Get("redirect_uri")
	if ru == "" {
		return page("no redirect_uri")
	}
	back, err := url.Parse(ru)
	if err != nil || !c.redirectOK(ru) {
		return page("redirect_uri %q is not registered for client %q (exact match)", ru, id)
	}
	state := p.Get("state")
	send := func(v url.Values) reply {
		bq := back.Query()
		for k, vs := range v {
			bq[k] = vs
		}
		if state != "" {
			bq.Set("state", state)
		}
		u := *back
		u.RawQuery = bq.Encode()
		return reply{location: u.String()}
	}
	fail := func(code, desc string) reply {
		q.violate("%s", desc)
		return send(url.Values{"error": {code}, "error_description": {desc}})
	}

	if rt := p.Get("response_type"); rt != "code" {
		return fail("unsupported_response_type", fmt.Sprintf("response_type %q, want code", rt))
	}
	if m := p.Get("response_mode"); m != "" && m != "query" {
		return fail("invalid_request", fmt.Sprintf("response_mode %q: the redirect must carry the code in its query", m))
	}
	if s.o.Flavour == Generic {
		for k, want := range s.o.AuthParams {
			if got := p[k]; !slices.Equal(got, want) {
				return fail("invalid_request", fmt.Sprintf("parameter %s = %q, the authorization URL's own value is %q", k, got, want))
			}
		}
	}
	scope := p.Get("scope")
	if scope == "" {
		return fail("invalid_scope", "no scope")
	}
	switch {
	case state == "":
		return fail("invalid_request", "no state (RFC 9700 §2.1: CSRF protection)")
	case len(state) < minState:
		return fail("invalid_request", fmt.Sprintf("state of %d characters cannot be unguessable", len(state)))
	}
	s.mu.Lock()
	replayed := s.states[state]
	s.states[state] = true
	s.mu.Unlock()
	if replayed {
		return fail("invalid_request", "state reused from an earlier authorization request")
	}
	challenge, method := p.Get("code_challenge"), p.Get("code_challenge_method")
	switch {
	case challenge == "":
		return fail("invalid_request", "no PKCE code_challenge (RFC 9700 §2.1.1)")
	case method != "S256":
		return fail("invalid_request", fmt.Sprintf("code_challenge_method %q, want S256", method))
	case !validChallenge(challenge):
		return fail("invalid_request", "code_challenge is not a base64url SHA-256 (43 characters)")
	}
	s.mu.Lock()
	replayed = s.challenges[challenge]
	s.challenges[challenge] = true
	s.mu.Unlock()
	if replayed {
		return fail("invalid_request", "code_challenge reused: each authorization needs a new code_verifier")
	}

	account := s.account(p.Get("login_hint"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.denyNext > 0 {
		s.denyNext--
		switch s.o.Flavour {
		case Microsoft:
			return send(url.Values{"error": {"access_denied"},
				"error_description": {"AADSTS65004: User declined to consent to access the app."}})
		case Google:
			return send(url.Values{"error": {"access_denied"}})
		}
		return send(url.Values{"error": {"access_denied"}, "error_description": {"the user declined"}})
	}
	refresh := true
	switch s.o.Flavour {
	case Microsoft:
		if !hasWord(scope, "offline_access") {
			q.violate("scope %q without offline_access: Microsoft gives no refresh token", scope)
			refresh = false
		}
	case Google:
		offline := p.Get("access_type") == "offline"
		consent := hasWord(p.Get("prompt"), "consent")
		if !offline {
			q.violate("no access_type=offline: Google gives no refresh token")
		}
		if !consent {
			q.violate("no prompt=consent: Google gives a refresh token on the first consent only")
		}
		key := id + "\x00" + account
		refresh = offline && (consent || !s.consented[key])
		s.consented[key] = true
	}
	code := randomString(96)
	s.codes[code] = &authCode{
		client:    id,
		redirect:  ru,
		challenge: challenge,
		scope:     scope,
		account:   account,
		tenant:    q.tenant,
		issued:    q.now,
		refresh:   refresh,
	}
	return send(url.Values{"code": {code}})
}

// knownTenant checks the Microsoft path's tenant and keeps it in q.
func (s *Server) knownTenant(q *req) bool {
	q.tenant = q.r.PathValue("tenant")
	switch q.tenant {
	case s.o.Tenant, "organizations", "common", "consumers":
		return true
	}
	return false
}

// redirectOK reports whether uri is registered: the same string, or an
// http loopback URI that differs in the port only (RFC 9700 §2.1, RFC 8252
// §7.3).
func (c *Client) redirectOK(uri string) bool {
	if slices.Contains(c.RedirectURIs, uri) {
		return true
	}
	b, err := url.Parse(uri)
	if err != nil || b.Scheme != "http" || !loopback(b.Hostname()) {
		return false
	}
	for _, reg := range c.RedirectURIs {
		a, err := url.Parse(reg)
		if err != nil || a.Scheme != "http" || !loopback(a.Hostname()) {
			continue
		}
		if a.Hostname() == b.Hostname() && a.User == nil && b.User == nil &&
			a.EscapedPath() == b.EscapedPath() && a.RawQuery == b.RawQuery && a.Fragment == b.Fragment {
			return true
		}
	}
	return false
}

func loopback(host string) bool {
	return host == "127.0.0.1" || host == "localhost" || host == "::1"
}

// validChallenge reports whether c is an S256 code challenge: the base64url
// encoding, unpadded, of 32 bytes (RFC 7636 §4.2).
func validChallenge(c string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	return err == nil && len(b) == 32
}

// hasWord reports whether the space-separated list has w.
func hasWord(list, w string) bool {
	return slices.Contains(strings.Fields(list), w)
}

// repeated returns a parameter given more than once, or "": RFC 6749
// §3.1, "Request and response parameters MUST NOT be included more than
// once"; Google answers such an authorization request with 400
// invalid_request on its own page.
func repeated(v url.Values) string {
	keys := make([]string, 0, len(v))
	for k, vs := range v {
		if len(vs) > 1 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	slices.Sort(keys)
	return keys[0]
}
