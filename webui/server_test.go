package webui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"mailagent/appliance/agent"
	"mailagent/appliance/alarm"
	"mailagent/appliance/config"
	"mailagent/board"
)

// fakeBackend is an agent in memory: a configuration, the grants it
// started, the tokens it stored.
type fakeBackend struct {
	mu       sync.Mutex
	cfg      config.Config
	saves    int
	next     int
	pending  map[string]bool
	finishes int
	stored   []string // accounts authorised
	alarms   []agent.RecentAlarm
	hash     string
	testErr  error // SendTest's answer
}

func newFakeBackend(hash string) *fakeBackend {
	return &fakeBackend{pending: map[string]bool{}, hash: hash}
}

func (f *fakeBackend) Board() board.Profile {
	return board.Profile{Name: "host", Listen: "127.0.0.1:8080"}
}

func (f *fakeBackend) Status(ctx context.Context) agent.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return agent.Status{Board: "host", Running: true, Auth: f.cfg.SMTP.Auth}
}

func (f *fakeBackend) Config() (config.Config, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg, nil
}

func (f *fakeBackend) UpdateConfig(change func(c *config.Config) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cfg
	if err := change(&c); err != nil {
		return err
	}
	f.cfg = c
	f.saves++
	return nil
}

func (f *fakeBackend) StartAuthorize() (string, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	state := "state-" + strings.Repeat("x", f.next)
	f.pending[state] = true
	return "https://login.provider.test/authorize?state=" + url.QueryEscape(state), state, nil
}

// FinishAuthorize takes the state once; an error redirect becomes an
// *agent.AuthorizeError carrying what the provider said.
func (f *fakeBackend) FinishAuthorize(ctx context.Context, state, redirected string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finishes++
	if !f.pending[state] {
		return "", &agent.AuthorizeError{Err: errors.New("no grant"), Hint: "start again"}
	}
	delete(f.pending, state)
	q, _ := agent.PastedParams(redirected)
	if code := q.Get("error"); code != "" {
		return "", &agent.AuthorizeError{Code: code, Description: q.Get("error_description"), Hint: "authorise again and accept the permissions",
			Err: errors.New("authorization: " + code)}
	}
	f.stored = append(f.stored, "alarm@example.test")
	return "alarm@example.test", nil
}

func (f *fakeBackend) ObtainNow(ctx context.Context) (string, error) { return "app@example.test", nil }

func (f *fakeBackend) SendTest(ctx context.Context, trace func(step, detail string)) (string, error) {
	trace("connect", "smtp.example.test:587 (starttls)")
	if f.testErr != nil {
		return "", f.testErr
	}
	return "250 2.0.0 Ok: queued", nil
}

func (f *fakeBackend) RecentAlarms() []agent.RecentAlarm {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.alarms
}

func (f *fakeBackend) Import(kind string, data []byte) error { return nil }

func (f *fakeBackend) PasswordHash() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hash
}

func (f *fakeBackend) SetPasswordHash(h string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hash = h
	return nil
}

func (f *fakeBackend) Hint(err error) string { return agent.Hint(err) }

func (f *fakeBackend) counts() (finishes, stored int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.finishes, len(f.stored)
}

// syncBuffer is a log destination tests can read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// site is a Server under test with the log it wrote.
type site struct {
	t   *testing.T
	s   *Server
	log *syncBuffer
}

func newPage(t *testing.T, b Backend, o Options) *site {
	t.Helper()
	log := &syncBuffer{}
	o.Backend = b
	o.Hosts = append(o.Hosts, "box.example.test") // the test box's name
	o.Log = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", log.String())
		}
	})
	return &site{t: t, s: s, log: log}
}

// browser is one browser: its cookies and the session's CSRF token.
type browser struct {
	cookies map[string]*http.Cookie
	csrf    string
}

// loggedIn returns a browser with a fresh admin session.
func (p *site) loggedIn() *browser {
	c, csrf := login(p.t, p.s.sessions, true)
	return &browser{cookies: map[string]*http.Cookie{c.Name: c}, csrf: csrf}
}

// do sends a request from br (nil: a browser without cookies) and keeps
// the cookies the answer sets.
func (p *site) do(br *browser, method, target, contentType, body string, csrf bool) *http.Response {
	p.t.Helper()
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if br != nil {
		for _, c := range br.cookies {
			r.AddCookie(c)
		}
		if csrf {
			r.Header.Set(CSRFHeader, br.csrf)
		}
	}
	w := httptest.NewRecorder()
	p.s.ServeHTTP(w, r)
	resp := w.Result()
	if br != nil {
		for _, c := range resp.Cookies() {
			if c.MaxAge < 0 {
				delete(br.cookies, c.Name)
			} else {
				br.cookies[c.Name] = c
			}
		}
	}
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func decode[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	var v T
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("answer %d is not JSON: %v", resp.StatusCode, err)
	}
	return v
}

