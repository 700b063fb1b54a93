package oauth

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mailagent/appliance/config"
	"mailagent/board"
)

// Canary values: none of them may appear in any error string.
const (
	canarySecret   = "CANARY-client-secret-7f3a"
	canaryPassword = "CANARY-password-91bd"
	canaryRefresh  = "CANARY-refresh-token-55e1"
	canaryCode     = "CANARY-auth-code-0c2d"
	canaryAccess   = "CANARY-access-token-a4b8"
	canaryDevice   = "CANARY-device-code-6e90"
)

// seen is one request the fake authorization server received.
type seen struct {
	Method, Path string
	Form         url.Values
	Header       http.Header
	At           time.Time
}

// reply is what the fake server answers.
type reply struct {
	Status int
	Body   string
	Header map[string]string
}

// fakeAS is a strict token endpoint for one test: it records every request
// and answers with the test's function. Requests it does not expect fail
// the test in the function.
type fakeAS struct {
	t      *testing.T
	URL    string
	mu     sync.Mutex
	reqs   []seen
	answer func(n int, r seen) reply
}

// newFakeAS starts a fake server on 127.0.0.1.
func newFakeAS(t *testing.T, answer func(n int, r seen) reply) *fakeAS {
	t.Helper()
	f := &fakeAS{t: t, answer: answer}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *fakeAS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(body))
	if err != nil {
		f.t.Errorf("request body %q is not a form: %v", body, err)
	}
	if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		f.t.Errorf("Content-Type = %q, want application/x-www-form-urlencoded", r.Header.Get("Content-Type"))
	}
	s := seen{Method: r.Method, Path: r.URL.Path, Form: form, Header: r.Header.Clone(), At: time.Now()}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, s)
	f.mu.Unlock()
	rep := f.answer(n, s)
	if rep.Status == 0 {
		rep.Status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.Status)
	io.WriteString(w, rep.Body)
}

// requests returns what the server has seen so far.
func (f *fakeAS) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// tokenJSON is a token answer.
func tokenJSON(refresh string) string {
	s := `{"access_token":"` + canaryAccess + `","token_type":"Bearer","expires_in":3600`
	if refresh != "" {
		s += `,"refresh_token":"` + refresh + `"`
	}
	return s + "}"
}

func okToken(refresh string) func(int, seen) reply {
	return func(int, seen) reply { return reply{Body: tokenJSON(refresh)} }
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	return readTestdataF(t, name)
}

func readTestdataF(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// testConfig returns a complete configuration for mode whose endpoints
// point at base (Microsoft modes through authority + tenant), with
// defaults filled in. edit, if not nil, changes [oauth2] before the
// defaults are filled.
func testConfig(t *testing.T, mode, base string, edit func(o *config.OAuth2)) *config.Config {
	t.Helper()
	c := config.Config{Mail: config.Mail{From: "alarm@example.test", To: []string{"ops@example.test"}}}
	o := &c.OAuth2
	o.Mode = mode
	o.ClientID = "client-1"
	o.RedirectURL = "https://box.example.test/auth.htm"
	switch mode {
	case "exchange", "microsoft365", "microsoft-app":
		o.Tenant = "contoso.example"
		o.Authority = base + "/"
		switch mode {
		case "exchange":
			o.ClientSecret = config.NewSecret(canarySecret)
		case "microsoft365":
			o.Username = "alarm@contoso.example"
			o.Password = config.NewSecret(canaryPassword)
		case "microsoft-app":
			o.ClientSecret = config.NewSecret(canarySecret)
		}
	case "gmail":
		o.ClientSecret = config.NewSecret(canarySecret)
		o.AuthURL = base + "/o/oauth2/auth"
		o.TokenURL = base + "/token"
	case "google-service-account":
		o.ClientID = "104242424242424242424"
		o.ClientEmail = "alarms@mailagent-test.iam.gserviceaccount.com"
		o.PrivateKeyID = "kid-sa-1"
		o.PrivateKey = config.NewSecret(readTestdata(t, "test-key.pem"))
		o.Subject = "alarm@example.test"
		o.TokenURL = base + "/token"
	case "client-secret-post":
		o.ClientSecret = config.NewSecret(canarySecret)
		o.AuthURL = base + "/authorize?scope=mail.send+offline_access&audience=smtp"
		o.TokenURL = base + "/token"
	case "private-key-jwt":
		o.PrivateKey = config.NewSecret(readTestdata(t, "test-key.pem"))
		o.KeyID = "kid-1"
		o.AuthURL = base + "/authorize"
		o.TokenURL = base + "/token"
	}
	if edit != nil {
		edit(o)
	}
	d := c.WithDefaults(board.Profile{})
	return &d
}

// newTestClient makes a client for cfg with a fixed clock, whose test
// servers' answers carry that clock's time in their Date header.
func newTestClient(t *testing.T, cfg *config.Config) *Client {
	t.Helper()
	c, err := NewClient(ClientOptions{Config: cfg, HTTP: &http.Client{Transport: testDate{}}, Now: testNow})
	if err != nil {
		t.Fatalf("NewClient(%s) = %v", cfg.OAuth2.Mode, err)
	}
	return c
}

var testTime = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func testNow() time.Time { return testTime }

// testDate is the default transport with the Date header of every answer
// set to testTime, as a server whose clock agrees with testNow sends.
type testDate struct{}

func (testDate) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		resp.Header.Set("Date", testTime.Format(http.TimeFormat))
	}
	return resp, err
}

