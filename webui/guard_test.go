package webui

// The guards on every route, auth.htm's refusals, the secret canary and
// the page's CSP, against the real agent in a data directory where it
// matters (agent.Admin) and a fake elsewhere.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"mailagent/appliance/agent"
	"mailagent/appliance/ingest"
	"mailagent/appliance/oauthtest"
	"mailagent/board"
)

// realAgent makes a data directory holding doc as mailagent.toml and the
// agent on it; its log goes to log.
func realAgent(t *testing.T, doc string, log *syncBuffer, hc *http.Client) (string, *agent.Agent) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mailagent.toml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{Board: board.Profile{Name: "host", Listen: "127.0.0.1:0"}, DataDir: dir,
		Log: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	return dir, a
}

// hashDir returns the SHA-256 of every file under dir by path.
func hashDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			out[rel+"/"] = "dir"
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameFiles(a, b map[string]string) string {
	var diff []string
	for k, v := range a {
		if b[k] != v {
			diff = append(diff, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			diff = append(diff, k+" (new)")
		}
	}
	sort.Strings(diff)
	return strings.Join(diff, ", ")
}

func boxDoc(t *testing.T, extra string) string {
	return fmt.Sprintf(`[mail]
from = "alarm@example.test"
to = ["ops@example.test"]
[smtp]
host = "127.0.0.1"
port = 1
%s
[admin]
password_hash = %q
`, extra, testCheapHash(t))
}

// stateChangingBody is what each POST route would act on if let through.
var stateChangingBody = map[string]string{
	"/logout":               "",
	"/api/config":           `{"set":{"mail.from":"changed@example.test","smtp.password":"changed-secret"}}`,
	"/api/authorize":        `{}`,
	"/api/authorize/paste":  `{"url":"https://box.example.test/auth.htm?code=c&state=s"}`,
	"/api/test":             `{}`,
	"/api/import":           `{"kind":"google-client","data":"{\"web\":{\"client_id\":\"x.apps.googleusercontent.com\",\"client_secret\":\"y\"}}"}`,
	"/api/passwd":           `{"old":"` + adminPassword + `","new":"changed password","new2":"changed password"}`,
	"/login":                "password=wrong-password",
	"/setup":                "code=AAAA-AAAA-AAAA&password=long+enough+1&password2=long+enough+1",
	"/alarm":                `{"severity":"major","code":"X","text":"y"}`,
	"/alertmanager":         `{}`,
	"/api/authorize/unused": "",
}

// TestEveryRouteGuarded walks the route table: without a session a page
// redirects to /login and the API answers 401; with a session but without
// the CSRF token every state-changing route answers 403; the public
// state-changing routes refuse without their own credentials; and the data
// directory is the same, file for file, afterwards.
func TestEveryRouteGuarded(t *testing.T) {
	log := &syncBuffer{}
	dir, a := realAgent(t, boxDoc(t, `auth = "password"
user = "box"
password = "smtp-secret"`), log, nil)
	p := newPage(t, agent.NewAdmin(a), Options{Alarm: ingest.HTTP(ingest.HTTPOptions{Sink: a.Accept, User: "poster", Password: "poster-pw"})})
	before := hashDir(t, dir)
	br := p.loggedIn()
	const host = "https://box.example.test"
	// The only routes open without a session; everything under /api/ is API.
	publicRoutes := map[string]bool{"GET /login": true, "POST /login": true, "POST /setup": true,
		"GET /static/app.js": true, "GET /static/style.css": true, "POST /alarm": true, "POST /alertmanager": true}
	for _, rt := range routeTable {
		name := rt.method + " " + rt.path
		switch {
		case publicRoutes[name] != (rt.access == public):
			t.Errorf("route %s: access %d; only %v may be public", name, rt.access, publicRoutes)
		case strings.HasPrefix(rt.path, "/api/") && rt.access != api:
			t.Errorf("route %s is under /api/ but not an API route", name)
		case rt.path == "/auth.htm" && rt.access != callback:
			t.Errorf("route %s: access %d; want callback", name, rt.access)
		}
	}
	for _, rt := range routeTable {
		path := strings.TrimSuffix(rt.path, "{$}")
		payload := stateChangingBody[path]
		ct := "application/json"
		if path == "/login" || path == "/setup" || path == "/logout" {
			ct = "application/x-www-form-urlencoded"
		}
		t.Run(rt.method+" "+path, func(t *testing.T) {
			resp := p.do(nil, rt.method, host+path, ct, payload, false)
			switch rt.access {
			case page:
				if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
					t.Errorf("without session: %d %q; want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
				}
			case api:
				if e := decode[apiError](t, resp); resp.StatusCode != http.StatusUnauthorized || e.Error == "" {
					t.Errorf("without session: %d %+v; want 401 with an error", resp.StatusCode, e)
				}
			case callback:
				if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
					t.Errorf("without session: %d; want 303 to /login", resp.StatusCode)
				}
				resp = p.do(nil, "GET", host+path+"?code=c&state=s", "", "", false)
				if b := body(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(b, "nothing was stored") {
					t.Errorf("redirect back without session or grant cookie: %d; want 403 saying nothing was stored", resp.StatusCode)
				}
			case public:
				if rt.method == "POST" && resp.StatusCode < 400 {
					t.Errorf("public %s without credentials = %d; want a refusal", path, resp.StatusCode)
				}
				if rt.method == "GET" && resp.StatusCode != 200 {
					t.Errorf("public %s = %d; want 200", path, resp.StatusCode)
				}
			}
			if rt.method == "POST" && (rt.access == page || rt.access == api) {
				resp := p.do(br, rt.method, host+path, ct, payload, false)
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("with session, without CSRF token: %d; want 403", resp.StatusCode)
				}
				r2 := p.do(&browser{cookies: br.cookies, csrf: "forged-token"}, rt.method, host+path, ct, payload, true)
				if r2.StatusCode != http.StatusForbidden {
					t.Errorf("with session and a wrong CSRF token: %d; want 403", r2.StatusCode)
				}
			}
		})
	}
	if d := sameFiles(before, hashDir(t, dir)); d != "" {
		t.Errorf("refused requests changed the data directory: %s", d)
	}
	// the comparison can fail: the same change with the token goes through
	resp := p.do(br, "POST", host+"/api/config", "application/json", stateChangingBody["/api/config"], true)
	if resp.StatusCode != 200 {
		t.Fatalf("POST /api/config with the CSRF token = %d", resp.StatusCode)
	}
	if d := sameFiles(before, hashDir(t, dir)); !strings.Contains(d, "mailagent.toml") {
		t.Errorf("an accepted change left mailagent.toml as it was (changed: %q)", d)
	}
}

