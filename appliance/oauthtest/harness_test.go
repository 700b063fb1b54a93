package oauthtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fixture names shared by the tests.
const (
	redirectURI = "https://box.example.test/auth.htm"
	loopbackURI = "http://127.0.0.1:8080/callback"
	mailbox     = "alarm@example.test"
	saEmail     = "mailer@project.iam.gserviceaccount.com"
	saKeyID     = "0123456789abcdef"
	clientKeyID = "client-key-1"
)

// Secrets with characters that RFC 6749 §2.3.1's form-encoding changes.
const (
	postSecret  = "p0st+secret/&="
	basicSecret = "b4sic:secret%+"
)

// harness is a server whose violations the test collects instead of
// failing on them.
type harness struct {
	*Server
	mu  sync.Mutex
	got []string
}

// fixture is a server of the flavour with one client per authentication
// method, a service account and two users.
func fixture(t testing.TB, f Flavour, mod ...func(*Options)) *harness {
	t.Helper()
	_, cert := KeyPair(t, "client")
	saKey, _ := KeyPair(t, "service-account")
	o := Options{
		Flavour: f,
		Clients: []Client{
			{ID: "post", Secret: postSecret, Auth: AuthPost, RedirectURIs: []string{redirectURI, loopbackURI}, Mailbox: mailbox},
			{ID: "basic", Secret: basicSecret, Auth: AuthBasic, RedirectURIs: []string{redirectURI}},
			{ID: "public", Auth: AuthNone, RedirectURIs: []string{redirectURI}},
			{ID: "jwt", Auth: AuthPrivateKeyJWT, Certificate: cert, KeyID: clientKeyID, RedirectURIs: []string{redirectURI}, Mailbox: mailbox},
		},
		ServiceAccounts: []ServiceAccount{{Email: saEmail, KeyID: saKeyID, PublicKey: &saKey.PublicKey, Subjects: []string{mailbox}}},
		Users:           map[string]string{mailbox: "correct horse", "other@example.test": "battery staple"},
		InProcess:       true,
	}
	for _, m := range mod {
		m(&o)
	}
	h := &harness{}
	o.Report = func(v string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.got = append(h.got, v)
	}
	h.Server = NewServer(t, o)
	return h
}

// take returns the violations since the last take.
func (h *harness) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.got
	h.got = nil
	return v
}

// want checks the violations since the last check: none if about is "",
// else at least one whose text has about.
func (h *harness) want(t testing.TB, about string) {
	t.Helper()
	vs := h.take()
	if about == "" {
		if len(vs) > 0 {
			t.Errorf("violations %q, want none", vs)
		}
		return
	}
	for _, v := range vs {
		if strings.Contains(v, about) {
			return
		}
	}
	t.Errorf("violations %q, want one about %q", vs, about)
}

// answer is an HTTP answer with its JSON body, if any.
type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a answer) str(k string) string {
	s, _ := a.body[k].(string)
	return s
}

func do(t testing.TB, c *http.Client, r *http.Request) answer {
	t.Helper()
	resp, err := c.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("%s %s: body %q: %v", r.Method, r.URL, raw, err)
		}
	}
	return a
}

// post sends form to u; prep may change the request first.
func (h *harness) post(t testing.TB, u string, form url.Values, prep ...func(*http.Request)) answer {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, p := range prep {
		p(r)
	}
	return do(t, h.HTTPClient(), r)
}

// token sends a token request authenticated the way client is registered.
func (h *harness) token(t testing.TB, client string, form url.Values) answer {
	t.Helper()
	form = maps.Clone(form)
	var prep []func(*http.Request)
	switch client {
	case "post":
		form.Set("client_id", "post")
		form.Set("client_secret", postSecret)
	case "basic":
		prep = append(prep, func(r *http.Request) { r.SetBasicAuth("basic", url.QueryEscape(basicSecret)) })
	case "public":
		form.Set("client_id", "public")
	case "jwt":
		form.Set("client_id", "jwt")
		form.Set("client_assertion_type", AssertionType)
		form.Set("client_assertion", h.assertion(t, nil, nil))
	case "":
	default:
		t.Fatalf("no client %q in the fixture", client)
	}
	return h.post(t, h.TokenURL(), form, prep...)
}

// assertion signs a good client assertion for client "jwt", changed by the
// header and claims given (a nil value deletes).
func (h *harness) assertion(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	key, cert := KeyPair(t, "client")
	sum := sha256.Sum256(cert.Raw)
	now := time.Now().Unix()
	hd := map[string]any{"alg": "PS256", "typ": "JWT", "kid": clientKeyID,
		"x5t#S256": base64.RawURLEncoding.EncodeToString(sum[:])}
	cl := map[string]any{"iss": "jwt", "sub": "jwt", "aud": h.TokenURL(), "jti": randomString(22),
		"iat": now, "nbf": now, "exp": now + 600}
	return signJWT(t, key, merge(hd, header), merge(cl, claims))
}

