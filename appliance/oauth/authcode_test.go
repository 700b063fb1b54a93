package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"mailagent/appliance/config"
)

func TestStartProviderURLs(t *testing.T) {
	tests := []struct {
		mode string
		path string
		want url.Values // besides state and code_challenge
	}{
		{"exchange", "/contoso.example/oauth2/v2.0/authorize", url.Values{
			"client_id": {"client-1"}, "response_type": {"code"}, "redirect_uri": {"https://box.example.test/auth.htm"},
			"scope": {"https://outlook.office.com/SMTP.Send offline_access"}, "code_challenge_method": {"S256"},
			"login_hint": {"alarm@example.test"},
		}},
		{"gmail", "/o/oauth2/auth", url.Values{
			"client_id": {"client-1"}, "response_type": {"code"}, "redirect_uri": {"https://box.example.test/auth.htm"},
			"scope": {"https://mail.google.com/"}, "code_challenge_method": {"S256"},
			"login_hint": {"alarm@example.test"}, "access_type": {"offline"}, "prompt": {"consent"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			c := newTestClient(t, testConfig(t, tt.mode, "https://as.example.test", nil))
			got, p, err := c.Start()
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if q.Get("state") != p.State || len(p.State) < 20 {
				t.Errorf("state %q, pending state %q", q.Get("state"), p.State)
			}
			if q.Get("code_challenge") != oauth2.S256ChallengeFromVerifier(p.Verifier) || len(p.Verifier) < 43 {
				t.Errorf("code_challenge %q does not match the verifier", q.Get("code_challenge"))
			}
			q.Del("state")
			q.Del("code_challenge")
			if u.Host != "as.example.test" || u.Path != tt.path || !reflect.DeepEqual(q, tt.want) {
				t.Errorf("Start() = %s\nwant path %s and query %v", got, tt.path, tt.want)
			}
			if p.RedirectURL != "https://box.example.test/auth.htm" || !p.Created.Equal(testTime) {
				t.Errorf("pending = %+v", p)
			}
		})
	}
}

func TestStartGenericURL(t *testing.T) {
	const base = "https://idp.example.test"
	tests := []struct {
		name string
		mode string
		edit func(o *config.OAuth2)
		want string // with STATE and CHALLENGE for the random parts
	}{
		{"own query kept", "client-secret-post", nil,
			base + "/authorize?scope=mail.send+offline_access&audience=smtp&response_type=code&prompt=consent&login_hint=alarm%40example.test" +
				"&redirect_uri=https%3A%2F%2Fbox.example.test%2Fauth.htm&client_id=client-1&state=STATE&code_challenge=CHALLENGE&code_challenge_method=S256"},
		{"no query, scopes set", "private-key-jwt", func(o *config.OAuth2) { o.Scopes = []string{"openid", "mail"}; o.LoginHint = "ops@example.test" },
			base + "/authorize?response_type=code&prompt=consent&login_hint=ops%40example.test&redirect_uri=https%3A%2F%2Fbox.example.test%2Fauth.htm" +
				"&client_id=client-1&scope=openid+mail&state=STATE&code_challenge=CHALLENGE&code_challenge_method=S256"},
		{"its own prompt kept, its state dropped", "client-secret-post", func(o *config.OAuth2) {
			o.AuthURL = base + "/authorize?prompt=login&state=fixed&code_challenge=old&client_id=client-1"
		}, base + "/authorize?prompt=login&client_id=client-1&response_type=code&login_hint=alarm%40example.test" +
			"&redirect_uri=https%3A%2F%2Fbox.example.test%2Fauth.htm&state=STATE&code_challenge=CHALLENGE&code_challenge_method=S256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, testConfig(t, tt.mode, base, tt.edit))
			got, p, err := c.Start()
			if err != nil {
				t.Fatal(err)
			}
			want := strings.NewReplacer("STATE", p.State, "CHALLENGE", oauth2.S256ChallengeFromVerifier(p.Verifier)).Replace(tt.want)
			if got != want {
				t.Errorf("Start() =\n %s\nwant\n %s", got, want)
			}
		})
	}
}

