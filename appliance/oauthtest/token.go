package oauthtest

import (
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
)

// doubleWindow is how soon a repeat of a failed token request counts as
// x/oauth2's AuthStyleAutoDetect retry rather than a deliberate retry.
const doubleWindow = time.Second

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	q := s.newReq(r, "token request")
	rp := s.tokenRequest(q)
	s.flush(q.viol)
	// The server's own clock (Advance moves it), as real servers send
	// theirs: a client can tell its clock is off.
	w.Header().Set("Date", q.now.UTC().Format(http.TimeFormat))
	rp.write(w)
}

// tokenRequest serves the token endpoint: form checks, counting, the
// double-request check and faults, then the grant.
func (s *Server) tokenRequest(q *req) reply {
	r := q.r
	if r.Method != http.MethodPost {
		q.violate("%s, want POST", r.Method)
		return reply{status: http.StatusMethodNotAllowed, header: http.Header{"Allow": {http.MethodPost}}, page: "method not allowed"}
	}
	if s.o.Flavour == Microsoft && !s.knownTenant(q) {
		return s.bad(q, unknownTenant(q.tenant))
	}
	if rp, ok := s.parseForm(q); !ok {
		return rp
	}
	grant := q.form.Get("grant_type")
	q.what = "token request (" + grant + ")"
	key := requestKey(q)

	s.mu.Lock()
	s.requests[""]++
	if grant != "" {
		s.requests[grant]++
	}
	if t, ok := s.failed[key]; ok && q.now.Sub(t) < doubleWindow {
		q.violate("the same failed request again %v later (x/oauth2's AuthStyleAutoDetect does this: set the auth style)", q.now.Sub(t))
	}
	f, faulty := s.takeFault(grant)
	s.mu.Unlock()

	if faulty && f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return reply{none: true}
		}
	}
	var rp reply
	if faulty && (f.Status != 0 || f.Error != "") {
		rp = s.faultReply(f)
	} else {
		rp = s.grant(q, grant, faulty && f.OmitRefreshToken)
	}
	s.mu.Lock()
	if rp.failed() {
		s.failed[key] = s.now()
	} else {
		delete(s.failed, key)
	}
	s.mu.Unlock()
	return rp
}

// parseForm reads a POST body into q.form, checking its encoding and that
// no parameter travels in the URL or twice.
func (s *Server) parseForm(q *req) (reply, bool) {
	r := q.r
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return s.bad(q, refusal{code: "invalid_request",
			desc: fmt.Sprintf("Content-Type %q, want application/x-www-form-urlencoded", r.Header.Get("Content-Type")),
			aad:  900144, ms: "The request body must contain the following parameter: 'grant_type'."}), false
	}
	if r.URL.RawQuery != "" {
		return s.bad(q, refusal{code: "invalid_request", desc: "parameters in the URL query instead of the body"}), false
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		return s.bad(q, refusal{code: "invalid_request", desc: fmt.Sprintf("body: %v", err)}), false
	}
	q.form = r.PostForm
	if k := repeated(q.form); k != "" {
		return s.bad(q, refusal{code: "invalid_request", desc: fmt.Sprintf("parameter %s given more than once", k),
			aad: 9002313, ms: "Invalid request. Request is malformed or invalid."}), false
	}
	return reply{}, true
}