func TestPagesNeedLogin(t *testing.T) {
	p := newPage(t, newFakeBackend(testCheapHash(t)), Options{})
	resp := p.do(nil, "GET", "https://box.example.test/", "", "", false)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("GET / without session = %d %q; want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	br := p.loggedIn()
	resp = p.do(br, "GET", "https://box.example.test/", "", "", false)
	if b := body(t, resp); resp.StatusCode != 200 || !strings.Contains(b, `id="btn-save"`) {
		t.Fatalf("GET / with session = %d; want the admin page", resp.StatusCode)
	}
	resp = p.do(nil, "GET", "https://box.example.test/login", "", "", false)
	if b := body(t, resp); !strings.Contains(b, `id="login-password"`) || strings.Contains(b, `id="setup-code"`) {
		t.Errorf("GET /login with a password set does not show the login form alone:\n%s", b)
	}
}

func TestSetupCode(t *testing.T) {
	fb := newFakeBackend("")
	p := newPage(t, fb, Options{SetupCode: "K7QX-M2PD-9TRF"})
	resp := p.do(nil, "GET", "https://box.example.test/login", "", "", false)
	if b := body(t, resp); !strings.Contains(b, `id="setup-code"`) {
		t.Fatalf("GET /login without a password does not show the setup form:\n%s", b)
	}
	form := func(code, pw, pw2 string) string {
		return url.Values{"code": {code}, "password": {pw}, "password2": {pw2}}.Encode()
	}
	const ct = "application/x-www-form-urlencoded"
	tests := []struct {
		name, body string
		code       int
		field      string
	}{
		{"short password", form("K7QX-M2PD-9TRF", "short", "short"), 400, "password"},
		{"passwords differ", form("K7QX-M2PD-9TRF", "long enough 1", "long enough 2"), 400, "password2"},
		{"wrong code", form("AAAA-AAAA-AAAA", "long enough 1", "long enough 1"), 401, "code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := p.do(&browser{cookies: map[string]*http.Cookie{}}, "POST", "https://box.example.test/setup", ct, tt.body, false)
			e := decode[apiError](t, resp)
			if resp.StatusCode != tt.code || e.Errors[tt.field] == "" {
				t.Errorf("POST /setup = %d %+v; want %d with a message for %s", resp.StatusCode, e, tt.code, tt.field)
			}
			if fb.PasswordHash() != "" {
				t.Fatal("a password was set")
			}
		})
	}
	br := &browser{cookies: map[string]*http.Cookie{}}
	resp = p.do(br, "POST", "https://box.example.test/setup", ct, form("k7qx m2pd 9trf", "long enough 1", "long enough 1"), false)
	if resp.StatusCode != 200 || !agent.CheckPassword(fb.PasswordHash(), "long enough 1") || br.cookies[SessionCookie] == nil {
		t.Fatalf("POST /setup with the code = %d; want 200, the password set and a session", resp.StatusCode)
	}
	// good once: a second setup is refused even with the code
	fb.SetPasswordHash("")
	resp = p.do(nil, "POST", "https://box.example.test/setup", ct, form("K7QX-M2PD-9TRF", "other enough 1", "other enough 1"), false)
	if resp.StatusCode == 200 {
		t.Errorf("the setup code worked twice")
	}
}

