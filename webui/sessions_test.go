package webui

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// sessionServer is RequireSession around a handler that records calls.
type sessionServer struct {
	s      *Sessions
	h      http.Handler
	mu     sync.Mutex
	calls  int
	last   Session
	formOK string
}

func newSessionServer(t *testing.T, s *Sessions) *sessionServer {
	t.Helper()
	ss := &sessionServer{s: s}
	ss.h = s.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		se, ok := SessionFrom(r)
		if !ok {
			t.Error("handler called without a session in the context")
		}
		ss.mu.Lock()
		ss.calls++
		ss.last = se
		ss.formOK = r.PostFormValue("name")
		ss.mu.Unlock()
		io.WriteString(w, "ok")
	}))
	return ss
}

func (ss *sessionServer) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	ss.h.ServeHTTP(w, r)
	return w
}

func (ss *sessionServer) callCount() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.calls
}

// login returns the cookie and CSRF token of a fresh admin session.
func login(t *testing.T, s *Sessions, tlsOn bool) (*http.Cookie, string) {
	t.Helper()
	r := httptest.NewRequest("POST", "/login", nil)
	if tlsOn {
		r.TLS = &tls.ConnectionState{}
	}
	w := httptest.NewRecorder()
	se := s.Login(w, r, AdminUser)
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != SessionCookie {
		t.Fatalf("Login set cookies %v; want one %s", cs, SessionCookie)
	}
	return cs[0], se.CSRF
}

func TestRequireSession(t *testing.T) {
	s := NewSessions(SessionOptions{})
	ss := newSessionServer(t, s)
	cookie, csrf := login(t, s, false)
	_, otherCSRF := login(t, s, false)

	tests := []struct {
		name     string
		method   string
		path     string
		cookie   *http.Cookie
		header   string // X-CSRF-Token
		form     url.Values
		want     int
		location string // for 303
		jsonErr  bool   // a {"error": …} body
	}{
		{"page without session", "GET", "/", nil, "", nil, 303, "/login", false},
		{"api without session", "GET", "/api/status", nil, "", nil, 401, "", true},
		{"api post without session", "POST", "/api/config", nil, csrf, nil, 401, "", true},
		{"unknown cookie", "GET", "/api/status", &http.Cookie{Name: SessionCookie, Value: "forged"}, "", nil, 401, "", true},
		{"empty cookie", "GET", "/", &http.Cookie{Name: SessionCookie, Value: ""}, "", nil, 303, "/login", false},
		{"page with session", "GET", "/", cookie, "", nil, 200, "", false},
		{"head with session", "HEAD", "/", cookie, "", nil, 200, "", false},
		{"api get with session", "GET", "/api/status", cookie, "", nil, 200, "", false},
		{"post without csrf", "POST", "/api/config", cookie, "", nil, 403, "", true},
		{"put without csrf", "PUT", "/api/config", cookie, "", nil, 403, "", true},
		{"patch without csrf", "PATCH", "/api/config", cookie, "", nil, 403, "", true},
		{"delete without csrf", "DELETE", "/api/config", cookie, "", nil, 403, "", true},
		{"post page without csrf", "POST", "/logout", cookie, "", nil, 403, "", false},
		{"post with wrong csrf", "POST", "/api/config", cookie, "x" + csrf[1:], nil, 403, "", true},
		{"post with another session's csrf", "POST", "/api/config", cookie, otherCSRF, nil, 403, "", true},
		{"post with form csrf wrong", "POST", "/save", cookie, "", url.Values{"csrf": {"nope"}, "name": {"x"}}, 403, "", false},
		{"post with header csrf", "POST", "/api/config", cookie, csrf, nil, 200, "", false},
		{"put with header csrf", "PUT", "/api/config", cookie, csrf, nil, 200, "", false},
		{"delete with header csrf", "DELETE", "/api/config", cookie, csrf, nil, 200, "", false},
		{"post with form csrf", "POST", "/save", cookie, "", url.Values{"csrf": {csrf}, "name": {"x"}}, 200, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.form != nil {
				body = strings.NewReader(tt.form.Encode())
			}
			r := httptest.NewRequest(tt.method, tt.path, body)
			if tt.form != nil {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tt.cookie != nil {
				r.AddCookie(tt.cookie)
			}
			if tt.header != "" {
				r.Header.Set(CSRFHeader, tt.header)
			}
			before := ss.callCount()
			w := ss.do(r)
			if w.Code != tt.want {
				t.Fatalf("%s %s = %d %q; want %d", tt.method, tt.path, w.Code, w.Body, tt.want)
			}
			called := ss.callCount() > before
			if called != (tt.want == 200) {
				t.Errorf("handler called = %v; want %v", called, tt.want == 200)
			}
			if tt.location != "" {
				if got := w.Header().Get("Location"); got != tt.location {
					t.Errorf("Location = %q; want %q", got, tt.location)
				}
			}
			if tt.jsonErr {
				var e struct{ Error string }
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Errorf("body %q is not {\"error\": …}: %v", w.Body, err)
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q; want application/json", ct)
				}
			}
			if strings.Contains(w.Body.String(), csrf) {
				t.Error("the answer shows the CSRF token")
			}
			if tt.want == 200 && tt.form != nil && ss.formOK != "x" {
				t.Errorf("handler saw form field name = %q; want x", ss.formOK)
			}
		})
	}
}

