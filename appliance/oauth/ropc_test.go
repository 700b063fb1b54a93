package oauth

import (
	"context"
	"net/url"
	"reflect"
	"testing"

	"mailagent/appliance/config"
)

func TestPasswordGrant(t *testing.T) {
	tests := []struct {
		name string
		edit func(o *config.OAuth2)
		want url.Values
	}{
		{"public client", nil, url.Values{"grant_type": {"password"}, "username": {"alarm@contoso.example"}, "password": {canaryPassword},
			"scope": {"https://outlook.office.com/SMTP.Send offline_access"}, "client_id": {"client-1"}}},
		{"with a client secret", func(o *config.OAuth2) { o.ClientSecret = config.NewSecret(canarySecret) }, url.Values{
			"grant_type": {"password"}, "username": {"alarm@contoso.example"}, "password": {canaryPassword},
			"scope": {"https://outlook.office.com/SMTP.Send offline_access"}, "client_id": {"client-1"}, "client_secret": {canarySecret}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := newFakeAS(t, okToken(canaryRefresh))
			c := newTestClient(t, testConfig(t, "microsoft365", as.URL, tt.edit))
			tok, err := c.Obtain(context.Background())
			if err != nil || tok.RefreshToken != canaryRefresh {
				t.Fatalf("Obtain = %v, %v", tok, err)
			}
			reqs := as.requests()
			if len(reqs) != 1 || reqs[0].Path != "/contoso.example/oauth2/v2.0/token" || !reflect.DeepEqual(reqs[0].Form, tt.want) {
				t.Errorf("sent %+v, want one request with %v", reqs, tt.want)
			}
		})
	}
}

func TestObtainInInteractiveModes(t *testing.T) {
	for _, mode := range []string{"exchange", "gmail", "client-secret-post", "private-key-jwt"} {
		c := newTestClient(t, testConfig(t, mode, "https://as.example.test", nil))
		if _, err := c.Obtain(context.Background()); err == nil {
			t.Errorf("Obtain in %s succeeded", mode)
		}
	}
}
