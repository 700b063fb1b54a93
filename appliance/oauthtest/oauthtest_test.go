package oauthtest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a testing.TB that keeps Errorf calls instead of failing, so
// the tests can check that the server complains.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors int
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors++
}

// take returns the count of Errorf calls since the last take.
func (r *recorder) take() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.errors
	r.errors = 0
	return n
}

func TestIntrospect(t *testing.T) {
	s := New(t)
	live := s.Mint("alarm@example.test", time.Hour, "mail", "send")
	long := s.MintSize("alarm@example.test", 2500, time.Hour)
	revoked := s.Mint("alarm@example.test", time.Hour)
	s.Revoke(revoked)
	expired := s.Mint("alarm@example.test", -time.Second)

	if len(long) != 2500 {
		t.Fatalf("MintSize(2500) gave %d characters", len(long))
	}
	if live == revoked || strings.ContainsAny(long, "+/=\r\n ") {
		t.Fatalf("tokens are not unique opaque url-safe strings: %q %q", live, revoked)
	}

	for tok, want := range map[string]bool{live: true, long: true, revoked: false, expired: false, "unknown": false} {
		if account, ok := s.Owner(tok); ok != want || (ok && account != "alarm@example.test") {
			t.Errorf("Owner(%.12q…) = %q, %v; want live %v", tok, account, ok, want)
		}
	}

	tests := []struct {
		name   string
		token  string
		active bool
		scope  string
	}{
		{"live", live, true, "mail send"},
		{"long", long, true, ""},
		{"revoked", revoked, false, ""},
		{"expired", expired, false, ""},
		{"unknown", "no-such-token", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.PostForm(s.IntrospectURL(), url.Values{"token": {tt.token}})
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200", resp.StatusCode)
			}
			var got map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if got["active"] != tt.active {
				t.Fatalf("active = %v, want %v (%v)", got["active"], tt.active, got)
			}
			if !tt.active {
				if len(got) != 1 {
					t.Errorf("inactive answer %v says more than active=false", got)
				}
				return
			}
			if got["username"] != "alarm@example.test" || got["token_type"] != "Bearer" {
				t.Errorf("answer %v, want username alarm@example.test and token_type Bearer", got)
			}
			if exp, ok := got["exp"].(float64); !ok || exp < float64(time.Now().Unix()) {
				t.Errorf("exp = %v, want a future Unix time", got["exp"])
			}
			if scope, _ := got["scope"].(string); scope != tt.scope {
				t.Errorf("scope = %q, want %q", scope, tt.scope)
			}
		})
	}
	if got, want := s.Introspections(), len(tests); got != want {
		t.Errorf("Introspections() = %d, want %d", got, want)
	}
}

func TestIntrospectRefuses(t *testing.T) {
	rec := &recorder{TB: t}
	s := New(rec)
	tok := s.Mint("alarm@example.test", time.Hour)
	base := s.URL() + "/introspect"

	tests := []struct {
		name   string
		method string
		user   string
		pass   string
		body   string
		status int
	}{
		{"no credentials", "POST", "", "", "token=" + tok, http.StatusUnauthorized},
		{"wrong secret", "POST", ClientID, "nope", "token=" + tok, http.StatusUnauthorized},
		{"get", "GET", ClientID, ClientSecret, "", http.StatusMethodNotAllowed},
		{"no token", "POST", ClientID, ClientSecret, "", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.take()
			req, err := http.NewRequest(tt.method, base, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if n := rec.take(); n != 1 {
				t.Errorf("server reported %d test errors, want 1", n)
			}
		})
	}
	if n := s.Introspections(); n != 0 {
		t.Errorf("Introspections() = %d after refused requests, want 0", n)
	}
}
