package oauthtest

import (
	"crypto/subtle"
	"net/http"
)

// introspect answers RFC 7662 token introspection for Dovecot.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	q := s.newReq(r, "introspection")
	rp := s.introspection(q)
	s.flush(q.viol)
	rp.write(w)
}

func (s *Server) introspection(q *req) reply {
	r := q.r
	if r.Method != http.MethodPost {
		q.violate("%s, want POST", r.Method)
		return reply{status: http.StatusMethodNotAllowed, header: http.Header{"Allow": {http.MethodPost}}, page: "method not allowed"}
	}
	id, secret, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(id), []byte(ClientID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(secret), []byte(ClientSecret)) != 1 {
		q.violate("without the client's HTTP Basic credentials")
		return reply{status: http.StatusUnauthorized, header: http.Header{"Www-Authenticate": {`Basic realm="introspect"`}},
			body: map[string]any{"error": "invalid_client"}}
	}
	if err := r.ParseForm(); err != nil {
		q.violate("body: %v", err)
		return reply{status: http.StatusBadRequest, body: map[string]any{"error": "invalid_request"}}
	}
	tok := r.PostForm.Get("token")
	if tok == "" {
		q.violate("without a token field")
		return reply{status: http.StatusBadRequest, body: map[string]any{"error": "invalid_request"}}
	}

	s.mu.Lock()
	s.introspections++
	g, ok := s.tokens[tok]
	s.mu.Unlock()

	if !ok || g.revoked || !s.now().Before(g.expires) {
		return reply{body: map[string]any{"active": false}}
	}
	resp := map[string]any{
		"active":     true,
		"username":   g.user,
		"token_type": "Bearer",
		"exp":        g.expires.Unix(),
		"client_id":  ClientID,
	}
	if g.scope != "" {
		resp["scope"] = g.scope
	}
	return reply{body: resp}
}

// Owner is introspection in-process: the account a live access token of
// this server stands for; ok is false for an unknown, revoked or expired
// token. A submission server double can check tokens with it.
func (s *Server) Owner(token string) (account string, ok bool) {
	s.mu.Lock()
	g, known := s.tokens[token]
	s.mu.Unlock()
	if !known || g.revoked || !s.now().Before(g.expires) {
		return "", false
	}
	return g.user, true
}
