package oauthtest

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// authenticate checks a token request's client authentication against the
// client's registration (RFC 6749 §2.3) and returns the client. The lock is
// held.
func (s *Server) authenticate(q *req) (*Client, reply, bool) {
	r, f := q.r, q.form
	user, pass, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: both are form-encoded before Base64.
		u, err1 := url.QueryUnescape(user)
		p, err2 := url.QueryUnescape(pass)
		if err1 != nil || err2 != nil {
			return nil, s.bad(q, refusal{status: http.StatusUnauthorized, code: "invalid_client", basic: true,
				desc: "HTTP Basic credentials are not form-encoded (RFC 6749 §2.3.1)"}), false
		}
		user, pass = u, p
	}
	_, hasSecret := f["client_secret"]
	_, hasType := f["client_assertion_type"]
	_, hasAssertion := f["client_assertion"]
	assertion := hasType || hasAssertion
	var used []string
	if basic {
		used = append(used, "HTTP Basic")
	}
	if hasSecret {
		used = append(used, "client_secret")
	}
	if assertion {
		used = append(used, "client_assertion")
	}
	if len(used) > 1 {
		return nil, s.bad(q, refusal{code: "invalid_request", basic: basic,
			desc: fmt.Sprintf("more than one client authentication method: %s (RFC 6749 §2.3)", strings.Join(used, " and ")),
			aad:  9002313, ms: "Invalid request. Request is malformed or invalid."}), false
	}

	id := f.Get("client_id")
	if basic {
		if id != "" && id != user {
			return nil, s.bad(q, refusal{status: http.StatusUnauthorized, code: "invalid_client", basic: true,
				desc: fmt.Sprintf("client_id %q differs from the HTTP Basic user %q", id, user)}), false
		}
		id = user
	}
	if id == "" && hasAssertion {
		// RFC 7523 §3: with an assertion, client_id may be left out.
		if j, err := parseJWT(f.Get("client_assertion")); err == nil {
			id = j.claim("sub")
		}
	}
	if id == "" {
		return nil, s.bad(q, missing("client_id")), false
	}
	c := s.client(id)
	if c == nil {
		return nil, s.bad(q, unknownClient(id, s.o.Tenant, basic)), false
	}

	got := AuthNone
	switch {
	case basic:
		got = AuthBasic
	case hasSecret:
		got = AuthPost
	case assertion:
		got = AuthPrivateKeyJWT
	}
	if got != c.Auth {
		e := refusal{status: http.StatusUnauthorized, code: "invalid_client", basic: basic,
			desc:  fmt.Sprintf("client %q authenticated with %s, but is registered for %s", id, got, c.Auth),
			gdesc: "Unauthorized"}
		switch {
		case c.Auth == AuthNone:
			e.aad, e.ms = 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented."
		case got == AuthNone:
			e.aad, e.ms = 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."
		}
		return nil, s.bad(q, e), false
	}
	switch got {
	case AuthPost, AuthBasic:
		secret := pass
		if got == AuthPost {
			secret = f.Get("client_secret")
		}
		if subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
			// A wrong secret is the operator's mistake, not the client's.
			return nil, s.refuse(refusal{status: http.StatusUnauthorized, code: "invalid_client", basic: basic,
				desc: "wrong client secret", aad: 7000215,
				ms:    fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", id),
				gdesc: "Unauthorized"}), false
		}
	case AuthPrivateKeyJWT:
		if rp, ok := s.checkAssertion(q, c); !ok {
			return nil, rp, false
		}
	}
	return c, reply{}, true
}

func unknownClient(id, tenant string, basic bool) refusal {
	return refusal{status: http.StatusUnauthorized, code: "invalid_client", basic: basic,
		desc: fmt.Sprintf("unknown client_id %q", id),
		aad:  700016, mcode: "unauthorized_client", mstat: http.StatusBadRequest,
		ms:    fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", id, tenant),
		gdesc: "The OAuth client was not found."}
}
