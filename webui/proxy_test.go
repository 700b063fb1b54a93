package webui

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProxyAuth(t *testing.T) {
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	mw, err := ProxyAuth([]string{"127.0.0.1", "10.0.0.0/8", "2001:db8::/32"}, "X-Forwarded-User", log)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSessions(SessionOptions{})
	ss := newSessionServer(t, s)
	h := mw(ss.h)
	do := func(method, remote, user string, c *http.Cookie, csrf string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "/api/status", nil)
		r.RemoteAddr = remote
		if user != "" {
			r.Header.Set("X-Forwarded-User", user)
		}
		if c != nil {
			r.AddCookie(c)
		}
		if csrf != "" {
			r.Header.Set(CSRFHeader, csrf)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	tests := []struct {
		name, method, remote, user string
		want                       int
	}{
		{"trusted IP", "GET", "127.0.0.1:3000", "alice", 200},
		{"trusted CIDR", "GET", "10.20.30.40:3000", "alice", 200},
		{"trusted v6", "GET", "[2001:db8::5]:3000", "alice", 200},
		{"trusted v4-mapped", "GET", "[::ffff:10.1.1.1]:3000", "alice", 200},
		{"untrusted", "GET", "192.0.2.50:3000", "alice", 401},
		{"untrusted v6", "GET", "[2001:db9::5]:3000", "alice", 401},
		{"trusted without header", "GET", "127.0.0.1:3000", "", 401},
		{"trusted, blank header", "GET", "127.0.0.1:3000", "  ", 401},
		{"trusted, overlong user", "GET", "127.0.0.1:3000", strings.Repeat("a", 300), 401},
		{"trusted, control character", "GET", "127.0.0.1:3000", "al\x01ice", 401},
		{"trusted post without csrf", "POST", "127.0.0.1:3000", "alice", 403},
	}
	for _, tt := range tests {
		before := ss.callCount()
		w := do(tt.method, tt.remote, tt.user, nil, "")
		if w.Code != tt.want {
			t.Errorf("%s: %d; want %d", tt.name, w.Code, tt.want)
			continue
		}
		if (ss.callCount() > before) != (tt.want == 200) {
			t.Errorf("%s: handler called = %v", tt.name, ss.callCount() > before)
		}
		if tt.want == 200 && (ss.last.User != "alice" || !ss.last.Proxy) {
			t.Errorf("%s: session %+v; want proxy user alice", tt.name, ss.last)
		}
	}
	if !strings.Contains(logBuf.String(), "proxy user header ignored") || !strings.Contains(logBuf.String(), "192.0.2.50") {
		t.Errorf("untrusted header not logged: %q", logBuf.String())
	}

	// The proxy's session carries a CSRF token the page then sends back.
	w := do("GET", "127.0.0.1:3000", "bob", nil, "")
	cs := w.Result().Cookies()
	if w.Code != 200 || len(cs) != 1 {
		t.Fatalf("proxy GET = %d with cookies %v", w.Code, cs)
	}
	csrf := ss.last.CSRF
	if w := do("POST", "127.0.0.1:3000", "bob", cs[0], csrf); w.Code != 200 {
		t.Errorf("proxy POST with the session's csrf = %d; want 200", w.Code)
	}
	if w := do("POST", "127.0.0.1:3000", "carol", cs[0], csrf); w.Code != 403 {
		t.Errorf("bob's csrf for carol = %d; want 403", w.Code)
	}
	if w := do("GET", "192.0.2.50:3000", "bob", cs[0], ""); w.Code != 401 {
		t.Errorf("proxy session used past the proxy = %d; want 401", w.Code)
	}
}

func TestProxyAuthConfig(t *testing.T) {
	for _, bad := range [][]string{{"10.0.0.0/33"}, {"not-an-ip"}, {"10.0.0.1", ""}} {
		if _, err := ProxyAuth(bad, "", nil); err == nil {
			t.Errorf("ProxyAuth(%q) accepted", bad)
		}
	}
	mw, err := ProxyAuth(nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ss := newSessionServer(t, NewSessions(SessionOptions{}))
	r := httptest.NewRequest("GET", "/api/x", nil)
	r.RemoteAddr = "127.0.0.1:1"
	r.Header.Set(DefaultProxyHeader, "alice")
	w := httptest.NewRecorder()
	mw(ss.h).ServeHTTP(w, r)
	if w.Code != 401 {
		t.Errorf("no trusted proxies, header from localhost = %d; want 401", w.Code)
	}
}