func TestConfigAPI(t *testing.T) {
	fb := newFakeBackend(testCheapHash(t))
	p := newPage(t, fb, Options{})
	br := p.loggedIn()
	post := func(v any) *http.Response {
		b, _ := json.Marshal(v)
		return p.do(br, "POST", "https://box.example.test/api/config", "application/json", string(b), true)
	}

	// a bad value, an unknown key and the hash: every problem, nothing saved
	resp := post(map[string]any{"set": map[string]string{"mail.from": "not an address", "smtp.port": "x",
		"smtp.hots": "a", "admin.password_hash": "x"}})
	e := decode[apiError](t, resp)
	if resp.StatusCode != 400 {
		t.Fatalf("POST /api/config with bad values = %d; want 400", resp.StatusCode)
	}
	for _, k := range []string{"mail.from", "smtp.port", "smtp.hots", "admin.password_hash"} {
		if e.Errors[k] == "" {
			t.Errorf("no message for %s in %v", k, e.Errors)
		}
	}
	if fb.saves != 0 {
		t.Fatalf("a refused change was saved")
	}

	// a key still to be set does not block: oauth2 before its mode is
	// saved, and the mode is listed as missing (then undone)
	resp = post(map[string]any{"set": map[string]string{"mail.from": "box@example.test", "smtp.auth": "oauth2"}})
	saved := decode[struct {
		Saved    bool
		Problems []agent.KeyProblem
	}](t, resp)
	if resp.StatusCode != 200 || !saved.Saved || !slices.ContainsFunc(saved.Problems, func(p agent.KeyProblem) bool { return p.Key == "oauth2.mode" }) {
		t.Errorf("smtp.auth=oauth2 without a mode = %d %+v; want saved, naming oauth2.mode as still missing", resp.StatusCode, saved)
	}
	post(map[string]any{"unset": []string{"smtp.auth"}})
	if fb.cfg.SMTP.Auth != "" {
		t.Fatalf("smtp.auth not unset")
	}

	// a good partial change is saved; what was missing before is listed
	resp = post(map[string]any{"set": map[string]string{"mail.from": "box@example.test", "smtp.password": "canary-Smtp-41e0", "smtp.user": "box"}})
	ok := decode[struct {
		Saved    bool
		Problems []agent.KeyProblem
	}](t, resp)
	if resp.StatusCode != 200 || !ok.Saved || len(ok.Problems) == 0 {
		t.Fatalf("good change = %d %+v; want saved with the remaining problems", resp.StatusCode, ok)
	}
	if fb.cfg.Mail.From != "box@example.test" || fb.cfg.SMTP.Password.Reveal() != "canary-Smtp-41e0" {
		t.Fatalf("config after save: %+v", fb.cfg)
	}
	// an empty secret keeps the stored one; unset removes it
	post(map[string]any{"set": map[string]string{"smtp.password": ""}})
	if fb.cfg.SMTP.Password.Reveal() != "canary-Smtp-41e0" {
		t.Errorf("an empty secret field changed the secret")
	}
	resp = p.do(br, "GET", "https://box.example.test/api/config", "", "", false)
	b := body(t, resp)
	if strings.Contains(b, "canary-Smtp-41e0") || strings.Contains(b, "$2a$") {
		t.Fatalf("GET /api/config shows a secret")
	}
	var got configJSON
	json.Unmarshal([]byte(b), &got)
	found := false
	for _, k := range got.Keys {
		if k.Key == "smtp.password" {
			found = k.Set && k.Value == ""
		}
		if k.Key == "admin.password_hash" {
			t.Errorf("GET /api/config lists admin.password_hash")
		}
	}
	if !found || len(got.Modes) != len(config.Modes) {
		t.Errorf("GET /api/config: smtp.password not shown as set without value, or modes missing")
	}
	// removing the password while a user is set breaks password auth: refused
	if resp := post(map[string]any{"unset": []string{"smtp.password"}}); resp.StatusCode != 400 || !fb.cfg.SMTP.Password.IsSet() {
		t.Errorf("unset smtp.password with smtp.user set = %d; want 400 and the secret kept", resp.StatusCode)
	}
	post(map[string]any{"unset": []string{"smtp.password", "smtp.user"}})
	if fb.cfg.SMTP.Password.IsSet() {
		t.Errorf("unset did not remove the secret")
	}
	// wrong content type, unknown fields
	resp = p.do(br, "POST", "https://box.example.test/api/config", "text/plain", "{}", true)
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain = %d; want 415", resp.StatusCode)
	}
	resp = p.do(br, "POST", "https://box.example.test/api/config", "application/json", `{"sett":{}}`, true)
	if resp.StatusCode != 400 {
		t.Errorf("unknown field = %d; want 400", resp.StatusCode)
	}
}