func TestSessionCookie(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		s := NewSessions(SessionOptions{})
		c, csrf := login(t, s, tlsOn)
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure != tlsOn {
			t.Errorf("tls %v: cookie HttpOnly=%v SameSite=%v Path=%q Secure=%v; want true, Strict, /, %v",
				tlsOn, c.HttpOnly, c.SameSite, c.Path, c.Secure, tlsOn)
		}
		if len(c.Value) != 43 { // 32 bytes base64url
			t.Errorf("session ID %q has %d characters; want 43", c.Value, len(c.Value))
		}
		if len(csrf) != 43 || csrf == c.Value {
			t.Errorf("CSRF token %q: want 43 characters, not the session ID", csrf)
		}
	}
}

func TestLoginReplacesPlantedSession(t *testing.T) {
	s := NewSessions(SessionOptions{})
	planted, _ := login(t, s, false)
	r := httptest.NewRequest("POST", "/login", nil)
	r.AddCookie(planted)
	s.Login(httptest.NewRecorder(), r, AdminUser)
	ss := newSessionServer(t, s)
	r = httptest.NewRequest("GET", "/api/status", nil)
	r.AddCookie(planted)
	if w := ss.do(r); w.Code != 401 {
		t.Errorf("the session a login replaced answers %d; want 401", w.Code)
	}
}

func TestSessionTimeouts(t *testing.T) {
	clock := newClock()
	s := NewSessions(SessionOptions{Now: clock.Now})
	ss := newSessionServer(t, s)
	get := func(c *http.Cookie) int {
		r := httptest.NewRequest("GET", "/api/status", nil)
		r.AddCookie(c)
		return ss.do(r).Code
	}

	idle, _ := login(t, s, false)
	clock.Advance(29 * time.Minute)
	if got := get(idle); got != 200 {
		t.Fatalf("after 29 min idle: %d; want 200", got)
	}
	clock.Advance(29 * time.Minute) // used 29 min ago: still alive
	if got := get(idle); got != 200 {
		t.Fatalf("58 min after login, 29 idle: %d; want 200", got)
	}
	clock.Advance(30 * time.Minute)
	if got := get(idle); got != 401 {
		t.Fatalf("after 30 min idle: %d; want 401", got)
	}

	busy, _ := login(t, s, false)
	for i := range 12 * 3 { // every 20 min for 12 h
		clock.Advance(20 * time.Minute)
		want := 200
		if i == 12*3-1 {
			want = 401
		}
		if got := get(busy); got != want {
			t.Fatalf("%v after login: %d; want %d", time.Duration(i+1)*20*time.Minute, got, want)
		}
	}
}

func TestSessionsBounded(t *testing.T) {
	clock := newClock()
	s := NewSessions(SessionOptions{Max: 3, Now: clock.Now})
	ss := newSessionServer(t, s)
	var cs []*http.Cookie
	for range 5 {
		c, _ := login(t, s, false)
		cs = append(cs, c)
		clock.Advance(time.Second)
	}
	if s.Len() != 3 {
		t.Errorf("Len = %d; want 3", s.Len())
	}
	for i, c := range cs {
		r := httptest.NewRequest("GET", "/api/status", nil)
		r.AddCookie(c)
		want := 200
		if i < 2 {
			want = 401 // the least recently used gave way
		}
		if got := ss.do(r).Code; got != want {
			t.Errorf("session %d: %d; want %d", i, got, want)
		}
	}
}

func TestLogout(t *testing.T) {
	s := NewSessions(SessionOptions{})
	c, csrf := login(t, s, false)
	other, _ := login(t, s, false)
	logout := s.RequireSession(http.HandlerFunc(s.Logout))
	r := httptest.NewRequest("POST", "/logout", nil)
	r.AddCookie(c)
	r.Header.Set(CSRFHeader, csrf)
	w := httptest.NewRecorder()
	logout.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("logout = %d", w.Code)
	}
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != SessionCookie || cs[0].Value != "" || cs[0].MaxAge >= 0 {
		t.Errorf("logout cookies %v; want %s cleared", cs, SessionCookie)
	}
	ss := newSessionServer(t, s)
	for _, tc := range []struct {
		c    *http.Cookie
		want int
	}{{c, 401}, {other, 200}} {
		r := httptest.NewRequest("GET", "/api/status", nil)
		r.AddCookie(tc.c)
		if got := ss.do(r).Code; got != tc.want {
			t.Errorf("after logout: %d; want %d", got, tc.want)
		}
	}
	s.Clear()
	if s.Len() != 0 {
		t.Errorf("after Clear Len = %d", s.Len())
	}
}
