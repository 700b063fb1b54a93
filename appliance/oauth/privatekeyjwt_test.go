package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"mailagent/appliance/config"
)

// otherCertPEM is a self-signed certificate of a fresh key.
func otherCertPEM(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return selfSigned(t, key, &key.PublicKey)
}

func selfSigned(t *testing.T, key any, pub any) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func ecKeyPEM(t *testing.T, curve elliptic.Curve) (string, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), key
}

// assertionCheck is what a client assertion must look like.
type assertionCheck struct {
	pub     crypto.PublicKey
	alg     string
	kid     string // "" for none
	x5tS256 string // "" for none
	aud     string
}

// checkAssertion verifies the client assertion of a token request form
// and returns its jti.
func checkAssertion(t *testing.T, form url.Values, want assertionCheck) string {
	t.Helper()
	if got := form.Get("client_assertion_type"); got != assertionType {
		t.Errorf("client_assertion_type = %q", got)
	}
	if form.Has("client_secret") {
		t.Error("client_secret sent with an assertion")
	}
	raw := form.Get("client_assertion")
	tok, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return want.pub, nil },
		jwt.WithValidMethods([]string{want.alg}), jwt.WithTimeFunc(testNow), jwt.WithAudience(want.aud),
		jwt.WithIssuer("client-1"), jwt.WithSubject("client-1"), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		t.Fatalf("client assertion does not verify: %v", err)
	}
	h := tok.Header
	if h["typ"] != "JWT" || h["kid"] != nilIfEmpty(want.kid) || h["x5t#S256"] != nilIfEmpty(want.x5tS256) {
		t.Errorf("header %v, want kid %q, x5t#S256 %q", h, want.kid, want.x5tS256)
	}
	c := tok.Claims.(jwt.MapClaims)
	if _, isString := c["aud"].(string); !isString {
		t.Errorf("aud = %v, want a string", c["aud"])
	}
	iat, _ := c.GetIssuedAt()
	nbf, _ := c.GetNotBefore()
	exp, _ := c.GetExpirationTime()
	if !iat.Equal(testTime) || !nbf.Equal(testTime) || !exp.Equal(testTime.Add(5*time.Minute)) {
		t.Errorf("iat %v nbf %v exp %v, want now, now, now+5m", iat, nbf, exp)
	}
	jti, _ := c["jti"].(string)
	if len(jti) < 16 {
		t.Errorf("jti %q is too short to be random", jti)
	}
	if want.alg == "PS256" {
		// JWS PS256 wants salt length = hash length, not Go's maximum.
		parts := strings.Split(raw, ".")
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if err := rsa.VerifyPSS(want.pub.(*rsa.PublicKey), crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: 32}); err != nil {
			t.Errorf("PS256 signature with salt length 32: %v", err)
		}
	}
	return jti
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func testCert(t *testing.T) (*x509.Certificate, string) {
	t.Helper()
	c, err := parseCertificate(readTestdata(t, "test-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c.Raw)
	return c, base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestAssertionOnEveryTokenRequest: exchange and refresh in
// private-key-jwt each carry a fresh assertion (different jti); the device
// poll is covered in devicecode_test.go.
func TestAssertionOnEveryTokenRequest(t *testing.T) {
	cert, x5t := testCert(t)
	tests := []struct {
		name string
		edit func(o *config.OAuth2)
		want assertionCheck
	}{
		{"RS256 with kid", nil, assertionCheck{alg: "RS256", kid: "kid-1"}},
		{"PS256 with certificate", func(o *config.OAuth2) { o.KeyID = ""; o.Certificate = readTestdata(t, "test-cert.pem") },
			assertionCheck{alg: "PS256", x5tS256: x5t}},
		{"PS256 with certificate and kid, secret ignored", func(o *config.OAuth2) {
			o.Certificate = readTestdata(t, "test-cert.pem")
			o.ClientSecret = config.NewSecret(canarySecret)
		}, assertionCheck{alg: "PS256", kid: "kid-1", x5tS256: x5t}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, okToken(canaryRefresh))
			c := newTestClient(t, testConfig(t, "private-key-jwt", as.URL, tt.edit))
			_, p, err := c.Start()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Finish(context.Background(), p, "?code="+canaryCode+"&state="+p.State); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Refresh(context.Background(), canaryRefresh); err != nil {
				t.Fatal(err)
			}
			reqs := as.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			want := tt.want
			want.pub, want.aud = cert.PublicKey, as.URL+"/token"
			jti1 := checkAssertion(t, reqs[0].Form, want)
			jti2 := checkAssertion(t, reqs[1].Form, want)
			if jti1 == jti2 {
				t.Errorf("two requests share jti %q", jti1)
			}
			if reqs[0].Form.Get("grant_type") != "authorization_code" || reqs[0].Form.Get("code_verifier") != p.Verifier ||
				reqs[1].Form.Get("grant_type") != "refresh_token" || reqs[0].Form.Get("client_id") != "client-1" {
				t.Errorf("forms %v / %v", reqs[0].Form, reqs[1].Form)
			}
		})
	}
}

func TestAssertionES256(t *testing.T) {
	keyPEM, key := ecKeyPEM(t, elliptic.P256())
	as := newFakeAS(t, okToken(canaryRefresh))
	c := newTestClient(t, testConfig(t, "private-key-jwt", as.URL, func(o *config.OAuth2) { o.PrivateKey = config.NewSecret(keyPEM) }))
	if _, err := c.Refresh(context.Background(), canaryRefresh); err != nil {
		t.Fatal(err)
	}
	checkAssertion(t, as.requests()[0].Form, assertionCheck{pub: &key.PublicKey, alg: "ES256", kid: "kid-1", aud: as.URL + "/token"})

	p384, _ := ecKeyPEM(t, elliptic.P384())
	_, err := NewClient(ClientOptions{Config: testConfig(t, "private-key-jwt", as.URL, func(o *config.OAuth2) { o.PrivateKey = config.NewSecret(p384) })})
	if err == nil || !strings.Contains(err.Error(), "P-256") {
		t.Errorf("NewClient(P-384 key) = %v, want a refusal naming P-256", err)
	}
}

// TestMicrosoftAppCertificate: client credentials with a certificate send
// a PS256 assertion with x5t#S256 whose aud is the tenant's token URL, and
// the .default scope.
func TestMicrosoftAppCertificate(t *testing.T) {
	cert, x5t := testCert(t)
	as := newFakeAS(t, okToken(""))
	c := newTestClient(t, testConfig(t, "microsoft-app", as.URL, func(o *config.OAuth2) {
		o.ClientSecret = config.Secret{}
		o.PrivateKey = config.NewSecret(readTestdata(t, "test-key.pem"))
		o.Certificate = readTestdata(t, "test-cert.pem")
	}))
	if !c.CredentialExpires().Equal(cert.NotAfter) {
		t.Errorf("CredentialExpires() = %v, want %v", c.CredentialExpires(), cert.NotAfter)
	}
	for range 2 {
		if _, err := c.Obtain(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	reqs := as.requests()
	tokenURL := as.URL + "/contoso.example/oauth2/v2.0/token"
	want := assertionCheck{pub: cert.PublicKey, alg: "PS256", x5tS256: x5t, aud: tokenURL}
	if checkAssertion(t, reqs[0].Form, want) == checkAssertion(t, reqs[1].Form, want) {
		t.Error("two client credentials requests share a jti")
	}
	f := reqs[0].Form
	f.Del("client_assertion")
	wantForm := url.Values{"grant_type": {"client_credentials"}, "client_id": {"client-1"},
		"scope": {"https://outlook.office365.com/.default"}, "client_assertion_type": {assertionType}}
	if !reflect.DeepEqual(f, wantForm) {
		t.Errorf("form %v, want %v", f, wantForm)
	}
}

func TestMicrosoftAppSecret(t *testing.T) {
	as := newFakeAS(t, okToken(""))
	c := newTestClient(t, testConfig(t, "microsoft-app", as.URL, nil))
	tok, err := c.Obtain(context.Background())
	if err != nil || tok.AccessToken != canaryAccess {
		t.Fatalf("Obtain = %v, %v", tok, err)
	}
	want := url.Values{"grant_type": {"client_credentials"}, "client_id": {"client-1"}, "client_secret": {canarySecret},
		"scope": {"https://outlook.office365.com/.default"}}
	if r := as.requests()[0]; !reflect.DeepEqual(r.Form, want) || r.Path != "/contoso.example/oauth2/v2.0/token" {
		t.Errorf("sent %s %v, want %v", r.Path, r.Form, want)
	}
}

func TestParsePrivateKey(t *testing.T) {
	rsaPEM := readTestdata(t, "test-key.pem")
	rsaKey, err := parsePrivateKey(rsaPEM)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey.(*rsa.PrivateKey))}))
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)}))
	ecPEM, _ := ecKeyPEM(t, elliptic.P256())
	tests := []struct {
		name, text, err string
	}{
		{"pkcs8 rsa", rsaPEM, ""},
		{"pkcs1 rsa", pkcs1, ""},
		{"certificate then key", readTestdata(t, "test-cert.pem") + rsaPEM, ""},
		{"ec", ecPEM, ""},
		{"short rsa", smallPEM, "2048"},
		{"no pem", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "no PEM private key"},
		{"certificate only", readTestdata(t, "test-cert.pem"), "no PEM private key"},
		{"encrypted", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nQUJD\n-----END ENCRYPTED PRIVATE KEY-----\n", "encrypted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parsePrivateKey(tt.text)
			if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("parsePrivateKey = %v, want error containing %q", err, tt.err)
			}
		})
	}
}
