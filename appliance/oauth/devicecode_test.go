package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"

	"mailagent/appliance/config"
)

// memTransport hands requests to a handler in memory, so that a
// synctest bubble holds the whole exchange and its fake clock decides the
// poll times.
type memTransport struct{ h http.Handler }

func (m memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// memClient returns a client for mode talking to an in-memory fake
// server at https://as.example.test.
func memClient(t *testing.T, mode string, answer func(n int, r seen) reply, edit func(o *config.OAuth2)) (*Client, *fakeAS) {
	t.Helper()
	f := &fakeAS{t: t, answer: answer, URL: "https://as.example.test"}
	cfg := testConfig(t, mode, f.URL, edit)
	c, err := NewClient(ClientOptions{Config: cfg, HTTP: &http.Client{Transport: memTransport{f}}, Now: testNow})
	if err != nil {
		t.Fatal(err)
	}
	return c, f
}

const deviceAuthAnswer = `{"device_code":"` + canaryDevice + `","user_code":"ABCD-EFGH","verification_uri":"https://microsoft.com/devicelogin",` +
	`"expires_in":900,"interval":5,"message":"To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code ABCD-EFGH to authenticate."}`

// pollScript answers the device authorization, then the polls in order.
func pollScript(polls ...reply) func(int, seen) reply {
	return func(n int, r seen) reply {
		if n == 0 {
			return reply{Body: deviceAuthAnswer}
		}
		if n-1 < len(polls) {
			return polls[n-1]
		}
		return polls[len(polls)-1]
	}
}

func oauthErr(status int, code string) reply {
	return reply{Status: status, Body: `{"error":"` + code + `"}`}
}

func TestDeviceCodeFlow(t *testing.T) {
	pending := oauthErr(400, "authorization_pending")
	tests := []struct {
		name     string
		polls    []reply
		at       []time.Duration // when each poll arrives, after DeviceAuth
		code     string          // error code of the result, "" for a token
		reauth   bool
		noRT     bool
		netRetry bool
	}{
		{"pending, slow_down, token", []reply{pending, oauthErr(400, "slow_down"), pending, {Body: tokenJSON(canaryRefresh)}},
			[]time.Duration{5, 10, 20, 30}, "", false, false, false},
		{"declined", []reply{pending, oauthErr(400, "authorization_declined")}, []time.Duration{5, 10}, "authorization_declined", true, false, false},
		{"access denied", []reply{oauthErr(400, "access_denied")}, []time.Duration{5}, "access_denied", true, false, false},
		{"expired_token answer", []reply{oauthErr(400, "expired_token")}, []time.Duration{5}, "expired_token", true, false, false},
		{"5xx resumes slower", []reply{pending, {Status: 503, Body: "busy"}, {Body: tokenJSON(canaryRefresh)}},
			[]time.Duration{5, 10, 20}, "", false, false, false},
		{"no refresh token", []reply{{Body: tokenJSON("")}}, []time.Duration{5}, "", false, true, false},
		{"invalid_client stops", []reply{oauthErr(401, "invalid_client")}, []time.Duration{5}, "invalid_client", false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, as := memClient(t, "exchange", pollScript(tt.polls...), nil)
				if !c.SupportsDeviceCode() {
					t.Fatal("exchange does not offer the device code")
				}
				start := time.Now()
				da, err := c.DeviceAuth(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if da.UserCode != "ABCD-EFGH" || da.VerificationURI != "https://microsoft.com/devicelogin" {
					t.Errorf("DeviceAuth = %+v", da)
				}
				tok, err := c.DevicePoll(context.Background(), da)
				switch {
				case tt.noRT:
					if !errors.Is(err, ErrNoRefreshToken) || tok != nil {
						t.Errorf("DevicePoll = %v, %v; want ErrNoRefreshToken", tok, err)
					}
				case tt.code == "":
					if err != nil || tok.RefreshToken != canaryRefresh {
						t.Fatalf("DevicePoll = %v, %v", tok, err)
					}
				default:
					pe := asProviderError(t, err)
					if pe.Code != tt.code || pe.Reauth != tt.reauth || pe.Op != "device poll" || pe.Hint() == "" {
						t.Errorf("DevicePoll = %+v, want code %s, reauth %v, a hint", pe, tt.code, tt.reauth)
					}
				}
				reqs := as.requests()
				if len(reqs) != 1+len(tt.at) {
					t.Fatalf("%d requests, want %d", len(reqs), 1+len(tt.at))
				}
				wantAuth := url.Values{"client_id": {"client-1"}, "scope": {"https://outlook.office.com/SMTP.Send offline_access"}}
				if r := reqs[0]; r.Path != "/contoso.example/oauth2/v2.0/devicecode" || !reflect.DeepEqual(r.Form, wantAuth) {
					t.Errorf("device authorization sent %s %v, want %v", r.Path, r.Form, wantAuth)
				}
				// A public client's poll at Microsoft: no client_secret.
				wantPoll := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {canaryDevice},
					"client_id": {"client-1"}, "scope": {"https://outlook.office.com/SMTP.Send offline_access"}}
				for i, r := range reqs[1:] {
					if at := r.At.Sub(start); at != tt.at[i]*time.Second {
						t.Errorf("poll %d at %v, want %v", i+1, at, tt.at[i]*time.Second)
					}
					if r.Path != "/contoso.example/oauth2/v2.0/token" || !reflect.DeepEqual(r.Form, wantPoll) {
						t.Errorf("poll %d sent %s %v, want %v", i+1, r.Path, r.Form, wantPoll)
					}
				}
			})
		})
	}
}

func TestDeviceCodeExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		answer := func(n int, r seen) reply {
			if n == 0 {
				return reply{Body: `{"device_code":"dc-1","user_code":"U","verification_uri":"https://v.example.test","expires_in":32}`}
			}
			return oauthErr(400, "authorization_pending")
		}
		c, as := memClient(t, "exchange", answer, nil)
		start := time.Now()
		da, err := c.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.DevicePoll(context.Background(), da)
		pe := asProviderError(t, err)
		if pe.Code != "expired_token" || !pe.Reauth || !strings.Contains(pe.Hint(), "start the authorisation again") {
			t.Errorf("DevicePoll = %+v, want expired_token with a hint", pe)
		}
		// Default interval 5 s within 32 s: polls at 5, 10, 15, 20, 25, 30.
		if n := len(as.requests()) - 1; n != 6 {
			t.Errorf("%d polls, want 6", n)
		}
		if d := time.Since(start); d != 32*time.Second {
			t.Errorf("gave up after %v, want 32s", d)
		}
	})
}

func TestDevicePollNetworkTrouble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeAS{t: t, URL: "https://as.example.test", answer: okToken(canaryRefresh)}
		var polls []time.Duration
		start := time.Now()
		down := 2
		rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.HasSuffix(r.URL.Path, "/token") {
				polls = append(polls, time.Since(start))
				if down > 0 {
					down--
					return nil, errors.New("connection refused")
				}
			}
			return memTransport{f}.RoundTrip(r)
		})
		c, err := NewClient(ClientOptions{Config: testConfig(t, "exchange", f.URL, nil), HTTP: &http.Client{Transport: rt}, Now: testNow})
		if err != nil {
			t.Fatal(err)
		}
		da := &oauth2.DeviceAuthResponse{DeviceCode: "dc-1", UserCode: "U", VerificationURI: "https://v.example.test", Interval: 5, Expiry: start.Add(15 * time.Minute)}
		tok, err := c.DevicePoll(context.Background(), da)
		if err != nil || tok.RefreshToken != canaryRefresh {
			t.Fatalf("DevicePoll = %v, %v", tok, err)
		}
		// 5 s, then the interval doubles after each failure: 10 s, 20 s.
		want := []time.Duration{5 * time.Second, 15 * time.Second, 35 * time.Second}
		if !reflect.DeepEqual(polls, want) {
			t.Errorf("polls at %v, want %v", polls, want)
		}
	})
}

func TestDeviceCodeWithClientAssertion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pending := oauthErr(400, "authorization_pending")
		c, as := memClient(t, "private-key-jwt", pollScript(pending, pending, reply{Body: tokenJSON(canaryRefresh)}), func(o *config.OAuth2) {
			o.DeviceAuthURL = "https://as.example.test/device"
		})
		da, err := c.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.DevicePoll(context.Background(), da); err != nil {
			t.Fatal(err)
		}
		reqs := as.requests()
		if reqs[0].Form.Has("client_assertion") {
			t.Error("the device authorization request (not the token endpoint) carries an assertion")
		}
		cert, _ := testCert(t)
		jtis := map[string]bool{}
		for _, r := range reqs[1:] {
			jtis[checkAssertion(t, r.Form, assertionCheck{pub: cert.PublicKey, alg: "RS256", kid: "kid-1", aud: "https://as.example.test/token"})] = true
		}
		if len(reqs) != 4 || len(jtis) != 3 {
			t.Errorf("%d requests with %d distinct jti, want 3 polls with 3", len(reqs), len(jtis))
		}
	})
}

func TestDeviceCodeUnsupported(t *testing.T) {
	tests := []struct {
		mode string
		edit func(o *config.OAuth2)
		hint string
	}{
		{"gmail", nil, "Google refuses Gmail scopes"},
		{"client-secret-post", nil, "oauth2.device_auth_url"},
		{"microsoft-app", nil, "needs no sign-in"},
		{"google-service-account", nil, "needs no sign-in"},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			as := newFakeAS(t, func(int, seen) reply { t.Error("request sent"); return reply{} })
			c := newTestClient(t, testConfig(t, tt.mode, as.URL, tt.edit))
			if c.SupportsDeviceCode() {
				t.Error("SupportsDeviceCode() = true")
			}
			_, err := c.DeviceAuth(context.Background())
			if pe := asProviderError(t, err); !errors.Is(err, ErrDeviceCodeUnsupported) || !strings.Contains(pe.Hint(), tt.hint) {
				t.Errorf("DeviceAuth = %v (hint %q), want ErrDeviceCodeUnsupported with %q", err, pe.Hint(), tt.hint)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