// grantAssertion signs a good service account assertion, changed as
// assertion's are.
func (h *harness) grantAssertion(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	key, _ := KeyPair(t, "service-account")
	now := time.Now().Unix()
	hd := map[string]any{"alg": "RS256", "typ": "JWT", "kid": saKeyID}
	cl := map[string]any{"iss": saEmail, "sub": mailbox, "scope": "https://mail.google.com/",
		"aud": h.TokenURL(), "iat": now - 10, "exp": now + 3590}
	return signJWT(t, key, merge(hd, header), merge(cl, claims))
}

func merge(base, over map[string]any) map[string]any {
	for k, v := range over {
		if v == nil {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	return base
}

// signJWT signs a JWS for header["alg"]: RS256, PS256, or "PS256-maxsalt",
// a PS256 header over a signature with Go's default (maximal) salt.
func signJWT(t testing.TB, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	alg, _ := header["alg"].(string)
	if alg == "PS256-maxsalt" {
		header["alg"] = "PS256"
	}
	hj, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	cj, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := base64.RawURLEncoding.EncodeToString(hj) + "." + base64.RawURLEncoding.EncodeToString(cj)
	sum := sha256.Sum256([]byte(input))
	var sig []byte
	switch alg {
	case "RS256":
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	case "PS256":
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "PS256-maxsalt":
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, sum[:], nil)
	default:
		sig = []byte("not a signature")
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// pkce returns a fresh S256 verifier and challenge (RFC 7636 §4.1, §4.2).
func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// scopeFor is the mail scope each flavour's client asks for.
func scopeFor(f Flavour) string {
	switch f {
	case Microsoft:
		return "https://outlook.office.com/SMTP.Send offline_access"
	case Google:
		return "https://mail.google.com/"
	}
	return "mail"
}

// authParams are the parameters of a good authorization request for client.
func (h *harness) authParams(client string) (url.Values, string) {
	verifier, challenge := pkce()
	p := url.Values{
		"response_type":         {"code"},
		"client_id":             {client},
		"redirect_uri":          {redirectURI},
		"scope":                 {scopeFor(h.o.Flavour)},
		"state":                 {randomString(24)},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"login_hint":            {mailbox},
	}
	switch h.o.Flavour {
	case Google:
		p.Set("access_type", "offline")
		p.Set("prompt", "consent")
	case Generic:
		for k, v := range h.o.AuthParams {
			p[k] = v
		}
	}
	return p, verifier
}

// authURL joins the parameters to the authorization endpoint.
func (h *harness) authURL(p url.Values) string {
	u, _ := url.Parse(h.AuthURL())
	u.RawQuery = p.Encode()
	return u.String()
}

// code runs a good authorization for client and returns the code and its
// verifier.
func (h *harness) code(t testing.TB, client string) (code, verifier string) {
	t.Helper()
	p, verifier := h.authParams(client)
	back := h.Authorize(t, h.authURL(p))
	u, err := url.Parse(back)
	if err != nil || u.Query().Get("code") == "" {
		t.Fatalf("Authorize gave %q, want a redirect with a code", back)
	}
	if got := u.Query().Get("state"); got != p.Get("state") {
		t.Fatalf("redirect state %q, want %q", got, p.Get("state"))
	}
	return u.Query().Get("code"), verifier
}

// exchangeForm is a good code redemption.
func exchangeForm(code, verifier string) url.Values {
	return url.Values{"grant_type": {GrantAuthorizationCode}, "code": {code},
		"redirect_uri": {redirectURI}, "code_verifier": {verifier}}
}

// tokens runs the authorization code flow for client and returns the answer.
func (h *harness) tokens(t testing.TB, client string) answer {
	t.Helper()
	code, verifier := h.code(t, client)
	a := h.token(t, client, exchangeForm(code, verifier))
	if a.status != http.StatusOK {
		t.Fatalf("code exchange: %d %s", a.status, a.raw)
	}
	return a
}

// refreshForm is a refresh request.
func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {GrantRefreshToken}, "refresh_token": {rt}}
}

// checkError checks an error answer's status and error code.
func checkError(t testing.TB, a answer, status int, code string) {
	t.Helper()
	if a.status != status || a.str("error") != code {
		t.Errorf("answer %d %s, want %d with error %q", a.status, a.raw, status, code)
	}
}

// introspect asks the server about token through its introspection endpoint.
func (h *harness) introspect(t testing.TB, token string) answer {
	t.Helper()
	return h.post(t, h.URL()+"/introspect", url.Values{"token": {token}},
		func(r *http.Request) { r.SetBasicAuth(ClientID, ClientSecret) })
}
