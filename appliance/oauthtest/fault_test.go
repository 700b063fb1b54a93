package oauthtest

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestFaults(t *testing.T) {
	tests := []struct {
		name    string
		flavour Flavour
		fault   Fault
		status  int
		error   string
		desc    string
		codes   []any
		page    bool
	}{
		{name: "503 page", fault: Fault{Status: 503}, status: 503, page: true},
		{name: "500 json", fault: Fault{Status: 500, Error: "server_error", Description: "try later"}, status: 500, error: "server_error", desc: "try later"},
		{name: "microsoft expired secret", flavour: Microsoft,
			fault:  Fault{Status: 401, Error: "invalid_client", Description: "AADSTS7000222: The provided client secret keys for app 'x' are expired.", ErrorCodes: []int{7000222}},
			status: 401, error: "invalid_client", desc: "AADSTS7000222: The provided client secret keys", codes: []any{float64(7000222)}},
		{name: "microsoft mfa", flavour: Microsoft,
			fault:  Fault{Error: "invalid_grant", Description: "AADSTS50076: Due to a configuration change made by your administrator, you must use multi-factor authentication.", ErrorCodes: []int{50076}},
			status: 400, error: "invalid_grant", desc: "AADSTS50076:", codes: []any{float64(50076)}},
		{name: "google testing app", flavour: Google, fault: Fault{Error: "invalid_grant", Description: "Token has been expired or revoked."},
			status: 400, error: "invalid_grant", desc: "Token has been expired or revoked."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := fixture(t, tt.flavour, func(o *Options) { o.Rotation = Rotate })
				rt := h.tokens(t, "post").str("refresh_token")
				h.FailNext(2, tt.fault)
				for i := range 2 {
					time.Sleep(time.Minute)
					a := h.token(t, "post", refreshForm(rt))
					if a.status != tt.status {
						t.Fatalf("fault %d: status %d, want %d", i, a.status, tt.status)
					}
					if tt.page {
						if a.body != nil || !strings.Contains(a.raw, "Service Unavailable") {
							t.Errorf("fault %d: %q, want an HTML page", i, a.raw)
						}
						continue
					}
					checkError(t, a, tt.status, tt.error)
					if !strings.HasPrefix(a.str("error_description"), tt.desc) {
						t.Errorf("description %q, want it to start %q", a.str("error_description"), tt.desc)
					}
					if codes, _ := a.body["error_codes"].([]any); len(codes) != len(tt.codes) || (len(codes) > 0 && codes[0] != tt.codes[0]) {
						t.Errorf("error_codes %v, want %v", codes, tt.codes)
					}
				}
				// The refresh token survives injected faults.
				time.Sleep(time.Minute)
				checkTokens(t, h.token(t, "post", refreshForm(rt)), scopeFor(tt.flavour), true)
				h.want(t, "")
				if got := h.Requests(GrantRefreshToken); got != 3 {
					t.Errorf("Requests(refresh_token) = %d, want 3", got)
				}
			})
		})
	}
}

func TestFaultGrantAndOmit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := fixture(t, Generic, func(o *Options) { o.Rotation = RotateRevokeOnReuse })
		h.FailNext(1, Fault{OmitRefreshToken: true, Grant: GrantAuthorizationCode})
		h.FailNext(1, Fault{Status: 502, Grant: GrantRefreshToken})
		h.FailNext(1, Fault{OmitRefreshToken: true})

		// The first code exchange takes the first fault: no refresh token.
		checkTokens(t, h.tokens(t, "post"), "mail", false)
		a := h.tokens(t, "post") // takes the third fault
		checkTokens(t, a, "mail", false)
		a = h.tokens(t, "post")
		checkTokens(t, a, "mail", true)
		rt := a.str("refresh_token")

		if a := h.token(t, "post", refreshForm(rt)); a.status != http.StatusBadGateway {
			t.Errorf("refresh with a 502 fault: %d", a.status)
		}
		time.Sleep(time.Minute)
		h.FailNext(1, Fault{OmitRefreshToken: true})
		checkTokens(t, h.token(t, "post", refreshForm(rt)), "mail", false)
		// Not rotated: the refresh token is still the one to use.
		time.Sleep(time.Minute)
		a = h.token(t, "post", refreshForm(rt))
		checkTokens(t, a, "mail", true)
		h.want(t, "")
		if live := h.LiveRefreshTokens(); len(live) != 1 || live[0] != a.str("refresh_token") {
			t.Errorf("live refresh tokens %d, want the newest only", len(live))
		}
	})
}

func TestFaultDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := fixture(t, Generic)
		rt := h.tokens(t, "post").str("refresh_token")

		// A slow answer arrives late.
		h.FailNext(1, Fault{Delay: 40 * time.Second})
		start := time.Now()
		checkTokens(t, h.token(t, "post", refreshForm(rt)), "mail", false)
		if took := time.Since(start); took != 40*time.Second {
			t.Errorf("slow answer after %v, want 40s", took)
		}

		// A client that gives up first gets its context's error.
		h.FailNext(1, Fault{Delay: time.Hour})
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		r, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.TokenURL(), strings.NewReader(url.Values{
			"grant_type": {GrantRefreshToken}, "refresh_token": {rt}, "client_id": {"post"}, "client_secret": {postSecret}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if _, err := h.HTTPClient().Do(r); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("request given up: %v, want the deadline", err)
		}
		h.want(t, "")
	})
}
