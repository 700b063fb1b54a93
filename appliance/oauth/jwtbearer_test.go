package oauth

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestJWTBearer(t *testing.T) {
	as := newFakeAS(t, okToken(""))
	c := newTestClient(t, testConfig(t, "google-service-account", as.URL, nil))
	if c.UsesRefreshToken() || c.SupportsDeviceCode() {
		t.Error("google-service-account claims a refresh token or device code")
	}
	tok, err := c.Obtain(context.Background())
	if err != nil || tok.AccessToken != canaryAccess || tok.Expiry.IsZero() {
		t.Fatalf("Obtain = %+v, %v", tok, err)
	}
	reqs := as.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	f := reqs[0].Form
	if f.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" || len(f) != 2 || reqs[0].Path != "/token" {
		t.Errorf("form %v", f)
	}
	cert, _ := testCert(t)
	parsed, err := jwt.Parse(f.Get("assertion"), func(*jwt.Token) (any, error) { return cert.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(as.URL+"/token"), jwt.WithIssuer("alarms@mailagent-test.iam.gserviceaccount.com"),
		jwt.WithSubject("alarm@example.test"), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("assertion: %v", err)
	}
	claims := parsed.Claims.(jwt.MapClaims)
	iat, _ := claims.GetIssuedAt()
	exp, _ := claims.GetExpirationTime()
	if parsed.Header["kid"] != "kid-sa-1" || claims["scope"] != "https://mail.google.com/" || exp.Sub(iat.Time) > time.Hour {
		t.Errorf("assertion header %v claims %v: want kid, the mail scope, at most one hour", parsed.Header, claims)
	}
}

// TestJWTBearerErrorFromBody: x/oauth2/jwt leaves the error code in the
// body only.
func TestJWTBearerErrorFromBody(t *testing.T) {
	as := newFakeAS(t, func(int, seen) reply {
		return reply{Status: http.StatusUnauthorized, Body: `{"error":"unauthorized_client","error_description":"Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."}`}
	})
	c := newTestClient(t, testConfig(t, "google-service-account", as.URL, nil))
	_, err := c.Obtain(context.Background())
	pe := asProviderError(t, err)
	if pe.Code != "unauthorized_client" || pe.Status != 401 || pe.Reauth || pe.Transient ||
		!strings.Contains(pe.Hint(), "104242424242424242424") || !strings.Contains(pe.Hint(), "24 hours") || !strings.Contains(pe.Description, "Client is unauthorized") {
		t.Errorf("Obtain = %+v (hint %q)", pe, pe.Hint())
	}
	if n := len(as.requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestJWTBearerWithoutAccessToken(t *testing.T) {
	as := newFakeAS(t, func(int, seen) reply { return reply{Body: `{"token_type":"Bearer","expires_in":3600}`} })
	c := newTestClient(t, testConfig(t, "google-service-account", as.URL, nil))
	if tok, err := c.Obtain(context.Background()); err == nil {
		t.Errorf("Obtain = %+v without an access token", tok)
	}
}