// asProviderError fails the test unless err is a *ProviderError.
func asProviderError(t *testing.T, err error) *ProviderError {
	t.Helper()
	pe, ok := errors.AsType[*ProviderError](err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *ProviderError", err, err)
	}
	return pe
}

func TestNewClientNeeds(t *testing.T) {
	key := readTestdata(t, "test-key.pem")
	cert := readTestdata(t, "test-cert.pem")
	tests := []struct {
		name string
		mode string
		edit func(o *config.OAuth2)
		keys []string // keys named in the problems, in order
	}{
		{"exchange complete", "exchange", nil, nil},
		{"exchange without tenant and secret", "exchange", func(o *config.OAuth2) { o.Tenant = ""; o.ClientSecret = config.Secret{} },
			[]string{"oauth2.tenant", "oauth2.client_secret"}},
		{"no mode", "", nil, []string{"oauth2.mode"}},
		{"unknown mode", "outlook", nil, []string{"oauth2.mode"}},
		{"ropc tenant common", "microsoft365", func(o *config.OAuth2) { o.Tenant = "common" }, []string{"oauth2.tenant"}},
		{"ropc tenant consumers", "microsoft365", func(o *config.OAuth2) { o.Tenant = "Consumers" }, []string{"oauth2.tenant"}},
		{"ropc tenant Common", "microsoft365", func(o *config.OAuth2) { o.Tenant = "Common" }, []string{"oauth2.tenant"}},
		{"ropc tenant COMMON", "microsoft365", func(o *config.OAuth2) { o.Tenant = "COMMON" }, []string{"oauth2.tenant"}},
		{"ropc tenant organizations", "microsoft365", func(o *config.OAuth2) { o.Tenant = "organizations" }, nil},
		{"app tenant organizations", "microsoft-app", func(o *config.OAuth2) { o.Tenant = "organizations" }, []string{"oauth2.tenant"}},
		{"exchange redirect over http to an address", "exchange", func(o *config.OAuth2) { o.RedirectURL = "http://192.168.1.20/auth.htm" },
			[]string{"oauth2.redirect_url"}},
		{"ropc without password", "microsoft365", func(o *config.OAuth2) { o.Password = config.Secret{} }, []string{"oauth2.password"}},
		{"app without secret or key", "microsoft-app", func(o *config.OAuth2) { o.ClientSecret = config.Secret{} }, []string{"oauth2.client_secret"}},
		{"app with key but no certificate", "microsoft-app", func(o *config.OAuth2) {
			o.ClientSecret = config.Secret{}
			o.PrivateKey = config.NewSecret(key)
		}, []string{"oauth2.certificate"}},
		{"app with key and certificate", "microsoft-app", func(o *config.OAuth2) {
			o.ClientSecret = config.Secret{}
			o.PrivateKey = config.NewSecret(key)
			o.Certificate = cert
		}, nil},
		{"gmail without secret", "gmail", func(o *config.OAuth2) { o.ClientSecret = config.Secret{} }, []string{"oauth2.client_secret"}},
		{"service account without subject", "google-service-account", func(o *config.OAuth2) { o.Subject = "" }, []string{"oauth2.subject"}},
		{"service account with a broken key", "google-service-account", func(o *config.OAuth2) {
			o.PrivateKey = config.NewSecret("-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n")
		}, []string{"oauth2.private_key"}},
		{"generic without urls", "client-secret-post", func(o *config.OAuth2) { o.AuthURL, o.TokenURL = "", "" },
			[]string{"oauth2.auth_url", "oauth2.token_url"}},
		{"generic with a bad token url", "client-secret-post", func(o *config.OAuth2) { o.TokenURL = "ftp://x" }, []string{"oauth2.token_url"}},
		{"pkjwt without key id or certificate", "private-key-jwt", func(o *config.OAuth2) { o.KeyID = "" }, []string{"oauth2.key_id"}},
		{"pkjwt with a certificate of another key", "private-key-jwt", func(o *config.OAuth2) { o.Certificate = otherCertPEM(t) }, []string{"oauth2.certificate"}},
		{"pkjwt with an encrypted key", "private-key-jwt", func(o *config.OAuth2) {
			o.PrivateKey = config.NewSecret("-----BEGIN ENCRYPTED PRIVATE KEY-----\nQUJD\n-----END ENCRYPTED PRIVATE KEY-----\n")
		}, []string{"oauth2.private_key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, tt.mode, "https://as.example.test", tt.edit)
			_, err := NewClient(ClientOptions{Config: cfg})
			var keys []string
			if err != nil {
				probs, ok := config.AsProblems(err)
				if !ok {
					t.Fatalf("NewClient = %v (%T), want config.Problems", err, err)
				}
				for _, p := range probs {
					keys = append(keys, p.Key)
				}
			}
			if !slices.Equal(keys, tt.keys) {
				t.Errorf("NewClient problems name %q, want %q (err: %v)", keys, tt.keys, err)
			}
			if err != nil && strings.Contains(err.Error(), "QUJD") {
				t.Errorf("NewClient error quotes the key: %v", err)
			}
		})
	}
}

// TestNewClientSharesTheValidator checks that NewClient judges the
// configuration with config.ValidateOAuth2: the same problems, in the same
// words, then only what failed to parse.
func TestNewClientSharesTheValidator(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(o *config.OAuth2)
		parse []string // keys that failed to parse, after the validator's problems
	}{
		{"tenant Common", func(o *config.OAuth2) { o.Tenant = "Common" }, nil},
		{"tenant Consumers, no client", func(o *config.OAuth2) { o.Tenant = "Consumers"; o.ClientID = "" }, nil},
		{"password ending in a space", func(o *config.OAuth2) { o.Password = config.NewSecret(canaryPassword + " ") }, nil},
		{"url and login hint", func(o *config.OAuth2) { o.TokenURL = "ftp://x"; o.LoginHint = "a b" }, nil},
		{"no mode", func(o *config.OAuth2) { o.Mode = "" }, nil},
		{"app on common with a broken key", func(o *config.OAuth2) {
			o.Mode = "microsoft-app"
			o.Tenant = "common"
			o.PrivateKey = config.NewSecret("not parsed")
		}, []string{"oauth2.private_key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, "microsoft365", "https://login.example.test", tt.edit)
			_, err := NewClient(ClientOptions{Config: cfg})
			got, _ := config.AsProblems(err)
			want := config.ValidateOAuth2(cfg)
			if len(want) == 0 || len(got) != len(want)+len(tt.parse) || got[:len(want)].Error() != want.Error() {
				t.Fatalf("NewClient = %v\nwant the validator's problems:\n%v\nthen %q", err, want, tt.parse)
			}
			for i, key := range tt.parse {
				if got[len(want)+i].Key != key {
					t.Errorf("parse problem %v, want one of %s", got[len(want)+i], key)
				}
			}
			if strings.Contains(err.Error(), canaryPassword) {
				t.Errorf("NewClient error shows the password: %v", err)
			}
		})
	}
}

func TestROPCTenantHint(t *testing.T) {
	cfg := testConfig(t, "microsoft365", "https://login.example.test", func(o *config.OAuth2) { o.Tenant = "common" })
	_, err := NewClient(ClientOptions{Config: cfg})
	if err == nil || !strings.Contains(err.Error(), "tenant ID") || !strings.Contains(err.Error(), "microsoft-app") {
		t.Errorf("NewClient(tenant common) = %v, want a hint naming the tenant ID and microsoft-app", err)
	}
}