// TestConfigAPIRefusesTenantCommon shows Save judging the tenant as
// config check does: common or consumers, in any case, cannot go with
// microsoft365, whether the change sets the tenant or the mode.
func TestConfigAPIRefusesTenantCommon(t *testing.T) {
	for _, tenant := range []string{"common", "Common", "COMMON", "Consumers"} {
		t.Run(tenant, func(t *testing.T) {
			fb := newFakeBackend(testCheapHash(t))
			p := newPage(t, fb, Options{})
			br := p.loggedIn()
			post := func(v any) (*http.Response, apiError) {
				b, _ := json.Marshal(v)
				resp := p.do(br, "POST", "https://box.example.test/api/config", "application/json", string(b), true)
				return resp, decode[apiError](t, resp)
			}
			resp, e := post(map[string]any{"set": map[string]string{"oauth2.mode": "microsoft365", "oauth2.tenant": tenant}})
			if resp.StatusCode != 400 || !strings.Contains(e.Errors["oauth2.tenant"], "cannot use tenant") || fb.saves != 0 {
				t.Fatalf("mode microsoft365 with tenant %s = %d %v (%d saves); want 400 naming oauth2.tenant, nothing saved", tenant, resp.StatusCode, e.Errors, fb.saves)
			}
			// the tenant alone is saved (no mode, nothing to judge it by);
			// the mode that cannot use it is refused by the tenant's name
			if resp, e := post(map[string]any{"set": map[string]string{"oauth2.tenant": tenant}}); resp.StatusCode != 200 {
				t.Fatalf("tenant %s alone = %d %v; want saved", tenant, resp.StatusCode, e)
			}
			resp, e = post(map[string]any{"set": map[string]string{"oauth2.mode": "microsoft365"}})
			if resp.StatusCode != 400 || e.Errors["oauth2.tenant"] == "" || fb.cfg.OAuth2.Mode != "" {
				t.Errorf("mode microsoft365 onto tenant %s = %d %v (mode %q); want 400 naming oauth2.tenant, mode not saved", tenant, resp.StatusCode, e.Errors, fb.cfg.OAuth2.Mode)
			}
		})
	}
}

func TestModeFields(t *testing.T) {
	for _, m := range config.Modes {
		fields := modeFields(m)
		for _, k := range fields {
			if _, err := config.LookupKey(k); err != nil {
				t.Errorf("mode %s shows %s: %v", m.Name, k, err)
			}
			if modeHelp[m.Name][k] == "" && k != "oauth2.key_id" && k != "oauth2.subject" {
				if _, ok := modeHelp[m.Name][k]; !ok {
					t.Errorf("mode %s: no help saying where to find %s", m.Name, k)
				}
			}
		}
		if m.Interactive && !strings.Contains(strings.Join(fields, " "), "oauth2.redirect_url") {
			t.Errorf("mode %s signs in but does not show the redirect URI", m.Name)
		}
	}
}

func TestAPIActions(t *testing.T) {
	fb := newFakeBackend(testCheapHash(t))
	fb.alarms = []agent.RecentAlarm{{Alarm: alarm.Alarm{Severity: alarm.Major, Code: "LINK-DOWN", Text: "<b>port 3</b>"}, Result: "queued"}}
	p := newPage(t, fb, Options{})
	br := p.loggedIn()

	resp := p.do(br, "POST", "https://box.example.test/api/test", "application/json", "{}", true)
	tr := decode[struct {
		OK    bool
		Reply string
		Steps []step
	}](t, resp)
	if !tr.OK || tr.Reply == "" || len(tr.Steps) != 1 {
		t.Errorf("POST /api/test = %+v", tr)
	}
	fb.testErr = fmt.Errorf("%w:\nmail.from: not set", agent.ErrNotConfigured)
	resp = p.do(br, "POST", "https://box.example.test/api/test", "application/json", "{}", true)
	if e := decode[apiError](t, resp); resp.StatusCode != http.StatusBadGateway || !strings.Contains(e.Error, "mail.from") || !strings.Contains(e.Hint, "save") {
		t.Errorf("POST /api/test, not configured = %d %+v; want 502 naming the key and a hint for the page", resp.StatusCode, e)
	}
	fb.testErr = nil
	resp = p.do(br, "GET", "https://box.example.test/api/alarms", "", "", false)
	if b := body(t, resp); !strings.Contains(b, "LINK-DOWN") {
		t.Errorf("GET /api/alarms = %s", b)
	}
	resp = p.do(br, "POST", "https://box.example.test/api/authorize", "application/json", "{}", true)
	if resp.StatusCode != 400 {
		t.Errorf("POST /api/authorize without a mode = %d; want 400", resp.StatusCode)
	}
	fb.cfg.OAuth2.Mode = "exchange"
	fb.cfg.OAuth2.RedirectURL = "http://localhost/auth.htm"
	resp = p.do(br, "POST", "https://box.example.test/api/authorize", "application/json", "{}", true)
	ar := decode[struct {
		URL   string
		Paste bool
		Note  string
	}](t, resp)
	if ar.URL != "/auth.htm" || !ar.Paste || !strings.Contains(ar.Note, "paste") {
		t.Errorf("POST /api/authorize with a redirect to localhost = %+v; want auth.htm and the paste path explained", ar)
	}
	fb.cfg.OAuth2.Mode = "microsoft-app"
	resp = p.do(br, "POST", "https://box.example.test/api/authorize", "application/json", "{}", true)
	if a := decode[struct{ Account string }](t, resp); a.Account == "" {
		t.Errorf("POST /api/authorize in an app-only mode did not get a token")
	}

	// the password: wrong old one, then right
	pw := func(old, n, n2 string) *http.Response {
		b, _ := json.Marshal(map[string]string{"old": old, "new": n, "new2": n2})
		return p.do(br, "POST", "https://box.example.test/api/passwd", "application/json", string(b), true)
	}
	if resp := pw("wrong", "new password 1", "new password 1"); resp.StatusCode != 403 {
		t.Errorf("passwd with a wrong old password = %d; want 403", resp.StatusCode)
	}
	other := p.loggedIn()
	resp = pw(adminPassword, "new password 1", "new password 1")
	nc := decode[struct{ CSRF string }](t, resp)
	if resp.StatusCode != 200 || !agent.CheckPassword(fb.PasswordHash(), "new password 1") {
		t.Fatalf("passwd = %d; password not changed", resp.StatusCode)
	}
	br.csrf = nc.CSRF
	if resp := p.do(br, "GET", "https://box.example.test/api/session", "", "", false); resp.StatusCode != 200 {
		t.Errorf("the session that changed the password ended")
	}
	if resp := p.do(other, "GET", "https://box.example.test/api/session", "", "", false); resp.StatusCode != 401 {
		t.Errorf("another session survived the password change")
	}
}