// authStart opens auth.htm without parameters in br and returns the state
// of the grant it started.
func (p *site) authStart(br *browser) string {
	p.t.Helper()
	resp := p.do(br, "GET", "https://box.example.test/auth.htm", "", "", false)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "https://login.provider.test/") {
		p.t.Fatalf("auth.htm start = %d %q; want 303 to the provider", resp.StatusCode, loc)
	}
	u, _ := url.Parse(loc)
	if br.cookies[GrantCookie] == nil {
		p.t.Fatalf("auth.htm start set no grant cookie")
	}
	return u.Query().Get("state")
}

func TestAuthPage(t *testing.T) {
	fb := newFakeBackend(testCheapHash(t))
	fb.cfg.OAuth2.Mode = "exchange"
	fb.cfg.OAuth2.RedirectURL = "https://box.example.test/auth.htm"
	p := newPage(t, fb, Options{})
	back := func(br *browser, query string) (int, string) {
		resp := p.do(br, "GET", "https://box.example.test/auth.htm?"+query, "", "", false)
		return resp.StatusCode, body(t, resp)
	}

	t.Run("grant cookie", func(t *testing.T) {
		br := p.loggedIn()
		resp := p.do(br, "GET", "https://box.example.test/auth.htm", "", "", false)
		var gc *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == GrantCookie {
				gc = c
			}
		}
		if gc == nil || !gc.HttpOnly || !gc.Secure || gc.SameSite != http.SameSiteLaxMode || gc.Path != "/auth.htm" {
			t.Errorf("grant cookie %+v; want HttpOnly, Secure, SameSite=Lax, Path=/auth.htm", gc)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("auth.htm Cache-Control %q; want no-store", cc)
		}
	})

	t.Run("wrong state", func(t *testing.T) {
		br := p.loggedIn()
		p.authStart(br)
		f0, s0 := fb.counts()
		code, b := back(br, "code=abc&state=not-the-state")
		if f1, s1 := fb.counts(); code != 400 || !strings.Contains(b, "state is unknown") || f1 != f0 || s1 != s0 {
			t.Errorf("wrong state: %d, finish called %d times, %d tokens stored; want 400, a clear message and no call:\n%s", code, f1-f0, s1-s0, b)
		}
	})

	t.Run("replayed state", func(t *testing.T) {
		br := p.loggedIn()
		state := p.authStart(br)
		q := "code=abc&state=" + url.QueryEscape(state)
		code, b := back(br, q)
		if code != 200 || !strings.Contains(b, "authorised to send mail as alarm@example.test") {
			t.Fatalf("first visit: %d\n%s", code, b)
		}
		_, s0 := fb.counts()
		code, b = back(br, q)
		if _, s1 := fb.counts(); code != 400 || !strings.Contains(b, "already used") || s1 != s0 {
			t.Errorf("replay: %d, %d more tokens; want 400 saying it was used and nothing stored:\n%s", code, s1-s0, b)
		}
	})

	t.Run("access denied", func(t *testing.T) {
		br := p.loggedIn()
		state := p.authStart(br)
		_, s0 := fb.counts()
		code, b := back(br, url.Values{"error": {"access_denied"}, "error_description": {`<script>alert("x")</script> the user declined`},
			"state": {state}}.Encode())
		if _, s1 := fb.counts(); code != 400 || s1 != s0 {
			t.Errorf("access_denied: %d, %d tokens stored; want 400 and none", code, s1-s0)
		}
		if strings.Contains(b, "<script>alert") || !strings.Contains(b, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; the user declined") {
			t.Errorf("the provider's description is not shown escaped:\n%s", b)
		}
		if !strings.Contains(b, "access_denied") || !strings.Contains(b, "authorise again") {
			t.Errorf("no error code or hint:\n%s", b)
		}
	})

	t.Run("code for another session", func(t *testing.T) {
		alice, bob := p.loggedIn(), p.loggedIn()
		aliceState := p.authStart(alice)
		p.authStart(bob)
		f0, s0 := fb.counts()
		code, b := back(bob, "code=abc&state="+url.QueryEscape(aliceState))
		if f1, s1 := fb.counts(); code != 400 || !strings.Contains(b, "another admin session") || f1 != f0 || s1 != s0 {
			t.Errorf("another session's state: %d; want 400 naming another session, nothing stored:\n%s", code, b)
		}
		// a browser with neither session nor grant cookie of the grant
		code, _ = back(&browser{cookies: map[string]*http.Cookie{GrantCookie: {Name: GrantCookie, Value: "guessed"}}}, "code=abc&state="+url.QueryEscape(aliceState))
		if _, s1 := fb.counts(); code != 400 || s1 != s0 {
			t.Errorf("a guessed grant cookie: %d; want 400 and nothing stored", code)
		}
		// the grant is still Alice's to finish, with her grant cookie alone
		// (the provider's redirect carries no SameSite=Strict cookie)
		onlyGrant := &browser{cookies: map[string]*http.Cookie{GrantCookie: alice.cookies[GrantCookie]}}
		if code, b := back(onlyGrant, "code=abc&state="+url.QueryEscape(aliceState)); code != 200 {
			t.Errorf("Alice's own redirect with her grant cookie: %d\n%s", code, b)
		}
	})

	t.Run("paste", func(t *testing.T) {
		br := p.loggedIn()
		state := p.authStart(br)
		paste := func(u string) *http.Response {
			b, _ := json.Marshal(map[string]string{"url": u})
			return p.do(br, "POST", "https://box.example.test/api/authorize/paste", "application/json", string(b), true)
		}
		if resp := paste("http://localhost/auth.htm?code=abc&state=other"); resp.StatusCode != 400 {
			t.Errorf("pasted address with a wrong state = %d; want 400", resp.StatusCode)
		}
		resp := paste("http://localhost/auth.htm?code=abc&state=" + url.QueryEscape(state))
		if a := decode[struct{ Account string }](t, resp); resp.StatusCode != 200 || a.Account != "alarm@example.test" {
			t.Errorf("pasted address = %d %+v", resp.StatusCode, a)
		}
		if resp := paste("http://localhost/auth.htm?code=abc&state=" + url.QueryEscape(state)); resp.StatusCode != 400 {
			t.Errorf("the same address pasted again = %d; want 400", resp.StatusCode)
		}
	})

	t.Run("logout ends the grant", func(t *testing.T) {
		br := p.loggedIn()
		state := p.authStart(br)
		p.do(br, "POST", "https://box.example.test/logout", "", "", true)
		if code, b := back(br, "code=abc&state="+url.QueryEscape(state)); code != 400 || !strings.Contains(b, "logged out") {
			t.Errorf("redirect after logout: %d\n%s", code, b)
		}
	})

	t.Run("sessions ended", func(t *testing.T) {
		br := p.loggedIn()
		state := p.authStart(br)
		p.s.sessions.Clear() // as a password change does
		onlyGrant := &browser{cookies: map[string]*http.Cookie{GrantCookie: br.cookies[GrantCookie]}}
		_, s0 := fb.counts()
		code, b := back(onlyGrant, "code=abc&state="+url.QueryEscape(state))
		if _, s1 := fb.counts(); code != 400 || !strings.Contains(b, "has ended") || s1 != s0 {
			t.Errorf("grant cookie of an ended session: %d, %d stored\n%s", code, s1-s0, b)
		}
	})

	t.Run("expired", func(t *testing.T) {
		clock := newClock()
		p := newPage(t, fb, Options{Now: clock.Now})
		br := p.loggedIn()
		state := p.authStart(br)
		clock.Advance(GrantTimeout + time.Minute)
		resp := p.do(br, "GET", "https://box.example.test/auth.htm?code=abc&state="+url.QueryEscape(state), "", "", false)
		if b := body(t, resp); resp.StatusCode != 400 || !strings.Contains(b, "30 minutes") {
			t.Errorf("expired grant: %d\n%s", resp.StatusCode, b)
		}
	})
}