func TestStartRefusals(t *testing.T) {
	c := newTestClient(t, testConfig(t, "microsoft-app", "https://as.example.test", nil))
	if _, _, err := c.Start(); err == nil {
		t.Error("Start in microsoft-app succeeded")
	}
	c = newTestClient(t, testConfig(t, "gmail", "https://as.example.test", func(o *config.OAuth2) { o.RedirectURL = "" }))
	if _, _, err := c.Start(); err == nil || !strings.Contains(err.Error(), "oauth2.redirect_url") {
		t.Errorf("Start without a redirect URL = %v, want an error naming oauth2.redirect_url", err)
	}
	cfg := testConfig(t, "gmail", "https://as.example.test", func(o *config.OAuth2) { o.RedirectURL = "" })
	cfg.HTTP.BaseURL = "https://gw7.example.test/"
	_, p, err := newTestClient(t, cfg).Start()
	if err != nil || p.RedirectURL != "https://gw7.example.test/auth.htm" {
		t.Errorf("Start with base_url: redirect %q, %v", p.RedirectURL, err)
	}
	_, p1, _ := newTestClient(t, cfg).Start()
	if p1.State == p.State || p1.Verifier == p.Verifier {
		t.Error("two Starts share state or verifier")
	}
}

func TestFinishExchange(t *testing.T) {
	forms := []struct {
		name     string
		redirect func(state string) string
	}{
		{"whole address", func(s string) string {
			return "https://box.example.test/auth.htm?code=" + canaryCode + "&state=" + s + "&session_state=x"
		}},
		{"query with ?", func(s string) string { return "?state=" + s + "&code=" + canaryCode }},
		{"bare query", func(s string) string { return " code=" + canaryCode + "&state=" + s + "\n" }},
		{"fragment", func(s string) string { return "http://localhost/#code=" + canaryCode + "&state=" + s }},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			as := newFakeAS(t, okToken(canaryRefresh))
			c := newTestClient(t, testConfig(t, "exchange", as.URL, nil))
			_, p, err := c.Start()
			if err != nil {
				t.Fatal(err)
			}
			tok, err := c.Finish(context.Background(), p, f.redirect(p.State))
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != canaryAccess || tok.RefreshToken != canaryRefresh {
				t.Errorf("token %q/%q", tok.AccessToken, tok.RefreshToken)
			}
			reqs := as.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			want := url.Values{
				"grant_type": {"authorization_code"}, "code": {canaryCode}, "redirect_uri": {"https://box.example.test/auth.htm"},
				"code_verifier": {p.Verifier}, "client_id": {"client-1"}, "client_secret": {canarySecret},
			}
			if r := reqs[0]; r.Path != "/contoso.example/oauth2/v2.0/token" || !reflect.DeepEqual(r.Form, want) {
				t.Errorf("exchange sent %s %v\nwant %v", r.Path, r.Form, want)
			}
		})
	}
}