// requestKey identifies a token request apart from its client
// authentication, which is what x/oauth2's auto-detect retry changes.
func requestKey(q *req) string {
	keys := make([]string, 0, len(q.form))
	for k := range q.form {
		switch k {
		case "client_id", "client_secret", "client_assertion", "client_assertion_type":
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(q.r.URL.Path)
	for _, k := range keys {
		b.WriteString("\x00" + k + "=" + q.form.Get(k))
	}
	return b.String()
}

// takeFault removes and returns the first queued fault for grant.
func (s *Server) takeFault(grant string) (Fault, bool) {
	for i, f := range s.faults {
		if f.Grant == "" || f.Grant == grant {
			s.faults = slices.Delete(s.faults, i, i+1)
			return f, true
		}
	}
	return Fault{}, false
}

func (s *Server) faultReply(f Fault) reply {
	status := f.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	if f.Error == "" && status >= 500 {
		return reply{status: status, page: http.StatusText(status)}
	}
	code := f.Error
	if code == "" {
		code = "invalid_request"
	}
	if s.o.Flavour == Microsoft {
		return reply{status: status, body: s.microsoftError(code, f.Description, f.ErrorCodes)}
	}
	body := map[string]any{"error": code}
	if f.Description != "" {
		body["error_description"] = f.Description
	}
	return reply{status: status, body: body}
}

// grant authenticates the client and runs the grant.
func (s *Server) grant(q *req, grant string, omitRT bool) reply {
	if s.o.Flavour == Microsoft && q.r.Header.Get("Origin") != "" {
		return s.bad(q, refusal{code: "invalid_request", desc: "Origin header: Microsoft takes the client for a single-page application",
			aad: 9002326, ms: "Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type."})
	}
	supported := true
	switch grant {
	case "":
		return s.bad(q, missing("grant_type"))
	case GrantAuthorizationCode, GrantRefreshToken, GrantDeviceCode:
	case GrantPassword:
		supported = s.o.Flavour == Microsoft
	case GrantClientCredentials:
		supported = s.o.Flavour != Google
	case GrantJWTBearer:
		supported = s.o.Flavour != Microsoft
	default:
		supported = false
	}
	if !supported {
		return s.bad(q, refusal{code: "unsupported_grant_type", desc: fmt.Sprintf("grant_type %q is not supported by the %s flavour", grant, s.o.Flavour),
			aad: 70003, ms: fmt.Sprintf("The app requested an unsupported grant type '%s'.", grant),
			gdesc: "Invalid grant_type: " + grant})
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if grant == GrantJWTBearer {
		return s.jwtBearer(q)
	}
	var c *Client
	var rp reply
	var ok bool
	if s.publicRequest(q, grant) {
		c, rp, ok = s.authenticatePublic(q)
	} else {
		c, rp, ok = s.authenticate(q)
	}
	if !ok {
		return rp
	}
	switch grant {
	case GrantAuthorizationCode:
		return s.exchange(q, c, omitRT)
	case GrantRefreshToken:
		return s.refreshGrant(q, c, omitRT)
	case GrantPassword:
		return s.passwordGrant(q, c, omitRT)
	case GrantClientCredentials:
		return s.clientCredentials(q, c)
	default:
		return s.devicePoll(q, c, omitRT)
	}
}

// publicRequest reports whether a token request is a public client's at
// Microsoft: the device code poll, and the refresh of a grant obtained by
// device code. Entra treats the device code grant as public and refuses a
// refresh of it that presents a client secret or assertion with
// invalid_client, AADSTS700025, even for an app that has a secret
// (canonical/authd#1881, simonrob/email-oauth2-proxy#363; PROVIDERS.md §1
// Device code). The lock is held.
func (s *Server) publicRequest(q *req, grant string) bool {
	if s.o.Flavour != Microsoft {
		return false
	}
	switch grant {
	case GrantDeviceCode:
		return true
	case GrantRefreshToken:
		rt := s.refresh[q.form.Get("refresh_token")]
		return rt != nil && s.public[rt.family]
	}
	return false
}

// authenticatePublic checks a public client's token request: client_id
// alone. The device code poll may also authenticate (a confidential
// client, which an app without public client flows must be); a refresh
// of a public grant must not. The lock is held.
func (s *Server) authenticatePublic(q *req) (*Client, reply, bool) {
	f := q.form
	_, _, basic := q.r.BasicAuth()
	_, hasSecret := f["client_secret"]
	_, hasType := f["client_assertion_type"]
	_, hasAssertion := f["client_assertion"]
	creds := basic || hasSecret || hasType || hasAssertion
	device := f.Get("grant_type") == GrantDeviceCode
	if device && creds {
		return s.authenticate(q)
	}
	if creds {
		return nil, s.bad(q, refusal{status: http.StatusUnauthorized, code: "invalid_client", basic: basic,
			desc: "client credentials presented on the refresh of a device code grant, which is a public client's",
			aad:  700025, ms: "Client is public so neither 'client_assertion' nor 'client_secret' should be presented."}), false
	}
	id := f.Get("client_id")
	if id == "" {
		return nil, s.bad(q, missing("client_id")), false
	}
	c := s.client(id)
	if c == nil {
		return nil, s.bad(q, unknownClient(id, s.o.Tenant, false)), false
	}
	if device && s.o.NoPublicClientFlows {
		return nil, s.refuse(refusal{status: http.StatusUnauthorized, code: "invalid_client",
			desc: "device code poll without client credentials, and the app does not allow public client flows",
			aad:  7000218, ms: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}), false
	}
	return c, reply{}, true
}

// issue answers a token request with a new access token, and a refresh
// token if withRT. The lock is held.
func (s *Server) issue(q *req, client, user, scope string, family int, withRT bool) reply {
	at := s.mintLocked(user, s.o.AccessSize, s.o.AccessTTL, scope)
	g := s.tokens[at]
	g.family = family
	s.tokens[at] = g
	s.issued++
	body := map[string]any{
		"access_token": at,
		"token_type":   "Bearer",
		"expires_in":   int(s.o.AccessTTL / time.Second),
		"scope":        scope,
	}
	if withRT {
		body["refresh_token"] = s.newRefresh(client, user, scope, family, q.now)
	}
	return reply{body: body}
}

// revokeFamily revokes a grant: its refresh tokens and access tokens.
func (s *Server) revokeFamily(f int) {
	if f == 0 {
		return
	}
	s.revoked[f] = true
	for tok, g := range s.tokens {
		if g.family == f {
			g.revoked = true
			s.tokens[tok] = g
			if h := s.o.Hub; h != nil && h != s {
				h.Revoke(tok)
			}
		}
	}
}

func unknownTenant(tenant string) refusal {
	return refusal{code: "invalid_request", desc: fmt.Sprintf("unknown tenant %q in the path", tenant),
		aad: 90002, ms: fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant)}
}

// tokenURLFor is the token endpoint under the request's tenant path.
func (s *Server) tokenURLFor(q *req) string {
	if s.o.Flavour == Microsoft {
		return s.base + "/" + q.tenant + "/oauth2/v2.0/token"
	}
	return s.base + "/token"
}

// unknownPath answers requests outside the flavour's endpoints.
func (s *Server) unknownPath(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/favicon.ico" {
		http.NotFound(w, r)
		return
	}
	q := s.newReq(r, "request")
	q.violate("%s %s: no such endpoint in the %s flavour", r.Method, r.URL.Path, s.o.Flavour)
	s.flush(q.viol)
	http.NotFound(w, r)
}