// TestAuthPageWithProvider runs auth.htm through the real agent against the
// strict test authorization server: a grant finishes once, a replay and a
// refusal store nothing.
func TestAuthPageWithProvider(t *testing.T) {
	const redirect = "https://box.example.test/auth.htm"
	srv := oauthtest.NewServer(t, oauthtest.Options{Flavour: oauthtest.Microsoft, Account: "alarm@example.test",
		Clients: []oauthtest.Client{{ID: "app-exchange", Secret: "exchange-secret", Auth: oauthtest.AuthPost, RedirectURIs: []string{redirect}}}})
	log := &syncBuffer{}
	dir, a := realAgent(t, boxDoc(t, fmt.Sprintf(`auth = "oauth2"
[oauth2]
mode = "exchange"
client_id = "app-exchange"
client_secret = "exchange-secret"
tenant = %q
authority = %q
redirect_url = %q`, srv.Tenant(), srv.URL()+"/", redirect)), log, srv.HTTPClient())
	p := newPage(t, agent.NewAdmin(a), Options{})
	br := p.loggedIn()
	tokens := filepath.Join(dir, "tokens.toml")

	start := func() string {
		resp := p.do(br, "GET", redirect, "", "", false)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, srv.URL()) {
			t.Fatalf("auth.htm start = %d %q\n%s", resp.StatusCode, loc, body(t, resp))
		}
		back := srv.Authorize(t, loc)
		u, err := url.Parse(back)
		if err != nil || back == "" {
			t.Fatalf("provider redirect %q", back)
		}
		return u.RawQuery
	}
	visit := func(query string) (int, string) {
		resp := p.do(br, "GET", redirect+"?"+query, "", "", false)
		return resp.StatusCode, body(t, resp)
	}

	srv.DenyNext()
	code, b := visit(start())
	if _, err := os.Stat(tokens); code != 400 || !strings.Contains(b, "access_denied") || err == nil {
		t.Fatalf("refused sign-in: %d, tokens.toml stat %v; want 400 naming access_denied and no tokens.toml\n%s", code, err, b)
	}

	q := start()
	code, b = visit(q)
	if code != 200 || !strings.Contains(b, "alarm@example.test") {
		t.Fatalf("sign-in: %d\n%s", code, b)
	}
	before := hashDir(t, dir)
	if before["tokens.toml"] == "" {
		t.Fatal("no tokens.toml after the sign-in")
	}
	code, b = visit(q)
	if d := sameFiles(before, hashDir(t, dir)); code != 400 || !strings.Contains(b, "already used") || d != "" {
		t.Errorf("replay: %d, changed %q; want 400 and nothing written\n%s", code, d, b)
	}
	resp := p.do(br, "GET", "https://box.example.test/api/status", "", "", false)
	st := decode[agent.Status](t, resp)
	if st.OAuth2 == nil || st.OAuth2.Account != "alarm@example.test" || st.OAuth2.Summary != "authorised as alarm@example.test" {
		t.Errorf("status after the sign-in: %+v", st.OAuth2)
	}
}

