package oauthtest

import (
	"fmt"
	"strings"
	"time"
)

// refreshToken is an issued refresh token.
type refreshToken struct {
	token   string
	client  string
	user    string
	scope   string
	family  int       // the grant it belongs to
	issued  time.Time // when it was issued
	used    time.Time // issue or last use, for Options.RefreshTTL
	rotated bool      // a newer one replaced it
	expired bool      // by ExpireRefreshTokens
	refused bool      // invalid_grant was answered for it
}

type rtState int

const (
	rtLive rtState = iota
	rtRevoked
	rtExpired
	rtRotated // rotated out under RotateRevokeOnReuse
)

// refreshState is whether the server would accept rt now. The lock is held.
func (s *Server) refreshState(rt *refreshToken, now time.Time) rtState {
	switch {
	case s.revoked[rt.family]:
		return rtRevoked
	case rt.expired || (s.o.RefreshTTL > 0 && now.Sub(rt.used) >= s.o.RefreshTTL):
		return rtExpired
	case rt.rotated && s.o.Rotation == RotateRevokeOnReuse:
		return rtRotated
	}
	return rtLive
}

// newRefresh issues a refresh token. The lock is held.
func (s *Server) newRefresh(client, user, scope string, family int, now time.Time) string {
	rt := &refreshToken{token: randomString(400), client: client, user: user, scope: scope,
		family: family, issued: now, used: now}
	s.refresh[rt.token] = rt
	s.refreshOrder = append(s.refreshOrder, rt)
	return rt.token
}

// refreshGrant serves grant_type=refresh_token (RFC 6749 §6). The lock is
// held.
func (s *Server) refreshGrant(q *req, c *Client, omitRT bool) reply {
	f := q.form
	tok := f.Get("refresh_token")
	if tok == "" {
		return s.bad(q, missing("refresh_token"))
	}
	rt := s.refresh[tok]
	if rt == nil {
		return s.bad(q, refusal{code: "invalid_grant", desc: "unknown refresh token",
			aad: 9002313, ms: "Invalid request. Request is malformed or invalid.", gdesc: "Bad Request"})
	}
	if rt.refused {
		q.violate("refresh token used again after invalid_grant: only a new authorization helps")
	}
	if rt.client != c.ID {
		return s.bad(q, refusal{code: "invalid_grant", desc: fmt.Sprintf("refresh token of client %q used by %q", rt.client, c.ID),
			aad: 70000, ms: "Provided grant is invalid or malformed.", gdesc: "Bad Request"})
	}
	if rt.rotated {
		s.reuses++
	}
	const gone = "Token has been expired or revoked."
	switch s.refreshState(rt, q.now) {
	case rtRevoked:
		rt.refused = true
		return s.refuse(refusal{code: "invalid_grant", desc: "refresh token revoked",
			aad: 50173, ms: fmt.Sprintf("The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '%s'.", msTime(rt.issued)),
			gdesc: gone})
	case rtExpired:
		rt.refused = true
		return s.refuse(refusal{code: "invalid_grant", desc: "refresh token expired",
			aad: 700082, ms: fmt.Sprintf("The refresh token has expired due to inactivity. The token was issued on %s and was inactive for 90.00:00:00.", msTime(rt.issued)),
			gdesc: gone})
	case rtRotated:
		rt.refused = true
		s.revokeFamily(rt.family)
		return s.bad(q, refusal{code: "invalid_grant", desc: "refresh token used after it was rotated out; the whole grant is revoked (RFC 9700 §4.14.2)",
			aad: 50173, ms: "The provided grant has expired due to it being revoked, a fresh auth token is needed.", gdesc: gone})
	}
	scope := rt.scope
	if sc := f.Get("scope"); sc != "" {
		for _, w := range strings.Fields(sc) {
			if !hasWord(rt.scope, w) {
				return s.bad(q, refusal{code: "invalid_scope", desc: fmt.Sprintf("scope %q is not part of the grant's %q", w, rt.scope),
					aad: 70011, ms: fmt.Sprintf("The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", sc)})
			}
		}
		scope = sc
	}
	rt.used = q.now
	rotate := s.o.Rotation != NoRotation && !omitRT
	if rotate {
		rt.rotated = true
	}
	return s.issue(q, c.ID, rt.user, scope, rt.family, rotate)
}

func msTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }
