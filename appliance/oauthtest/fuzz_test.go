package oauthtest

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func FuzzParseJWT(f *testing.F) {
	h := fixture(f, Generic)
	signed := []string{h.assertion(f, nil, nil), h.grantAssertion(f, nil, nil)}
	for _, s := range signed {
		f.Add(s)
	}
	f.Add(h.assertion(f, map[string]any{"alg": "none"}, map[string]any{"aud": []string{"a", "b"}, "exp": "soon"}))
	f.Add("a.b.c")
	f.Add("e30.e30.")
	f.Add("not a jwt")
	client, _ := KeyPair(f, "client")
	sa, _ := KeyPair(f, "service-account")
	f.Fuzz(func(t *testing.T, s string) {
		j, err := parseJWT(s)
		if err != nil {
			return
		}
		if strings.Count(s, ".") != 2 || j.header == nil || j.claims == nil {
			t.Fatalf("parseJWT(%q) accepted a malformed JWS", s)
		}
		j.audience()
		for _, c := range []string{"exp", "iat", "nbf"} {
			j.time(c)
		}
		// Only the seeds signed with the private keys may verify.
		ok := j.verify(&client.PublicKey, "RS256", "PS256") == nil || j.verify(&sa.PublicKey, "RS256", "PS256") == nil
		if ok && !slices.Contains(signed, s) {
			t.Fatalf("parseJWT(%q) verified a forged signature", s)
		}
	})
}

// FuzzTokenEndpoint sends arbitrary bodies to every endpoint: the server
// must answer, never panic, and refuse what it cannot parse.
func FuzzTokenEndpoint(f *testing.F) {
	for _, seed := range []url.Values{
		refreshForm("x"),
		exchangeForm("code", "verifier"),
		{"grant_type": {GrantDeviceCode}, "device_code": {"x"}, "client_id": {"public"}},
		{"grant_type": {GrantJWTBearer}, "assertion": {"a.b.c"}},
		{"grant_type": {GrantPassword}, "username": {mailbox}, "password": {"x"}, "scope": {"s"}, "client_id": {"public"}},
		{"grant_type": {GrantClientCredentials}, "client_id": {"jwt"}, "client_assertion_type": {AssertionType}, "client_assertion": {"e30.e30."}},
	} {
		for _, path := range []string{"/token", "/device", "/authorize", "/introspect"} {
			f.Add(path, seed.Encode())
		}
	}
	f.Add("/token", "%zz&&=;")
	f.Fuzz(func(t *testing.T, path, body string) {
		h := fixture(t, Generic)
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		r, err := http.NewRequest(http.MethodPost, h.URL()+path, strings.NewReader(body))
		if err != nil {
			return
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := h.HTTPClient().Do(r)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && path == "/token" {
			v, _ := url.ParseQuery(body)
			if v.Get("client_secret") == "" && v.Get("client_assertion") == "" && v.Get("assertion") == "" {
				t.Fatalf("POST /token %q: tokens without credentials", body)
			}
		}
	})
}