func TestRedirectAdvice(t *testing.T) {
	s := &Server{}
	r := httptest.NewRequest("GET", "https://192.168.1.20:8443/api/config", nil)
	exchange, _ := config.LookupMode("exchange")
	gmail, _ := config.LookupMode("gmail")
	tests := []struct {
		redirect string
		mode     config.Mode
		reach    bool
		note     string
	}{
		{"https://192.168.1.20:8443/auth.htm", exchange, true, ""},
		{"https://192.168.1.20:8443/auth.htm", gmail, true, "Google refuses"},
		{"http://localhost/auth.htm", gmail, false, "paste"},
		{"http://192.168.1.20:8443/auth.htm", exchange, false, "Microsoft accepts http://"},
		{"", exchange, false, "No redirect URI"},
	}
	for _, tt := range tests {
		reach, note := s.redirectAdvice(r, tt.redirect, tt.mode)
		if reach != tt.reach || !strings.Contains(note, tt.note) || (tt.note == "" && note != "") {
			t.Errorf("redirectAdvice(%q, %s) = %v, %q; want %v and a note with %q", tt.redirect, tt.mode.Name, reach, note, tt.reach, tt.note)
		}
	}
}

func TestFill(t *testing.T) {
	tests := []struct {
		page string
		vals map[string]string
		want string
		err  bool
	}{
		{"a {{x}} b", map[string]string{"x": `<i>"&'</i>`}, "a &lt;i&gt;&#34;&amp;&#39;&lt;/i&gt; b", false},
		{"{{?c}}[{{x}}{{?d}}({{y}}){{/d}}]{{/c}}.", map[string]string{"c": "1", "x": "X", "y": "Y", "d": ""}, "[X].", false},
		{"{{?c}}[{{x}}]{{/c}}.", map[string]string{"x": "X"}, ".", false},
		{"{{?c}}[{{nope}}]{{/c}}.", map[string]string{"c": ""}, ".", false},
		{"{{nope}}", map[string]string{}, "", true},
		{"{{?c}} open", map[string]string{"c": "1"}, "", true},
		{"{{/c}}", map[string]string{}, "", true},
		{"{{x", map[string]string{}, "", true},
	}
	for _, tt := range tests {
		got, err := fill(tt.page, tt.vals)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("fill(%q) = %q, %v; want %q, error %v", tt.page, got, err, tt.want, tt.err)
		}
	}
	// every page fills with the values its handlers give
	for name, vals := range map[string]map[string]string{
		"login.html": {"setup": "1", "login": ""},
		"auth.html":  authResult{Headline: "h", Code: "c", Description: "d", Hint: "x"}.vals(),
	} {
		b, err := fs.ReadFile(staticFS, "static/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := fill(string(b), vals); err != nil || strings.Contains(out, "{{") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

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
