package webui

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"mailagent/appliance/config"
)

// TestSessionEndsWhenThePasswordChangesElsewhere: a session ends once the
// admin password hash is not the one it began under, however it changed:
// the console's passwd and "mailagent config" write the file, not the
// page, and used to leave every web session running.
func TestSessionEndsWhenThePasswordChangesElsewhere(t *testing.T) {
	fb := newFakeBackend(testCheapHash(t))
	p := newPage(t, fb, Options{})
	br := p.loggedIn()
	if resp := p.do(br, "GET", "https://box.example.test/api/session", "", "", false); resp.StatusCode != 200 {
		t.Fatalf("GET /api/session = %d, want 200", resp.StatusCode)
	}
	fb.SetPasswordHash("$2a$04$" + strings.Repeat("x", 53)) // as the console's passwd does
	if resp := p.do(br, "GET", "https://box.example.test/api/session", "", "", false); resp.StatusCode != 401 {
		t.Errorf("GET /api/session after the password changed elsewhere = %d, want 401", resp.StatusCode)
	}
	if resp := p.do(br, "GET", "https://box.example.test/", "", "", false); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / after the password changed elsewhere = %d, want 303 to /login", resp.StatusCode)
	}
	if !strings.Contains(p.log.String(), "session ended: the admin password changed") {
		t.Errorf("the log does not say why the session ended:\n%s", p.log.String())
	}
	// A session begun under the new hash lives.
	br = p.loggedIn()
	if resp := p.do(br, "GET", "https://box.example.test/api/session", "", "", false); resp.StatusCode != 200 {
		t.Errorf("a new session: GET /api/session = %d, want 200", resp.StatusCode)
	}
}

// TestProxyHeaderWarningThrottled: X-Remote-User from an address not in
// trust_proxy is ignored and logged, but 5,000 such requests flushed the
// console's log ring with 5,000 lines: now a line a minute.
func TestProxyHeaderWarningThrottled(t *testing.T) {
	var logBuf bytes.Buffer
	mw, err := ProxyAuth(nil, "", slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for i := range 5000 {
		r := httptest.NewRequest("GET", "/api/status", nil)
		r.RemoteAddr = fmt.Sprintf("192.0.2.%d:4000", i%200)
		r.Header.Set(DefaultProxyHeader, "admin")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	if n := strings.Count(logBuf.String(), "proxy user header ignored"); n != 1 {
		t.Errorf("5,000 requests with the header from untrusted addresses logged %d lines, want 1:\n%.500s", n, logBuf.String())
	}
}

// TestHostCheck: the page answers only to names of this box (DNS
// rebinding let any page on the web drive the admin's browser against the
// plain-HTTP page, and the suggested redirect URI was built from any
// Host). IP addresses and localhost always work, so an admin with a name
// the box does not know is told what to set, not locked out.
func TestHostCheck(t *testing.T) {
	fb := newFakeBackend(testCheapHash(t))
	fb.cfg.OAuth2.RedirectURL = "https://login-back.example.test/auth.htm"
	alarm := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	p := newPage(t, fb, Options{Hosts: []string{"gw-lab-1"}, Alarm: alarm})
	tests := []struct {
		host string
		want int
	}{
		{"box.example.test", 303}, // Options.Hosts of the test page
		{"gw-lab-1:8443", 303},
		{"GW-LAB-1.:8443", 303},
		{"192.168.1.10:8443", 303},
		{"[fe80::1%25eth0]:8443", 303},
		{"[::1]:8080", 303},
		{"localhost:8080", 303},
		{"box.localhost", 303},
		{"login-back.example.test", 303}, // oauth2.redirect_url
		{"rebind.attacker.example", 421},
		{"gw-lab-1.attacker.example", 421},
		{"corp-name.example.test:8443", 421},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = tt.host
		w := httptest.NewRecorder()
		p.s.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("GET / with Host %q = %d, want %d", tt.host, w.Code, tt.want)
		}
		if tt.want == 421 && !strings.Contains(w.Body.String(), "http.base_url") {
			t.Errorf("Host %q refused without saying what to set: %q", tt.host, w.Body.String())
		}
	}
	// The name the admin uses works once http.base_url says so, at once.
	fb.UpdateConfig(func(c *config.Config) error { c.HTTP.BaseURL = "https://corp-name.example.test:8443"; return nil })
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = "corp-name.example.test:8443"
	w := httptest.NewRecorder()
	p.s.ServeHTTP(w, r)
	if w.Code != 303 {
		t.Errorf("GET / for http.base_url's host = %d, want 303", w.Code)
	}
	// The API says it in JSON; the alarm endpoints take any name.
	r = httptest.NewRequest("GET", "/api/status", nil)
	r.Host = "rebind.attacker.example"
	w = httptest.NewRecorder()
	p.s.ServeHTTP(w, r)
	if w.Code != 421 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Errorf("GET /api/status for another host = %d %s, want 421 JSON", w.Code, w.Header().Get("Content-Type"))
	}
	r = httptest.NewRequest("POST", "/alarm", nil)
	r.Host = "alarms.other-name.example"
	w = httptest.NewRecorder()
	p.s.ServeHTTP(w, r)
	if w.Code != http.StatusTeapot {
		t.Errorf("POST /alarm by another name = %d, want the alarm handler's answer", w.Code)
	}
}