// TestCanary sets every secret to a distinctive value and looks for them
// in every page, API answer, header and log line.
func TestCanary(t *testing.T) {
	canaries := map[string]string{
		"smtp.password":        "canary-SmtpPw-0a1b",
		"oauth2.client_secret": "canary-ClientSecret-2c3d",
		"oauth2.password":      "canary-RopcPw-4e5f",
		"oauth2.private_key":   "canary-PrivateKey-6a7b",
		"http.alarm_password":  "canary-AlarmPw-8c9d",
	}
	log := &syncBuffer{}
	dir, a := realAgent(t, boxDoc(t, fmt.Sprintf(`auth = "oauth2"
user = "box"
password = %q
[oauth2]
mode = "exchange"
client_id = "app"
client_secret = %q
tenant = "contoso.example"
authority = "http://127.0.0.1:1/"
redirect_url = "https://box.example.test/auth.htm"
password = %q
private_key = %q
[http]
alarm_user = "poster"
alarm_password = %q`, canaries["smtp.password"], canaries["oauth2.client_secret"], canaries["oauth2.password"],
		canaries["oauth2.private_key"], canaries["http.alarm_password"])), log, nil)
	hash := testCheapHash(t)
	toml, _ := os.ReadFile(filepath.Join(dir, "mailagent.toml"))
	for key, c := range canaries {
		if !strings.Contains(string(toml), c) {
			t.Fatalf("%s canary not in mailagent.toml: the test did not set it", key)
		}
	}
	p := newPage(t, agent.NewAdmin(a), Options{Alarm: ingest.HTTP(ingest.HTTPOptions{Sink: a.Accept, User: "poster",
		Password: canaries["http.alarm_password"], Log: slog.New(slog.NewTextHandler(log, nil))})})
	br := p.loggedIn()
	var seen strings.Builder
	keep := func(resp *http.Response) {
		fmt.Fprintf(&seen, "%d %v\n%s\n", resp.StatusCode, resp.Header, body(t, resp))
	}
	const host = "https://box.example.test"
	for _, rt := range routeTable {
		path := strings.TrimSuffix(rt.path, "{$}")
		if rt.method == "GET" {
			keep(p.do(br, "GET", host+path, "", "", false))
			continue
		}
		ct := "application/json"
		if path == "/login" || path == "/setup" {
			ct = "application/x-www-form-urlencoded"
		}
		if path == "/logout" {
			continue // keeps the session for the rest
		}
		payload := stateChangingBody[path]
		switch path { // keep the canaries and the session in place
		case "/api/config":
			payload = `{"set":{"mail.from_name":"Box"}}`
		case "/api/import":
			payload = `{"kind":"google-client","data":"not json"}`
		case "/api/passwd":
			payload = `{"old":"wrong","new":"changed password","new2":"changed password"}`
		}
		keep(p.do(br, "POST", host+path, ct, payload, true))
	}
	keep(p.do(br, "GET", host+"/auth.htm?code=c&state=s", "", "", false))
	keep(p.do(br, "POST", host+"/api/config", "application/json", `{"set":{"mail.from":"bad address","oauth2.private_key":"not a key"}}`, true))
	keep(p.do(br, "POST", host+"/login", "application/x-www-form-urlencoded", "password="+url.QueryEscape(adminPassword), false))
	keep(p.do(br, "GET", host+"/api/config", "", "", false))
	keep(p.do(br, "GET", host+"/api/status", "", "", false))
	for _, want := range []string{`"key":"oauth2.client_secret"`, `"step":"connect"`, "client_id=app", `"oauth2":{"mode"`} {
		if !strings.Contains(seen.String(), want) {
			t.Fatalf("the canary did not see %s: the requests did not do what they should\n%s", want, seen.String())
		}
	}
	all := seen.String() + "\n" + log.String() + "\n" + p.log.String()
	for key, c := range canaries {
		if strings.Contains(all, c) {
			t.Errorf("the secret of %s shows up:\n%s", key, around(all, c))
		}
	}
	for _, s := range []string{adminPassword, hash, "$2a$"} {
		if strings.Contains(all, s) {
			t.Errorf("the admin password or its hash shows up:\n%s", around(all, s))
		}
	}
}

