package webui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"mailagent/appliance/agent"
	"mailagent/appliance/oauthtest"
	"mailagent/appliance/smtptest"
)

// TestWebFlow goes the admin's way through the page against the real
// agent, the strict test authorization server and a test SMTP server: set
// the first password with the setup code, authorise through auth.htm, point
// the form at the mail server, and send the test mail.
func TestWebFlow(t *testing.T) {
	const (
		redirect = "https://box.example.test/auth.htm"
		mailbox  = "alarm@example.test"
		host     = "https://box.example.test"
	)
	idp := oauthtest.NewServer(t, oauthtest.Options{Flavour: oauthtest.Microsoft, Account: mailbox,
		Clients: []oauthtest.Client{{ID: "app-exchange", Secret: "exchange-secret", Auth: oauthtest.AuthPost, RedirectURIs: []string{redirect}}}})
	log := &syncBuffer{}
	dir, a := realAgent(t, fmt.Sprintf(`[mail]
from = %q
to = ["ops@example.test"]
[smtp]
host = "127.0.0.1"
port = 1
[oauth2]
mode = "exchange"
client_id = "app-exchange"
client_secret = "exchange-secret"
tenant = %q
authority = %q
redirect_url = %q
keep_access_token = true
`, mailbox, idp.Tenant(), idp.URL()+"/", redirect), log, idp.HTTPClient())
	p := newPage(t, agent.NewAdmin(a), Options{SetupCode: "K7QX-M2PD-9TRF"})
	br := &browser{cookies: map[string]*http.Cookie{}}

	resp := p.do(br, "POST", host+"/setup", "application/x-www-form-urlencoded",
		url.Values{"code": {"K7QX-M2PD-9TRF"}, "password": {"first password"}, "password2": {"first password"}}.Encode(), false)
	br.csrf = decode[struct{ CSRF string }](t, resp).CSRF
	if resp.StatusCode != 200 || br.csrf == "" {
		t.Fatalf("setup = %d", resp.StatusCode)
	}

	resp = p.do(br, "POST", host+"/api/authorize", "application/json", "{}", true)
	if ar := decode[struct{ URL string }](t, resp); ar.URL != "/auth.htm" {
		t.Fatalf("POST /api/authorize = %d %+v", resp.StatusCode, ar)
	}
	resp = p.do(br, "GET", host+"/auth.htm", "", "", false)
	back := idp.Authorize(t, resp.Header.Get("Location"))
	u, err := url.Parse(back)
	if err != nil || back == "" {
		t.Fatalf("provider sent the browser to %q", back)
	}
	resp = p.do(br, "GET", host+"/auth.htm?"+u.RawQuery, "", "", false)
	if b := body(t, resp); resp.StatusCode != 200 || !strings.Contains(b, "authorised to send mail as "+mailbox) {
		t.Fatalf("auth.htm back = %d\n%s", resp.StatusCode, b)
	}

	tokens, _ := os.ReadFile(filepath.Join(dir, "tokens.toml"))
	m := regexp.MustCompile(`(?m)^access_token = "([^"]+)"`).FindSubmatch(tokens)
	if m == nil {
		t.Fatalf("no access token kept in tokens.toml")
	}
	smtp := smtptest.New(t, smtptest.Options{Tokens: map[string]string{string(m[1]): mailbox}})
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, smtp.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	change, _ := json.Marshal(map[string]any{"set": map[string]string{"smtp.host": smtp.Host(), "smtp.port": fmt.Sprint(smtp.Port()), "smtp.ca_file": ca}})
	if resp := p.do(br, "POST", host+"/api/config", "application/json", string(change), true); resp.StatusCode != 200 {
		t.Fatalf("POST /api/config = %d %s", resp.StatusCode, body(t, resp))
	}

	resp = p.do(br, "POST", host+"/api/test", "application/json", "{}", true)
	tr := decode[struct {
		OK           bool
		Reply, Error string
		Steps        []step
	}](t, resp)
	if !tr.OK || !strings.Contains(tr.Reply, "queued") {
		t.Fatalf("POST /api/test = %d %+v", resp.StatusCode, tr)
	}
	msgs := smtp.Messages()
	if len(msgs) != 1 || msgs[0].AuthUser != mailbox || msgs[0].Mechanism == "" {
		t.Fatalf("the SMTP server got %+v; want one mail from %s with a token", msgs, mailbox)
	}
	resp = p.do(br, "GET", host+"/api/status", "", "", false)
	if st := decode[agent.Status](t, resp); st.OAuth2 == nil || st.OAuth2.Account != mailbox || len(st.Problems) != 0 {
		t.Errorf("status after the test mail: %+v", st)
	}
}