// TestHSTS: under TLS every answer carries Strict-Transport-Security;
// plain HTTP (a loopback page) none.
func TestHSTS(t *testing.T) {
	p := newPage(t, newFakeBackend(testCheapHash(t)), Options{})
	for _, tt := range []struct{ url, want string }{
		{"https://box.example.test/login", HSTS},
		{"https://box.example.test/api/status", HSTS},
		{"http://127.0.0.1:8080/login", ""},
	} {
		resp := p.do(nil, "GET", tt.url, "", "", false)
		if got := resp.Header.Get("Strict-Transport-Security"); got != tt.want {
			t.Errorf("GET %s: Strict-Transport-Security %q, want %q", tt.url, got, tt.want)
		}
	}
}

// TestAccessKeysNeedPassword: a session could add its own address to
// http.trust_proxy and, after a restart, log in without a password. A
// change of a key that widens access now needs the admin password in the
// request; other keys, and the same value again, do not.
func TestAccessKeysNeedPassword(t *testing.T) {
	fb := newFakeBackend(testCheapHash(t))
	p := newPage(t, fb, Options{})
	br := p.loggedIn()
	post := func(body string) *http.Response {
		return p.do(br, "POST", "https://box.example.test/api/config", "application/json", body, true)
	}
	for _, key := range AccessKeys {
		value := "192.0.2.66"
		switch key {
		case "http.listen", "syslog.listen_udp", "syslog.listen_tcp":
			value = "0.0.0.0:9999"
		case "http.base_url":
			value = "https://attacker.example"
		case "http.tls_cert", "http.tls_key", "console.port":
			value = "/tmp/x"
		case "console.require_login":
			value = "true"
		}
		saves := fb.saves
		resp := post(fmt.Sprintf(`{"set":{%q:%q}}`, key, value))
		got := decode[apiError](t, resp)
		if resp.StatusCode != 403 || !strings.Contains(got.Errors["password"], key) || fb.saves != saves {
			t.Errorf("set %s without the password = %d %+v (saves %d -> %d), want 403 naming it, nothing saved",
				key, resp.StatusCode, got, saves, fb.saves)
		}
	}
	if resp := post(`{"set":{"http.trust_proxy":"192.0.2.66"},"password":"wrong password 1"}`); resp.StatusCode != 403 {
		t.Errorf("with a wrong password = %d, want 403", resp.StatusCode)
	}
	if resp := post(fmt.Sprintf(`{"set":{"http.trust_proxy":"192.0.2.66"},"password":%q}`, adminPassword)); resp.StatusCode != 200 {
		t.Errorf("with the password = %d %s, want 200", resp.StatusCode, body(t, resp))
	}
	if c, _ := fb.Config(); len(c.HTTP.TrustProxy) != 1 || c.HTTP.TrustProxy[0] != "192.0.2.66" {
		t.Errorf("trust_proxy = %q after the change with the password", c.HTTP.TrustProxy)
	}
	if resp := post(`{"set":{"http.trust_proxy":"192.0.2.66","mail.from":"alarm@example.test"}}`); resp.StatusCode != 200 {
		t.Errorf("the same trust_proxy again and another key = %d %s, want 200 without the password", resp.StatusCode, body(t, resp))
	}
	if resp := post(`{"unset":["http.trust_proxy"]}`); resp.StatusCode != 403 {
		t.Errorf("unset trust_proxy without the password = %d, want 403", resp.StatusCode)
	}
}
