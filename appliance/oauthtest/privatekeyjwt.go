package oauthtest

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// AssertionType is the client_assertion_type of private_key_jwt (RFC 7523
// §2.2).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Limits on client assertions: Microsoft's assertions live at most 10
// minutes, and clocks may differ by a minute.
const (
	maxAssertionLife = 10 * time.Minute
	clockSkew        = time.Minute
)

// checkAssertion verifies the client assertion of a private_key_jwt
// client (RFC 7523 §3; Microsoft's certificate credentials). Every failure
// is a violation. The lock is held.
func (s *Server) checkAssertion(q *req, c *Client) (reply, bool) {
	f := q.form
	bad := func(aad int, ms string, format string, args ...any) (reply, bool) {
		return s.bad(q, refusal{status: http.StatusUnauthorized, code: "invalid_client",
			desc: "client assertion: " + fmt.Sprintf(format, args...), aad: aad, ms: ms, gdesc: "Unauthorized"}), false
	}
	const (
		badSig  = "Client assertion failed signature validation."
		badTime = "Client assertion is not within its valid time range."
	)
	if t := f.Get("client_assertion_type"); t != AssertionType {
		return bad(0, "", "client_assertion_type %q, want %q", t, AssertionType)
	}
	raw := f.Get("client_assertion")
	if raw == "" {
		return s.bad(q, missing("client_assertion")), false
	}
	j, err := parseJWT(raw)
	if err != nil {
		return bad(50027, "JWT token is invalid or malformed.", "%v", err)
	}
	if c.KeyID != "" {
		if kid := j.head("kid"); kid != c.KeyID {
			return bad(700027, badSig, "kid %q, want %q", kid, c.KeyID)
		}
	}
	if c.Certificate != nil {
		sum := sha256.Sum256(c.Certificate.Raw)
		// Microsoft documents base64url; MSAL Go sends standard Base64 and
		// works, so both pass.
		want := []string{base64.RawURLEncoding.EncodeToString(sum[:]), base64.StdEncoding.EncodeToString(sum[:])}
		got, present := j.header["x5t#S256"].(string)
		switch {
		case !present:
			return bad(700027, badSig, "no x5t#S256 header naming the registered certificate")
		case !slices.Contains(want, got):
			return bad(700027, badSig, "x5t#S256 %q is not the registered certificate's thumbprint %q", got, want[0])
		}
	}
	if err := j.verify(c.PublicKey, "RS256", "PS256"); err != nil {
		return bad(700027, badSig, "signature: %v", err)
	}
	iss, sub := j.claim("iss"), j.claim("sub")
	if iss != c.ID {
		return bad(700021, "Client assertion application identifier doesn't match 'client_id' parameter.",
			"iss %q, want the client_id %q", iss, c.ID)
	}
	if sub != iss {
		return bad(50048, "Subject mismatches Issuer claim in the client assertion.", "sub %q differs from iss %q", sub, iss)
	}
	aud := s.tokenURLFor(q)
	if got := j.audience(); len(got) != 1 || got[0] != aud {
		return bad(700027, badSig, "aud %q, want the token URL %q", got, aud)
	}
	exp, ok, err := j.time("exp")
	switch {
	case err != nil:
		return bad(700024, badTime, "%v", err)
	case !ok:
		return bad(700024, badTime, "no exp")
	case !exp.After(q.now):
		return bad(700024, badTime, "expired %v ago", q.now.Sub(exp))
	case exp.Sub(q.now) > maxAssertionLife:
		return bad(700024, badTime, "exp %v ahead, at most %v", exp.Sub(q.now), maxAssertionLife)
	}
	for _, name := range []string{"nbf", "iat"} {
		t, ok, err := j.time(name)
		switch {
		case err != nil:
			return bad(700024, badTime, "%v", err)
		case ok && t.Sub(q.now) > clockSkew:
			return bad(700024, badTime, "%s %v in the future", name, t.Sub(q.now))
		}
	}
	jti := j.claim("jti")
	if jti == "" {
		return bad(0, "", "no jti: each assertion must be unique")
	}
	key := c.ID + "\x00" + jti
	if s.jtis[key] {
		return bad(0, "", "jti %q replayed: sign a new assertion for every request", jti)
	}
	s.jtis[key] = true
	return reply{}, true
}