func TestMicrosoftEndpointsAndScopeOrder(t *testing.T) {
	cfg := testConfig(t, "exchange", "https://login.example.test", func(o *config.OAuth2) {
		o.Scopes = []string{"offline_access", "openid", "https://outlook.office.com/SMTP.Send"}
	})
	c := newTestClient(t, cfg)
	if got, want := c.Scopes(), []string{"https://outlook.office.com/SMTP.Send", "offline_access", "openid"}; !slices.Equal(got, want) {
		t.Errorf("Scopes() = %q, want %q", got, want)
	}
	u, _, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://login.example.test/contoso.example/oauth2/v2.0/authorize?"; !strings.HasPrefix(u, want) {
		t.Errorf("Start() = %s, want it under %s", u, want)
	}
	if got := c.cfg.TokenURL; got != "https://login.example.test/contoso.example/oauth2/v2.0/token" {
		t.Errorf("token URL = %s", got)
	}
	// The preset: SMTP scope first, then offline_access.
	def := newTestClient(t, testConfig(t, "exchange", "https://login.example.test", nil))
	if got, want := def.Scopes(), []string{"https://outlook.office.com/SMTP.Send", "offline_access"}; !slices.Equal(got, want) {
		t.Errorf("preset Scopes() = %q, want %q", got, want)
	}
}

func TestClockUnsetSendsNothing(t *testing.T) {
	as := newFakeAS(t, func(int, seen) reply {
		t.Error("a request was sent with the clock unset")
		return reply{Body: tokenJSON("")}
	})
	cfg := testConfig(t, "private-key-jwt", as.URL, nil)
	c, err := NewClient(ClientOptions{Config: cfg, HTTP: &http.Client{},
		Now:       func() time.Time { return time.Date(1970, 1, 1, 0, 0, 9, 0, time.UTC) },
		NotBefore: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Refresh(context.Background(), canaryRefresh)
	if !errors.Is(err, ErrClockUnset) {
		t.Fatalf("Refresh with the clock unset = %v, want ErrClockUnset", err)
	}
	pe := asProviderError(t, err)
	if !pe.Transient || pe.Reauth || !strings.Contains(pe.Hint(), "1970-01-01") {
		t.Errorf("clock error = %+v, want transient with the clock's date in the hint", pe)
	}
	if n := len(as.requests()); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

func TestNoRedirectOffTheTokenEndpoint(t *testing.T) {
	elsewhere := newFakeAS(t, func(int, seen) reply {
		t.Error("the redirect was followed")
		return reply{Body: tokenJSON(canaryRefresh)}
	})
	as := newFakeAS(t, func(int, seen) reply {
		return reply{Status: http.StatusTemporaryRedirect, Header: map[string]string{"Location": elsewhere.URL + "/token"}}
	})
	c := newTestClient(t, testConfig(t, "client-secret-post", as.URL, nil))
	_, err := c.Refresh(context.Background(), canaryRefresh)
	pe := asProviderError(t, err)
	if pe.Status != http.StatusTemporaryRedirect || pe.Transient || pe.Reauth || !strings.Contains(pe.Hint(), "redirect") {
		t.Errorf("redirect answer = %+v, want status 307, permanent, a hint about the redirect", pe)
	}
	if n := len(as.requests()); n != 1 {
		t.Errorf("token endpoint saw %d requests, want 1", n)
	}
}

func TestRefresh(t *testing.T) {
	tests := []struct {
		mode     string
		answer   string
		want     url.Values
		wantPath string
		wantRT   string
	}{
		{"exchange", tokenJSON("rotated-refresh-token"), url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {canaryRefresh}, "client_id": {"client-1"}, "client_secret": {canarySecret},
		}, "/contoso.example/oauth2/v2.0/token", "rotated-refresh-token"},
		{"gmail", tokenJSON(""), url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {canaryRefresh}, "client_id": {"client-1"}, "client_secret": {canarySecret},
		}, "/token", canaryRefresh},
		{"microsoft365", tokenJSON("rotated"), url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {canaryRefresh}, "client_id": {"client-1"},
		}, "/contoso.example/oauth2/v2.0/token", "rotated"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			as := newFakeAS(t, func(int, seen) reply { return reply{Body: tt.answer} })
			c := newTestClient(t, testConfig(t, tt.mode, as.URL, nil))
			tok, err := c.Refresh(context.Background(), canaryRefresh)
			if err != nil {
				t.Fatal(err)
			}
			if tok.AccessToken != canaryAccess || tok.RefreshToken != tt.wantRT {
				t.Errorf("token = %q/%q, want %q/%q", tok.AccessToken, tok.RefreshToken, canaryAccess, tt.wantRT)
			}
			reqs := as.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			if r := reqs[0]; r.Path != tt.wantPath || !reflect.DeepEqual(r.Form, tt.want) || r.Header.Get("Authorization") != "" {
				t.Errorf("request %s %v (Authorization %q), want %s %v", r.Path, r.Form, r.Header.Get("Authorization"), tt.wantPath, tt.want)
			}
		})
	}
}

