package webui

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"mailagent/appliance/agent"
)

const adminPassword = "canary-Admin-7c2d" // must never show in an answer or a log

// cheapHash is a bcrypt hash of adminPassword at the lowest cost, for tests
// about what happens around the check rather than the hash itself.
var cheapHash = sync.OnceValues(func() ([]byte, error) {
	return bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.MinCost)
})

func testCheapHash(t *testing.T) string {
	t.Helper()
	h, err := cheapHash()
	if err != nil {
		t.Fatalf("bcrypt: %v", err)
	}
	return string(h)
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestSetupGate(t *testing.T) {
	code := agent.NewSetupCode()
	g := NewSetupGate(code)
	steps := []struct {
		name        string
		code        string
		passwordSet bool
		want        bool
	}{
		{"wrong code", "AAAA-AAAA-AAAA", false, false},
		{"empty", "", false, false},
		{"right code but a password is set", code, true, false},
		{"right code, lower case, no dashes", strings.ToLower(strings.ReplaceAll(code, "-", "")), false, true},
		{"second use", code, false, false},
	}
	for _, s := range steps {
		if got := g.Use(s.code, s.passwordSet); got != s.want {
			t.Errorf("%s: Use = %v; want %v", s.name, got, s.want)
		}
	}
	if NewSetupGate("").Use("", false) {
		t.Error("a gate without a code opened for the empty code")
	}
	if NewSetupGate(" - ").Use("", false) {
		t.Error("a gate with a blank code opened")
	}
}

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

func TestLoginRateLimit(t *testing.T) {
	clock := newClock()
	var logBuf bytes.Buffer
	s := NewSessions(SessionOptions{Now: clock.Now})
	hash := testCheapHash(t)
	h := LoginHandler(LoginOptions{
		Sessions:     s,
		Limiter:      NewLoginLimiter(LimiterOptions{Now: clock.Now}),
		PasswordHash: func() string { return hash },
		Log:          slog.New(slog.NewTextHandler(&logBuf, nil)),
	})
	try := func(remote, pw string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"password": {pw}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if strings.Contains(w.Body.String(), adminPassword) {
			t.Fatal("the answer shows the password")
		}
		return w
	}
	const a, b = "192.0.2.7:40000", "198.51.100.9:40000"
	for i := range DefaultLoginBurst {
		if w := try(a, "wrong-password-"); w.Code != 401 {
			t.Fatalf("failure %d = %d; want 401", i+1, w.Code)
		}
	}
	w := try(a, adminPassword) // even the right password waits
	if w.Code != 429 || w.Header().Get("Retry-After") != "60" {
		t.Fatalf("after %d failures: %d Retry-After %q; want 429, 60", DefaultLoginBurst, w.Code, w.Header().Get("Retry-After"))
	}
	if try("192.0.2.7:40001", "wrong").Code != 429 {
		t.Error("another port of the same address is not limited")
	}
	if w := try(b, "wrong"); w.Code != 401 {
		t.Errorf("another client = %d; want 401", w.Code)
	}
	clock.Advance(DefaultLoginRefill)
	w = try(a, adminPassword)
	if w.Code != 200 {
		t.Fatalf("after the refill, the right password = %d %q; want 200", w.Code, w.Body)
	}
	var got struct{ CSRF string }
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got.CSRF) != 43 {
		t.Errorf("login answer %q: want {\"csrf\": token}", w.Body)
	}
	if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].Name != SessionCookie {
		t.Errorf("login cookies %v", cs)
	}
	for i := range DefaultLoginBurst { // the success reset the count
		if w := try(a, "wrong"); w.Code != 401 {
			t.Fatalf("after success, failure %d = %d; want 401", i+1, w.Code)
		}
	}
	if try(a, "wrong").Code != 429 {
		t.Error("limit did not come back after the reset")
	}
	if strings.Contains(logBuf.String(), adminPassword) || strings.Contains(logBuf.String(), "wrong-password-") {
		t.Error("a log line shows a password")
	}
	if !strings.Contains(logBuf.String(), "admin login failed") {
		t.Errorf("no log line for a failed login: %q", logBuf.String())
	}
}

