package oauthtest

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// maxBearerLife is the longest JWT bearer assertion Google takes.
const maxBearerLife = time.Hour

// jwtBearer serves the JWT bearer grant (RFC 7523 §2.1) as Google does for
// service accounts with domain-wide delegation. The lock is held.
func (s *Server) jwtBearer(q *req) reply {
	raw := q.form.Get("assertion")
	if raw == "" {
		return s.bad(q, missing("assertion"))
	}
	bad := func(gdesc, format string, args ...any) reply {
		return s.bad(q, refusal{code: "invalid_grant", desc: "assertion: " + fmt.Sprintf(format, args...), gdesc: gdesc})
	}
	const (
		badSig  = "Invalid JWT Signature."
		badTime = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	)
	j, err := parseJWT(raw)
	if err != nil {
		return bad("Invalid JWT: malformed", "%v", err)
	}
	iss := j.claim("iss")
	var sa *ServiceAccount
	for i := range s.o.ServiceAccounts {
		if s.o.ServiceAccounts[i].Email == iss {
			sa = &s.o.ServiceAccounts[i]
		}
	}
	if sa == nil {
		// A deleted or mistyped account is the operator's mistake.
		return s.refuse(refusal{code: "invalid_grant", desc: fmt.Sprintf("unknown service account %q", iss),
			gdesc: "Invalid grant: account not found"})
	}
	if sa.KeyID != "" {
		if kid := j.head("kid"); kid != sa.KeyID {
			return bad(badSig, "kid %q, want %q", kid, sa.KeyID)
		}
	}
	if err := j.verify(sa.PublicKey, "RS256"); err != nil {
		return bad(badSig, "signature: %v", err)
	}
	if aud := j.audience(); len(aud) != 1 || aud[0] != s.TokenURL() {
		return bad("Invalid JWT: Failed audience check. The expected audience is the token endpoint.", "aud %q, want the token URL %q", aud, s.TokenURL())
	}
	iat, okIat, err1 := j.time("iat")
	exp, okExp, err2 := j.time("exp")
	switch {
	case err1 != nil || err2 != nil || !okIat || !okExp:
		return bad(badTime, "iat and exp must be NumericDates")
	case exp.Sub(iat) > maxBearerLife:
		return bad(badTime, "lives %v, at most %v", exp.Sub(iat), maxBearerLife)
	case !exp.After(q.now), iat.Sub(q.now) > clockSkew:
		// Google checks iat and exp against its own clock, so a box
		// whose clock is off gets invalid_grant with this text
		// (developers.google.com/identity/protocols/oauth2/service-account,
		// "Invalid JWT: Token must be a short-lived token"). Not a
		// protocol error: the client's clock is wrong.
		return s.refuse(refusal{code: "invalid_grant", gdesc: badTime,
			desc: fmt.Sprintf("assertion: iat %s, exp %s, outside the server's time %s", iat.UTC().Format(time.RFC3339), exp.UTC().Format(time.RFC3339), q.now.UTC().Format(time.RFC3339))})
	}
	scope := j.claim("scope")
	if scope == "" {
		return s.bad(q, refusal{code: "invalid_scope", desc: "assertion without scope", gdesc: "Empty or missing scope not allowed."})
	}
	sub := j.claim("sub")
	if sub == "" {
		return bad("Invalid grant", "no sub: domain-wide delegation needs the mailbox to act as")
	}
	if !slices.Contains(sa.Subjects, sub) {
		// Delegation not granted (yet) is the administrator's business.
		return s.refuse(refusal{status: http.StatusUnauthorized, code: "unauthorized_client",
			desc:  fmt.Sprintf("service account %q may not act as %q", iss, sub),
			gdesc: "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."})
	}
	return s.issue(q, sa.Email, sub, scope, 0, false)
}
