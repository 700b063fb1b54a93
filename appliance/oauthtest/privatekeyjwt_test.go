package oauthtest

import (
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"testing"
	"testing/synctest"
	"time"
)

func TestClientAssertion(t *testing.T) {
	_, cert := KeyPair(t, "client")
	sum := sha256.Sum256(cert.Raw)
	other, _ := KeyPair(t, "other")
	now := time.Now().Unix()
	tests := []struct {
		name    string
		flavour Flavour
		header  map[string]any
		claims  map[string]any
		key     bool   // sign with another key
		typ     string // client_assertion_type, if not the right one
		about   string // "" for a good assertion
	}{
		{name: "ps256"},
		{name: "rs256", header: map[string]any{"alg": "RS256"}},
		{name: "microsoft", flavour: Microsoft},
		{name: "google", flavour: Google},
		{name: "x5t#S256 standard base64", header: map[string]any{"x5t#S256": base64.StdEncoding.EncodeToString(sum[:])}},
		{name: "aud as array", claims: map[string]any{"aud": []string{"TOKEN_URL"}}},
		{name: "iat within skew", claims: map[string]any{"iat": now + 30, "nbf": now + 30}},
		{name: "no iat nor nbf", claims: map[string]any{"iat": nil, "nbf": nil}},

		{name: "ps256 with maximal salt", header: map[string]any{"alg": "PS256-maxsalt"}, about: "signature"},
		{name: "other key", key: true, about: "signature"},
		{name: "hs256", header: map[string]any{"alg": "HS256"}, about: "alg"},
		{name: "none", header: map[string]any{"alg": "none"}, about: "alg"},
		{name: "no x5t#S256", header: map[string]any{"x5t#S256": nil}, about: "no x5t#S256"},
		{name: "x5t#S256 of another certificate", header: map[string]any{"x5t#S256": base64.RawURLEncoding.EncodeToString(make([]byte, 32))}, about: "thumbprint"},
		{name: "sha-1 x5t only", header: map[string]any{"x5t#S256": nil, "x5t": "AAAA"}, about: "no x5t#S256"},
		{name: "no kid", header: map[string]any{"kid": nil}, about: "kid"},
		{name: "other kid", header: map[string]any{"kid": "k2"}, about: "kid"},
		{name: "iss is not the client", claims: map[string]any{"iss": "other", "sub": "other"}, about: "iss"},
		{name: "sub is not iss", claims: map[string]any{"sub": "someone"}, about: "sub"},
		{name: "aud is the authority", claims: map[string]any{"aud": "BASE"}, about: "aud"},
		{name: "aud of another tenant", flavour: Microsoft, claims: map[string]any{"aud": "BASE/common/oauth2/v2.0/token"}, about: "aud"},
		{name: "aud with another", claims: map[string]any{"aud": []string{"TOKEN_URL", "https://example.test"}}, about: "aud"},
		{name: "no exp", claims: map[string]any{"exp": nil}, about: "no exp"},
		{name: "exp as string", claims: map[string]any{"exp": "2100-01-01"}, about: "NumericDate"},
		{name: "expired", claims: map[string]any{"exp": now - 1}, about: "expired"},
		{name: "exp too far", claims: map[string]any{"exp": now + 3600}, about: "at most"},
		{name: "nbf in the future", claims: map[string]any{"nbf": now + 300}, about: "nbf"},
		{name: "iat in the future", claims: map[string]any{"iat": now + 300}, about: "iat"},
		{name: "no jti", claims: map[string]any{"jti": nil}, about: "no jti"},
		{name: "wrong type", typ: "urn:ietf:params:oauth:client-assertion-type:saml2-bearer", about: "client_assertion_type"},
		{name: "not a jwt", header: map[string]any{"alg": "broken"}, about: "client assertion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fixture(t, tt.flavour)
			fill := func(m map[string]any) map[string]any {
				out := map[string]any{}
				for k, v := range m {
					switch v {
					case "TOKEN_URL":
						v = h.TokenURL()
					case "BASE":
						v = h.URL()
					case "BASE/common/oauth2/v2.0/token":
						v = h.URL() + "/common/oauth2/v2.0/token"
					}
					if l, ok := v.([]string); ok {
						l2 := append([]string(nil), l...)
						for i := range l2 {
							if l2[i] == "TOKEN_URL" {
								l2[i] = h.TokenURL()
							}
						}
						v = l2
					}
					out[k] = v
				}
				return out
			}
			assertion := h.assertion(t, fill(tt.header), fill(tt.claims))
			if tt.key {
				j, _ := parseJWT(assertion)
				assertion = signJWT(t, other, j.header, j.claims)
			}
			if tt.name == "not a jwt" {
				assertion = "not.a.jwt"
			}
			typ := AssertionType
			if tt.typ != "" {
				typ = tt.typ
			}
			code, verifier := h.code(t, "jwt")
			f := exchangeForm(code, verifier)
			f.Set("client_id", "jwt")
			f.Set("client_assertion_type", typ)
			f.Set("client_assertion", assertion)
			a := h.post(t, h.TokenURL(), f)
			h.want(t, tt.about)
			if tt.about == "" {
				checkTokens(t, a, scopeFor(tt.flavour), true)
				return
			}
			checkError(t, a, 401, "invalid_client")
		})
	}
}

func TestClientAssertionReplay(t *testing.T) {
	synctest.Test(t, testClientAssertionReplay)
}

func testClientAssertionReplay(t *testing.T) {
	h := fixture(t, Microsoft, func(o *Options) { o.Rotation = Rotate })
	assertion := h.assertion(t, nil, nil)
	code, verifier := h.code(t, "jwt")
	f := exchangeForm(code, verifier)
	f.Set("client_assertion_type", AssertionType)
	f.Set("client_assertion", assertion)
	a := h.post(t, h.TokenURL(), f)
	checkTokens(t, a, scopeFor(Microsoft), true)
	h.want(t, "")

	// A refresh needs a newly signed assertion too.
	r := url.Values{"grant_type": {GrantRefreshToken}, "refresh_token": {a.str("refresh_token")},
		"client_assertion_type": {AssertionType}, "client_assertion": {assertion}}
	checkError(t, h.post(t, h.TokenURL(), r), 401, "invalid_client")
	h.want(t, "replayed")
	time.Sleep(time.Second) // sooner is a double request
	r.Set("client_assertion", h.assertion(t, nil, nil))
	checkTokens(t, h.post(t, h.TokenURL(), r), scopeFor(Microsoft), true)
	h.want(t, "")
}

func TestClientAssertionKeyFromCertificate(t *testing.T) {
	// A client with a certificate only takes its key from it; without kid
	// any kid passes.
	_, cert := KeyPair(t, "client")
	h := fixture(t, Generic, func(o *Options) {
		o.Clients = []Client{{ID: "jwt", Auth: AuthPrivateKeyJWT, Certificate: cert, RedirectURIs: []string{redirectURI}}}
	})
	code, verifier := h.code(t, "jwt")
	f := exchangeForm(code, verifier)
	f.Set("client_assertion_type", AssertionType)
	f.Set("client_assertion", h.assertion(t, map[string]any{"kid": "anything"}, nil))
	checkTokens(t, h.post(t, h.TokenURL(), f), "mail", true)
	h.want(t, "")
}
