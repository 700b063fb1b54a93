package oauthtest

import (
	"crypto/subtle"
	"fmt"
)

// passwordGrant serves the resource owner password credentials grant (RFC
// 6749 §4.3), Microsoft flavour only. The lock is held.
func (s *Server) passwordGrant(q *req, c *Client, omitRT bool) reply {
	f := q.form
	if q.tenant == "common" || q.tenant == "consumers" {
		return s.bad(q, refusal{code: "invalid_request", desc: fmt.Sprintf("password grant under /%s: use organizations or the tenant", q.tenant),
			aad: 9001023, ms: "The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint."})
	}
	for _, name := range []string{"username", "password", "scope"} {
		if f.Get(name) == "" {
			return s.bad(q, missing(name))
		}
	}
	user, scope := f.Get("username"), f.Get("scope")
	want, ok := s.o.Users[user]
	// Unknown users and wrong passwords are the operator's mistakes.
	if !ok {
		return s.refuse(refusal{code: "invalid_grant", desc: "unknown user",
			aad: 50034, ms: fmt.Sprintf("The user account {EUII Hidden} does not exist in the %s directory. To sign into this application, the account must be added to the directory.", s.o.Tenant)})
	}
	if subtle.ConstantTimeCompare([]byte(f.Get("password")), []byte(want)) != 1 {
		return s.refuse(refusal{code: "invalid_grant", desc: "wrong password",
			aad: 50126, ms: "Error validating credentials due to invalid username or password."})
	}
	refresh := hasWord(scope, "offline_access")
	if !refresh {
		q.violate("scope %q without offline_access: Microsoft gives no refresh token", scope)
	}
	s.families++
	return s.issue(q, c.ID, user, scope, s.families, refresh && !omitRT)
}
