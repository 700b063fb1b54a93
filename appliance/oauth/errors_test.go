package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"

	"mailagent/appliance/config"
)

// obtainOrRefresh gets a token the way the mode's lifecycle would.
func obtainOrRefresh(c *Client) error {
	var err error
	if c.mode.Interactive {
		_, err = c.Refresh(context.Background(), canaryRefresh)
	} else {
		_, err = c.Obtain(context.Background())
	}
	return err
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		mode      string
		status    int
		body      string
		ctype     string
		code      string
		codes     []int
		reauth    bool
		transient bool
		hint      []string // substrings of the hint
	}{
		{"ms inactivity", "exchange", 400, `{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity.","error_codes":[700082]}`, "",
			"invalid_grant", []int{700082}, true, false, []string{"90 days", "authorise again", "keep-alive"}},
		{"ms secret expired", "exchange", 401, `{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys for app 'x' are expired.","error_codes":[7000222]}`, "",
			"invalid_client", []int{7000222}, false, false, []string{"new secret", "oauth2.client_secret", "oauth2.secret_expires"}},
		{"ms secret expired, codes only in the description", "microsoft-app", 401, `{"error":"invalid_client","error_description":"AADSTS7000222: expired."}`, "",
			"invalid_client", nil, false, false, []string{"oauth2.secret_expires"}},
		{"ms mfa blocks ropc", "microsoft365", 400, `{"error":"invalid_grant","error_description":"AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication.","error_codes":[50076]}`, "",
			"invalid_grant", []int{50076}, true, false, []string{"multi-factor", "exchange", "microsoft-app"}},
		{"ms mfa registration", "microsoft365", 400, `{"error":"interaction_required","error_description":"AADSTS50079: x","error_codes":[50079]}`, "",
			"interaction_required", []int{50079}, true, false, []string{"multi-factor"}},
		{"ms public client flows", "microsoft365", 401, `{"error":"invalid_client","error_description":"AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.","error_codes":[7000218]}`, "",
			"invalid_client", []int{7000218}, false, false, []string{"Allow public client flows", "Authentication → Advanced settings"}},
		{"ms public client refused a secret", "exchange", 401, `{"error":"invalid_client","error_description":"AADSTS700025: Client is public so neither 'client_assertion' nor 'client_secret' should be presented.","error_codes":[700025]}`, "",
			"invalid_client", []int{700025}, true, false, []string{"device code", "authorise again"}},
		{"ms wrong password", "microsoft365", 400, `{"error":"invalid_grant","error_description":"AADSTS50126: Error validating credentials due to invalid username or password.","error_codes":[50126]}`, "",
			"invalid_grant", []int{50126}, true, false, []string{"wrong user name or password"}},
		{"ms common refused", "microsoft365", 400, `{"error":"invalid_request","error_description":"AADSTS9001023: The grant type is not supported over the /common or /consumers endpoints."}`, "",
			"invalid_request", nil, false, false, []string{"tenant ID"}},
		{"ms interaction required", "exchange", 400, `{"error":"interaction_required","error_description":"AADSTS50173: revoked","error_codes":[50173]}`, "",
			"interaction_required", []int{50173}, true, false, []string{"authorise again"}},
		{"google testing app", "gmail", 400, `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`, "",
			"invalid_grant", nil, true, false, []string{`"Testing"`, "7 days", "publish"}},
		{"google unknown client", "gmail", 401, `{"error":"invalid_client","error_description":"The OAuth client was not found."}`, "",
			"invalid_client", nil, false, false, []string{"import the client JSON"}},
		{"google gmail.send", "gmail", 400, `{"error":"invalid_scope"}`, "",
			"invalid_scope", nil, false, false, []string{"https://mail.google.com/"}},
		{"service account signature", "google-service-account", 400, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`, "",
			"invalid_grant", nil, true, false, []string{"private_key_id", "clock"}},
		{"generic invalid_grant", "client-secret-post", 400, `{"error":"invalid_grant"}`, "",
			"invalid_grant", nil, true, false, []string{"authorise again"}},
		{"assertion refused", "private-key-jwt", 401, `{"error":"invalid_client"}`, "",
			"invalid_client", nil, false, false, []string{"assertion", "oauth2.private_key"}},
		{"form encoded error", "client-secret-post", 400, "error=unauthorized_client&error_description=nope", "application/x-www-form-urlencoded",
			"unauthorized_client", nil, false, false, []string{"registration"}},
		{"error with 200", "client-secret-post", 200, `{"error":"invalid_grant"}`, "",
			"invalid_grant", nil, true, false, nil},
		{"503 html", "exchange", 503, "<html>busy</html>", "text/html", "", nil, false, true, []string{"retries later"}},
		{"500 server_error", "gmail", 500, `{"error":"server_error"}`, "", "server_error", nil, false, true, nil},
		{"temporarily unavailable", "gmail", 400, `{"error":"temporarily_unavailable"}`, "", "temporarily_unavailable", nil, false, true, nil},
		{"429", "exchange", 429, `{"error":"too_many_requests"}`, "", "too_many_requests", nil, false, true, []string{"rate"}},
		{"404", "gmail", 404, "not found", "text/html", "", nil, false, false, []string{"oauth2.token_url"}},
		{"captive portal", "gmail", 200, "<html>log in to the hotel wifi</html>", "text/html", "", nil, false, true, []string{"did not answer with a token"}},
		{"no access token", "exchange", 200, `{"token_type":"Bearer"}`, "", "", nil, false, true, []string{"did not answer with a token"}},
		{"service account 503", "google-service-account", 503, "busy", "text/plain", "", nil, false, true, nil},
		{"google jwt time window", "google-service-account", 400, `{"error":"invalid_grant","error_description":"Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."}`, "",
			"invalid_grant", nil, false, true, []string{"clock", "NTP"}},
		{"ms assertion time (700024)", "microsoft-app", 401, `{"error":"invalid_client","error_description":"AADSTS700024: Client assertion is not within its valid time range.","error_codes":[700024]}`, "",
			"invalid_client", []int{700024}, false, true, []string{"clock", "NTP"}},
		{"ms resource not in tenant (500011)", "microsoft-app", 400, `{"error":"invalid_resource","error_description":"AADSTS500011: The resource principal named https://outlook.office365.us was not found in the tenant named contoso.","error_codes":[500011]}`, "",
			"invalid_resource", []int{500011}, false, false, []string{"not in this tenant", "oauth2.scopes"}},
		{"ms client credentials scope (1002012)", "microsoft-app", 400, `{"error":"invalid_scope","error_description":"AADSTS1002012: The provided value for scope https://outlook.office.com/SMTP.Send is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).","error_codes":[1002012]}`, "",
			"invalid_scope", []int{1002012}, false, false, []string{"/.default", "unset oauth2.scopes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ct := tt.ctype
				if ct == "" {
					ct = "application/json"
				}
				w.Header().Set("Content-Type", ct)
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			}))
			defer srv.Close()
			c := newTestClient(t, testConfig(t, tt.mode, srv.URL, nil))
			pe := asProviderError(t, obtainOrRefresh(c))
			if pe.Code != tt.code || !slices.Equal(pe.Codes, tt.codes) || pe.Reauth != tt.reauth || pe.Transient != tt.transient {
				t.Errorf("error %+v: want code %q codes %v reauth %v transient %v", pe, tt.code, tt.codes, tt.reauth, tt.transient)
			}
			if pe.Reauth && pe.Transient {
				t.Error("both Reauth and Transient")
			}
			if tt.status != 200 && pe.Status != tt.status {
				t.Errorf("Status = %d, want %d", pe.Status, tt.status)
			}
			for _, h := range tt.hint {
				if !strings.Contains(pe.Hint(), h) {
					t.Errorf("hint %q lacks %q", pe.Hint(), h)
				}
			}
			if re, ok := errors.AsType[*oauth2.RetrieveError](pe); ok && re.Response != nil && re.Response.Request != nil {
				t.Error("the unwrapped RetrieveError still leads to the request")
			}
		})
	}
}

func TestProviderErrorMessage(t *testing.T) {
	tests := []struct {
		e    *ProviderError
		want string
	}{
		{&ProviderError{Op: "refresh", Code: "invalid_grant", Description: "AADSTS70008: expired.", Status: 400},
			"refresh: invalid_grant: AADSTS70008: expired. (HTTP 400)"},
		{&ProviderError{Op: "refresh", Status: 503}, "refresh: the token endpoint answered HTTP 503 Service Unavailable"},
		{&ProviderError{Op: "jwt bearer", err: ErrClockUnset}, "jwt bearer: system clock not set"},
		{&ProviderError{Op: "exchange"}, "exchange: failed"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestOneLine(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"AADSTS70008: expired.\r\nTrace ID: 1\r\nCorrelation ID: 2", 400, "AADSTS70008: expired. Trace ID: 1 Correlation ID: 2"},
		{"  a\x1b[31mb\x00c  ", 400, "a [31mb c"},
		{"abcdef", 3, "abc…"},
		{"\xff\xfe", 10, ""},
	}
	for _, tt := range tests {
		if got := oneLine(tt.in, tt.max); got != tt.want {
			t.Errorf("oneLine(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestNetworkErrorsAreTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	for _, mode := range []string{"exchange", "microsoft365", "microsoft-app", "gmail", "google-service-account", "client-secret-post", "private-key-jwt"} {
		t.Run(mode, func(t *testing.T) {
			c := newTestClient(t, testConfig(t, mode, base, nil))
			pe := asProviderError(t, obtainOrRefresh(c))
			if !pe.Transient || pe.Reauth || pe.Status != 0 || pe.Code != "" {
				t.Errorf("error %+v, want transient without status", pe)
			}
			if !strings.Contains(pe.Error(), "127.0.0.1") {
				t.Errorf("Error() = %q, want the network error", pe.Error())
			}
		})
	}
}

// TestTimeoutsAreTransient: a request that outlives its context is
// transient, also through x/oauth2/jwt, which posts without a context. The
// transport, in memory, never answers and gives up with the request's
// context, as net/http's does; the bubble's clock runs the 50 ms out.
func TestTimeoutsAreTransient(t *testing.T) {
	hang := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		<-r.Context().Done()
		return nil, r.Context().Err()
	})
	for _, mode := range []string{"gmail", "google-service-account", "microsoft-app"} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, err := NewClient(ClientOptions{Config: testConfig(t, mode, "https://as.example.test", nil), HTTP: &http.Client{Transport: hang}, Now: testNow})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				if mode == "gmail" {
					_, err = c.Refresh(ctx, canaryRefresh)
				} else {
					_, err = c.Obtain(ctx)
				}
				pe := asProviderError(t, err)
				if !pe.Transient || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("error %+v (%v), want transient wrapping context.DeadlineExceeded", pe, err)
				}
			})
		})
	}
}

// TestNoSecretInErrors: a server that echoes the whole request in its
// error answers; no secret, token, code, verifier or assertion may come
// back in any error string or hint, in any mode and operation.
func TestNoSecretInErrors(t *testing.T) {
	keyPEM := readTestdata(t, "test-key.pem")
	keyLine := strings.Split(keyPEM, "\n")[5]
	for _, status := range []int{400, 500} {
		for _, mode := range []string{"exchange", "microsoft365", "microsoft-app", "gmail", "google-service-account", "client-secret-post", "private-key-jwt"} {
			// In a bubble with the server in memory, so that the device
			// poll's interval and deadline pass on the bubble's clock.
			t.Run(fmt.Sprintf("%s %d", mode, status), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					c, as := memClient(t, mode, func(n int, r seen) reply {
						body := r.Form.Encode()
						if status == 400 {
							return reply{Status: 400, Body: fmt.Sprintf(`{"error":"invalid_request","error_description":%q}`, "echo: "+body)}
						}
						return reply{Status: status, Body: "echo: " + body, Header: map[string]string{"Content-Type": "text/plain"}}
					}, func(o *config.OAuth2) {
						o.DeviceAuthURL = ""
						if mode == "microsoft365" {
							o.ClientSecret = config.NewSecret(canarySecret)
						}
						if mode == "private-key-jwt" {
							o.DeviceAuthURL = "https://as.example.test/device"
						}
					})
					var errs []error
					var sent []string
					if c.mode.Interactive {
						_, p, err := c.Start()
						if err != nil {
							t.Fatal(err)
						}
						_, err = c.Finish(context.Background(), p, "?code="+canaryCode+"&state="+p.State)
						errs = append(errs, err)
						sent = append(sent, p.Verifier)
						_, err = c.Refresh(context.Background(), canaryRefresh)
						errs = append(errs, err)
						if c.SupportsDeviceCode() {
							da := &oauth2.DeviceAuthResponse{DeviceCode: canaryDevice, Interval: 1, Expiry: time.Now().Add(time.Minute)}
							ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
							_, err = c.DevicePoll(ctx, da)
							cancel()
							errs = append(errs, err)
						}
					} else {
						_, err := c.Obtain(context.Background())
						errs = append(errs, err)
					}
					secrets := []string{canarySecret, canaryPassword, canaryRefresh, canaryCode, canaryDevice, canaryAccess, keyLine}
					secrets = append(secrets, sent...)
					for _, r := range as.requests() {
						for _, k := range []string{"assertion", "client_assertion", "code_verifier"} {
							secrets = append(secrets, r.Form[k]...)
						}
					}
					for _, err := range errs {
						if err == nil {
							t.Fatal("no error from an echoing server")
						}
						pe := asProviderError(t, err)
						texts := []string{err.Error(), pe.Hint(), pe.Description, fmt.Sprintf("%v %+v %#v", err, err, err)}
						for e := error(pe); e != nil; e = errors.Unwrap(e) {
							texts = append(texts, e.Error())
						}
						if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
							texts = append(texts, string(re.Body))
						}
						for _, text := range texts {
							for _, s := range secrets {
								if strings.Contains(text, s) {
									t.Errorf("error text %q shows a secret %.12s…", text, s)
								}
							}
						}
						if !strings.Contains(err.Error(), "echo") && status == 400 && !errors.Is(err, context.DeadlineExceeded) {
							t.Errorf("Error() = %q lost the provider's description", err)
						}
					}
				})
			})
		}
	}
}

func FuzzParseErrorBody(f *testing.F) {
	for _, s := range []string{
		`{"error":"invalid_grant","error_description":"AADSTS70008: x","error_codes":[70008]}`,
		`{"error":"invalid_grant","error_codes":"x"}`, "error=invalid_client&error_description=y", "<html>", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		eb := parseErrorBody([]byte(s))
		for _, text := range []string{oneLine(eb.Error, 100), oneLine(eb.ErrorDescription, 400)} {
			if strings.ContainsFunc(text, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Errorf("oneLine left a control character in %q", text)
			}
			if n := len([]rune(text)); n > 401 {
				t.Errorf("oneLine left %d runes", n)
			}
		}
	})
}
