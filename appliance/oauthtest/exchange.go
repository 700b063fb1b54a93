package oauthtest

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// exchange redeems an authorization code (RFC 6749 §4.1.3, RFC 7636 §4.6).
// The lock is held.
func (s *Server) exchange(q *req, c *Client, omitRT bool) reply {
	f := q.form
	code := f.Get("code")
	if code == "" {
		return s.bad(q, missing("code"))
	}
	ac := s.codes[code]
	if ac == nil {
		return s.bad(q, refusal{code: "invalid_grant", desc: "unknown authorization code",
			aad: 9002313, ms: "Invalid request. Request is malformed or invalid.", gdesc: "Malformed auth code."})
	}
	if ac.used {
		// RFC 6749 §4.1.2: revoke what the code gave.
		s.revokeFamily(ac.family)
		return s.bad(q, refusal{code: "invalid_grant", desc: "authorization code redeemed twice; the grant it gave is revoked",
			aad: 54005, ms: "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
			gdesc: "Bad Request"})
	}
	ac.used = true
	if q.now.Sub(ac.issued) > codeTTL {
		// The user took too long: not the client's fault.
		return s.refuse(refusal{code: "invalid_grant", desc: fmt.Sprintf("authorization code expired (older than %v)", codeTTL),
			aad: 70008, ms: "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
			gdesc: "Bad Request"})
	}
	if ac.client != c.ID {
		return s.bad(q, refusal{code: "invalid_grant", desc: fmt.Sprintf("code issued to client %q, redeemed by %q", ac.client, c.ID),
			aad: 70000, ms: "Provided grant is invalid or malformed.", gdesc: "Bad Request"})
	}
	if s.o.Flavour == Microsoft && ac.tenant != q.tenant {
		return s.bad(q, refusal{code: "invalid_grant", desc: fmt.Sprintf("code issued under tenant %q, redeemed under %q", ac.tenant, q.tenant),
			aad: 700005, ms: "Provided Authorization Code is intended to use against other tenant, thus rejected."})
	}
	if ru := f.Get("redirect_uri"); ru != ac.redirect {
		return s.bad(q, refusal{code: "invalid_grant", desc: fmt.Sprintf("redirect_uri %q, the authorization request had %q (RFC 6749 §4.1.3)", ru, ac.redirect),
			aad: 50011, ms: fmt.Sprintf("The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'.", ru, c.ID),
			gcode: "redirect_uri_mismatch", gdesc: "Bad Request"})
	}
	v := f.Get("code_verifier")
	const mismatch = "The Code_Verifier does not match the code_challenge supplied in the authorization request."
	switch {
	case v == "":
		return s.bad(q, refusal{code: "invalid_grant", desc: "no code_verifier for the code's PKCE challenge",
			aad: 501481, ms: mismatch, gdesc: "Missing code verifier."})
	case !validVerifier(v):
		return s.bad(q, refusal{code: "invalid_grant", desc: "code_verifier is not 43 to 128 unreserved characters (RFC 7636 §4.1)",
			aad: 501481, ms: mismatch, gdesc: "Invalid code verifier."})
	}
	sum := sha256.Sum256([]byte(v))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != ac.challenge {
		return s.bad(q, refusal{code: "invalid_grant", desc: "code_verifier does not hash to the code_challenge (S256)",
			aad: 501481, ms: mismatch, gdesc: "Invalid code verifier."})
	}
	s.families++
	ac.family = s.families
	return s.issue(q, c.ID, ac.account, ac.scope, ac.family, ac.refresh && !omitRT)
}

// validVerifier reports whether v is a code verifier: 43 to 128 characters
// of [A-Z] [a-z] [0-9] "-" "." "_" "~" (RFC 7636 §4.1).
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, r := range v {
		if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", r) {
			return false
		}
	}
	return true
}