func TestFinishRefusesBeforeAnyRequest(t *testing.T) {
	tests := []struct {
		name     string
		redirect string // STATE is replaced by the pending state
		pending  func(p *Pending)
		code     string
		reauth   bool
		hint     string
	}{
		{"state mismatch", "https://box.example.test/auth.htm?code=abc&state=forged", nil, "", false, "start the authorization again"},
		{"no state", "https://box.example.test/auth.htm?code=abc", nil, "", false, "whole address"},
		{"no code", "https://box.example.test/auth.htm?state=STATE", nil, "", false, "whole address"},
		{"empty", "  ", nil, "", false, "whole address"},
		{"too old", "https://box.example.test/auth.htm?code=abc&state=STATE", func(p *Pending) { p.Created = testTime.Add(-31 * time.Minute) }, "", false, "30 minutes"},
		{"nothing started", "https://box.example.test/auth.htm?code=abc&state=STATE", func(p *Pending) { *p = Pending{} }, "", false, "start the authorization"},
		{"access denied", "https://box.example.test/auth.htm?error=access_denied&error_description=AADSTS65004%3A+User+declined+to+consent.&state=STATE",
			nil, "access_denied", true, "accept the permissions"},
		{"error without state", "https://box.example.test/auth.htm?error=consent_required", nil, "consent_required", true, "consent"},
		{"error with a forged state", "https://box.example.test/auth.htm?error=access_denied&state=forged", nil, "", false, "start the authorization again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, func(int, seen) reply { t.Error("request sent"); return reply{} })
			c := newTestClient(t, testConfig(t, "exchange", as.URL, nil))
			_, p, err := c.Start()
			if err != nil {
				t.Fatal(err)
			}
			redirect := strings.ReplaceAll(tt.redirect, "STATE", p.State)
			if tt.pending != nil {
				tt.pending(&p)
			}
			_, err = c.Finish(context.Background(), p, redirect)
			pe := asProviderError(t, err)
			if pe.Code != tt.code || pe.Reauth != tt.reauth || !strings.Contains(pe.Hint(), tt.hint) {
				t.Errorf("Finish = %v (code %q, reauth %v, hint %q), want code %q, reauth %v, hint with %q",
					pe, pe.Code, pe.Reauth, pe.Hint(), tt.code, tt.reauth, tt.hint)
			}
			if tt.code == "access_denied" && !strings.Contains(pe.Error(), "AADSTS65004: User declined to consent.") {
				t.Errorf("Finish = %v, want the provider's description", pe)
			}
		})
	}
}

func TestFinishWithoutRefreshToken(t *testing.T) {
	tests := []struct{ mode, hint string }{
		{"exchange", "offline_access"},
		{"gmail", "prompt=consent"},
		{"client-secret-post", "offline"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			as := newFakeAS(t, okToken(""))
			c := newTestClient(t, testConfig(t, tt.mode, as.URL, nil))
			_, p, _ := c.Start()
			tok, err := c.Finish(context.Background(), p, "?code=abc&state="+p.State)
			if tok != nil || !errors.Is(err, ErrNoRefreshToken) {
				t.Fatalf("Finish = %v, %v; want no token and ErrNoRefreshToken", tok, err)
			}
			if pe := asProviderError(t, err); !strings.Contains(pe.Hint(), tt.hint) || pe.Reauth || pe.Transient {
				t.Errorf("hint %q, want one naming %q, neither reauth nor transient", pe.Hint(), tt.hint)
			}
		})
	}
}

func TestFinishRefusedCode(t *testing.T) {
	as := newFakeAS(t, func(int, seen) reply {
		return reply{Status: http.StatusBadRequest, Body: `{"error":"invalid_grant","error_description":"AADSTS54005: OAuth2 Authorization code was already redeemed.","error_codes":[54005]}`}
	})
	c := newTestClient(t, testConfig(t, "exchange", as.URL, nil))
	_, p, _ := c.Start()
	_, err := c.Finish(context.Background(), p, "?code="+canaryCode+"&state="+p.State)
	pe := asProviderError(t, err)
	if pe.Op != "exchange" || pe.Code != "invalid_grant" || !reflect.DeepEqual(pe.Codes, []int{54005}) || !pe.Reauth || !strings.Contains(pe.Hint(), "authorise again") {
		t.Errorf("Finish = %+v", pe)
	}
}

func FuzzRedirectParams(f *testing.F) {
	for _, s := range []string{
		"https://box.example.test/auth.htm?code=abc&state=xyz", "?state=x&code=y", "code=y&state=x",
		"http://localhost/#code=a&state=b", "https://x/?error=access_denied&error_description=AADSTS65004%3A+no", "%zz", "://", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := RedirectParams(s)
		if err == nil && q == nil {
			t.Errorf("RedirectParams(%q) = nil, nil", s)
		}
		if err != nil && len(strings.TrimSpace(s)) > 3 && strings.Contains(err.Error(), s) {
			t.Errorf("RedirectParams(%q) error quotes the input: %v", s, err)
		}
	})
}