func TestRefreshWithoutRefreshToken(t *testing.T) {
	as := newFakeAS(t, func(int, seen) reply { t.Error("request sent"); return reply{} })
	c := newTestClient(t, testConfig(t, "gmail", as.URL, nil))
	_, err := c.Refresh(context.Background(), "")
	if pe := asProviderError(t, err); !errors.Is(err, ErrNoRefreshToken) || !pe.Reauth {
		t.Errorf("Refresh(\"\") = %+v, want Reauth wrapping ErrNoRefreshToken", pe)
	}
}

func TestRefreshInModesWithoutRefreshTokens(t *testing.T) {
	as := newFakeAS(t, okToken(""))
	c := newTestClient(t, testConfig(t, "microsoft-app", as.URL, nil))
	if c.UsesRefreshToken() {
		t.Error("microsoft-app UsesRefreshToken")
	}
	if _, err := c.Refresh(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if r := as.requests(); len(r) != 1 || r[0].Form.Get("grant_type") != "client_credentials" {
		t.Errorf("Refresh in microsoft-app sent %+v, want one client_credentials request", r)
	}
}

// TestFailingRequestSentOnce guards against x/oauth2's auto-detected auth
// style, which repeats every failing request with the other style.
func TestFailingRequestSentOnce(t *testing.T) {
	key, cert := readTestdata(t, "test-key.pem"), readTestdata(t, "test-cert.pem")
	tests := []struct {
		name string
		mode string
		edit func(o *config.OAuth2)
		do   func(c *Client) error
	}{
		{"refresh", "exchange", nil, func(c *Client) error { _, err := c.Refresh(context.Background(), canaryRefresh); return err }},
		{"exchange", "gmail", nil, func(c *Client) error {
			_, p, _ := c.Start()
			_, err := c.Finish(context.Background(), p, "https://box.example.test/auth.htm?code=x&state="+p.State)
			return err
		}},
		{"password", "microsoft365", nil, func(c *Client) error { _, err := c.Obtain(context.Background()); return err }},
		{"client credentials", "microsoft-app", nil, func(c *Client) error { _, err := c.Obtain(context.Background()); return err }},
		{"client credentials with certificate", "microsoft-app", func(o *config.OAuth2) {
			o.ClientSecret, o.PrivateKey, o.Certificate = config.Secret{}, config.NewSecret(key), cert
		}, func(c *Client) error { _, err := c.Obtain(context.Background()); return err }},
		{"jwt bearer", "google-service-account", nil, func(c *Client) error { _, err := c.Obtain(context.Background()); return err }},
		{"private key jwt refresh", "private-key-jwt", nil, func(c *Client) error { _, err := c.Refresh(context.Background(), canaryRefresh); return err }},
		{"client secret post refresh", "client-secret-post", nil, func(c *Client) error { _, err := c.Refresh(context.Background(), canaryRefresh); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, func(int, seen) reply {
				return reply{Status: http.StatusUnauthorized, Body: `{"error":"invalid_client","error_description":"no such client"}`}
			})
			c := newTestClient(t, testConfig(t, tt.mode, as.URL, tt.edit))
			err := tt.do(c)
			if pe := asProviderError(t, err); pe.Code != "invalid_client" || pe.Status != http.StatusUnauthorized {
				t.Errorf("error = %+v, want invalid_client, 401", pe)
			}
			reqs := as.requests()
			if len(reqs) != 1 {
				t.Fatalf("the failing request was sent %d times, want once", len(reqs))
			}
			if h := reqs[0].Header.Get("Authorization"); h != "" {
				t.Errorf("Authorization header %q sent; the client authenticates in the body", h)
			}
		})
	}
}

func TestDefaultHTTPClient(t *testing.T) {
	c, err := NewClient(ClientOptions{Config: testConfig(t, "gmail", "https://as.example.test", nil)})
	if err != nil {
		t.Fatal(err)
	}
	if c.timeout != requestTimeout || c.base != sharedTransport() {
		t.Errorf("default client: timeout %v, shared transport %v", c.timeout, c.base == sharedTransport())
	}
}