func around(all, s string) string {
	i := strings.Index(all, s)
	return all[max(0, i-300):min(len(all), i+len(s)+100)]
}

// TestStaticFiles checks the embedded files: no inline script or style,
// no event-handler attributes, nothing loaded from another host, and the
// page's weight.
func TestStaticFiles(t *testing.T) {
	scriptTag := regexp.MustCompile(`(?i)<script\b[^>]*>`)
	forbidden := []*regexp.Regexp{
		regexp.MustCompile(`(?i)<style\b`),
		regexp.MustCompile(`(?i)\sstyle\s*=`),
		regexp.MustCompile(`(?i)\son[a-z]+\s*=\s*["']`),
		regexp.MustCompile(`(?i)javascript:`),
		regexp.MustCompile(`(?i)https?://`),
		regexp.MustCompile(`(?i)\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval)\b`),
	}
	total := 0
	err := fs.WalkDir(staticFS, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(staticFS, path)
		if err != nil {
			return err
		}
		s := string(b)
		for _, tag := range scriptTag.FindAllString(s, -1) {
			if !strings.Contains(tag, `src="/static/app.js"`) {
				t.Errorf("%s: inline or foreign script %s", path, tag)
			}
		}
		for _, re := range forbidden {
			if m := re.FindString(s); m != "" {
				t.Errorf("%s contains %q", path, m)
			}
		}
		switch filepath.Base(path) {
		case "index.html", "app.js", "style.css":
			total += len(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total > 30<<10 {
		t.Errorf("the admin page (HTML, CSS, JS) is %d bytes; the budget is 30 KiB", total)
	}
	// the guard sees what it guards against
	if m := forbidden[4].FindString(`<img src="https://cdn.example.com/x.png">`); m == "" {
		t.Error("the URL check misses an external URL")
	}
}

// TestCSPOnEveryAnswer checks the CSP header of every route's answer.
func TestCSPOnEveryAnswer(t *testing.T) {
	p := newPage(t, newFakeBackend(testCheapHash(t)), Options{})
	br := p.loggedIn()
	for _, rt := range routeTable {
		path := strings.TrimSuffix(rt.path, "{$}")
		for _, who := range []*browser{nil, br} {
			resp := p.do(who, rt.method, "https://box.example.test"+path, "application/json", "{}", true)
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") ||
				strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("%s %s: CSP %q", rt.method, path, csp)
			}
			if rp := resp.Header.Get("Referrer-Policy"); rp != "no-referrer" {
				t.Errorf("%s %s: Referrer-Policy %q", rt.method, path, rp)
			}
			if (strings.HasPrefix(path, "/api/") || path == "/auth.htm") && resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s %s: Cache-Control %q; want no-store", rt.method, path, resp.Header.Get("Cache-Control"))
			}
		}
	}
}

// TestAuthPageLogBounded: anyone can make auth.htm refuse a redirect; the
// log gets a line a minute, then says how many it held back.
func TestAuthPageLogBounded(t *testing.T) {
	clock := newClock()
	p := newPage(t, newFakeBackend(testCheapHash(t)), Options{Now: clock.Now})
	stranger := &browser{cookies: map[string]*http.Cookie{GrantCookie: {Name: GrantCookie, Value: "guessed"}}}
	for i := range 50 {
		if resp := p.do(stranger, "GET", fmt.Sprintf("https://box.example.test/auth.htm?code=c&state=s%d", i), "", "", false); resp.StatusCode != 400 {
			t.Fatalf("bad redirect %d = %d; want 400", i, resp.StatusCode)
		}
	}
	if n := strings.Count(p.log.String(), "auth.htm refused"); n != 1 {
		t.Errorf("50 refusals wrote %d log lines; want 1", n)
	}
	clock.Advance(2 * time.Minute)
	p.do(stranger, "GET", "https://box.example.test/auth.htm?code=c&state=late", "", "", false)
	if n := strings.Count(p.log.String(), "auth.htm refused"); n != 2 || !strings.Contains(p.log.String(), "held_back=49") {
		t.Errorf("after a minute: %d lines, log:\n%s", n, p.log.String())
	}
}
