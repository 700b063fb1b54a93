package oauthtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A server on a socket serves the same flows to an ordinary client.
func TestOverSocket(t *testing.T) {
	h := fixture(t, Microsoft, func(o *Options) { o.InProcess = false })
	if !strings.HasPrefix(h.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL() = %q, want a loopback address", h.URL())
	}
	code, verifier := h.code(t, "post")
	f := exchangeForm(code, verifier)
	f.Set("client_id", "post")
	f.Set("client_secret", postSecret)
	resp, err := http.PostForm(h.TokenURL(), f)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("code exchange over the socket: %s", resp.Status)
	}
	h.want(t, "")
}

// A server made inside a bubble runs on the bubble's clock.
func TestInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := fixture(t, Google, func(o *Options) { o.AccessTTL = 10 * time.Minute })
		if h.URL() != "https://oauthtest.invalid" {
			t.Errorf("URL() = %q", h.URL())
		}
		at := h.tokens(t, "post")
		if at.body["expires_in"] != float64(600) {
			t.Errorf("expires_in %v, want 600", at.body["expires_in"])
		}
		time.Sleep(10*time.Minute - time.Second)
		if a := h.introspect(t, at.str("access_token")); a.body["active"] != true {
			t.Errorf("token inactive before its time: %s", a.raw)
		}
		time.Sleep(time.Second)
		if a := h.introspect(t, at.str("access_token")); a.body["active"] != false {
			t.Errorf("token active after its time: %s", a.raw)
		}
		h.want(t, "")

		if _, err := h.HTTPClient().Get("http://127.0.0.1:1/token"); err == nil || !strings.Contains(err.Error(), "reaches") {
			t.Errorf("in-process transport to another host: %v", err)
		}
	})
}

// Without Options.Report, violations fail the test.
func TestDefaultReport(t *testing.T) {
	rec := &recorder{TB: t}
	s := NewServer(rec, Options{Clients: []Client{{ID: "c", Secret: "s", RedirectURIs: []string{redirectURI}}}})
	resp, err := s.HTTPClient().Get(s.AuthURL() + "?" + url.Values{"client_id": {"c"}, "redirect_uri": {redirectURI}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := rec.take(); n != 1 {
		t.Errorf("%d test errors, want 1", n)
	}
	if v := s.Violations(); len(v) != 1 || !strings.Contains(v[0], "response_type") {
		t.Errorf("Violations() = %q", v)
	}
}

func TestEndpoints(t *testing.T) {
	tests := []struct {
		flavour             Flavour
		auth, token, device string
		options             func(*Options)
	}{
		{Generic, "/authorize", "/token", "/device", nil},
		{Generic, "/authorize?audience=mail", "/token", "/device", func(o *Options) { o.AuthParams = url.Values{"audience": {"mail"}} }},
		{Microsoft, "/" + DefaultTenant + "/oauth2/v2.0/authorize", "/" + DefaultTenant + "/oauth2/v2.0/token",
			"/" + DefaultTenant + "/oauth2/v2.0/devicecode", nil},
		{Microsoft, "/contoso.example/oauth2/v2.0/authorize", "/contoso.example/oauth2/v2.0/token",
			"/contoso.example/oauth2/v2.0/devicecode", func(o *Options) { o.Tenant = "contoso.example" }},
		{Google, "/o/oauth2/auth", "/token", "/device/code", nil},
	}
	for _, tt := range tests {
		t.Run(tt.flavour.String(), func(t *testing.T) {
			o := Options{Flavour: tt.flavour, InProcess: true}
			if tt.options != nil {
				tt.options(&o)
			}
			s := NewServer(t, o)
			for _, c := range []struct{ got, want string }{
				{s.AuthURL(), tt.auth}, {s.TokenURL(), tt.token}, {s.DeviceAuthURL(), tt.device},
			} {
				if c.got != s.URL()+c.want {
					t.Errorf("endpoint %q, want %q", c.got, s.URL()+c.want)
				}
			}
			if want := "https://" + ClientID + ":" + ClientSecret + "@oauthtest.invalid/introspect"; s.IntrospectURL() != want {
				t.Errorf("IntrospectURL() = %q, want %q", s.IntrospectURL(), want)
			}
		})
	}
}
