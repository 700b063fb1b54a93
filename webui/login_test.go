package webui

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"mailagent/appliance/limit"
)

func TestLoginRateLimit(t *testing.T) {
	clock := newClock()
	var logBuf bytes.Buffer
	s := NewSessions(SessionOptions{Now: clock.Now})
	hash := testCheapHash(t)
	h := LoginHandler(LoginOptions{
		Sessions:     s,
		Limiter:      limit.NewAttempts(limit.AttemptOptions{Now: clock.Now}),
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
	for i := range limit.DefaultBurst {
		if w := try(a, "wrong-password-"); w.Code != 401 {
			t.Fatalf("failure %d = %d; want 401", i+1, w.Code)
		}
	}
	w := try(a, adminPassword) // even the right password waits
	if w.Code != 429 || w.Header().Get("Retry-After") != "60" {
		t.Fatalf("after %d failures: %d Retry-After %q; want 429, 60", limit.DefaultBurst, w.Code, w.Header().Get("Retry-After"))
	}
	if try("192.0.2.7:40001", "wrong").Code != 429 {
		t.Error("another port of the same address is not limited")
	}
	if w := try(b, "wrong"); w.Code != 401 {
		t.Errorf("another client = %d; want 401", w.Code)
	}
	clock.Advance(limit.DefaultRefill)
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
	for i := range limit.DefaultBurst { // the success reset the count
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
		Limiter:      limit.NewAttempts(limit.AttemptOptions{}),
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

func TestLoginRateLimitParallel(t *testing.T) {
	clock := newClock()
	hash := testCheapHash(t)
	h := LoginHandler(LoginOptions{
		Sessions:     NewSessions(SessionOptions{Now: clock.Now}),
		Limiter:      limit.NewAttempts(limit.AttemptOptions{Now: clock.Now}),
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
	if count[401] != limit.DefaultBurst || count[429] != n-limit.DefaultBurst {
		t.Errorf("parallel guesses answered %v; want %d×401 and the rest 429", count, limit.DefaultBurst)
	}
}