func TestLoginHandlerNoPassword(t *testing.T) {
	h := LoginHandler(LoginOptions{
		Sessions:     NewSessions(SessionOptions{}),
		Limiter:      NewLoginLimiter(LimiterOptions{}),
		PasswordHash: func() string { return "" },
	})
	for _, tc := range []struct {
		method, pw string
		want       int
	}{{"POST", "", 401}, {"POST", "anything-at-all", 401}, {"GET", "", 405}} {
		r := httptest.NewRequest(tc.method, "/login", strings.NewReader("password="+tc.pw))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want || len(w.Result().Cookies()) != 0 {
			t.Errorf("%s %q = %d with %d cookies; want %d and none", tc.method, tc.pw, w.Code, len(w.Result().Cookies()), tc.want)
		}
	}
}

func TestLimiterBounded(t *testing.T) {
	clock := newClock()
	l := NewLoginLimiter(LimiterOptions{Burst: 2, Clients: 3, Now: clock.Now})
	for i := range 10 {
		if ok, _ := l.Take(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})); !ok {
			t.Fatalf("first try of client %d refused", i)
		}
	}
	l.mu.Lock()
	n := len(l.m)
	l.mu.Unlock()
	if n > 3 {
		t.Errorf("limiter holds %d clients; want at most 3", n)
	}
	last := netip.AddrFrom4([4]byte{10, 0, 0, 9})
	if ok, _ := l.Take(last); !ok {
		t.Fatal("second try refused")
	}
	if ok, wait := l.Take(last); ok || wait <= 0 || wait > DefaultLoginRefill {
		t.Errorf("third Take = %v, %v; want false and at most a minute", ok, wait)
	}
	l.Success(last)
	if ok, _ := l.Take(last); !ok {
		t.Error("Take after Success refused")
	}
}

func TestClientAddr(t *testing.T) {
	tests := []struct{ remote, want string }{
		{"192.0.2.1:5000", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:5000", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::"},
		{"192.0.2.1", "192.0.2.1"},
		{"@", "invalid IP"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if got := ClientAddr(r).String(); got != tt.want {
			t.Errorf("ClientAddr(%q) = %s; want %s", tt.remote, got, tt.want)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := SecurityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") }))
	tests := []struct {
		path    string
		noStore bool
	}{
		{"/", false},
		{"/login", false},
		{"/app.js", false},
		{"/auth.htm", true},
		{"/api/status", true},
		{"/api/", true},
		{"/apiary", false},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", tt.path, nil))
		want := map[string]string{
			"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
			"Referrer-Policy":         "no-referrer",
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Cache-Control":           "",
		}
		if tt.noStore {
			want["Cache-Control"] = "no-store"
		}
		for k, v := range want {
			if got := w.Header().Get(k); got != v {
				t.Errorf("%s: %s = %q; want %q", tt.path, k, got, v)
			}
		}
	}
}

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

func TestLoginRateLimitParallel(t *testing.T) {
	clock := newClock()
	hash := testCheapHash(t)
	h := LoginHandler(LoginOptions{
		Sessions:     NewSessions(SessionOptions{Now: clock.Now}),
		Limiter:      NewLoginLimiter(LimiterOptions{Now: clock.Now}),
		PasswordHash: func() string { return hash },
	})
	const n = 20
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			r := httptest.NewRequest("POST", "/login", strings.NewReader("password=guess-guess-guess"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.RemoteAddr = "192.0.2.7:1234"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			codes <- w.Code
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[401] != DefaultLoginBurst || count[429] != n-DefaultLoginBurst {
		t.Errorf("parallel guesses answered %v; want %d×401 and the rest 429", count, DefaultLoginBurst)
	}
}
