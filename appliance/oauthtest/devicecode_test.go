package oauthtest

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// deviceStart asks for a device code as client.
func (h *harness) deviceStart(t testing.TB, client, scope string) answer {
	t.Helper()
	return h.post(t, h.DeviceAuthURL(), url.Values{"client_id": {client}, "scope": {scope}})
}

func devicePollForm(code string) url.Values {
	return url.Values{"grant_type": {GrantDeviceCode}, "device_code": {code}}
}

func TestDeviceFlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := fixture(t, Microsoft)
		d := h.deviceStart(t, "public", scopeFor(Microsoft))
		h.want(t, "")
		if d.status != http.StatusOK {
			t.Fatalf("device authorization: %d %s", d.status, d.raw)
		}
		code, user := d.str("device_code"), d.str("user_code")
		if code == "" || len(user) != 9 || d.str("verification_uri") != h.URL()+"/devicelogin" ||
			d.body["interval"] != float64(5) || d.body["expires_in"] != float64(900) ||
			!strings.Contains(d.str("message"), user) || d.body["verification_uri_complete"] != nil {
			t.Fatalf("device authorization answer %s", d.raw)
		}
		if got := h.PendingUserCodes(); !slices.Equal(got, []string{user}) {
			t.Errorf("PendingUserCodes() = %q, want %q", got, user)
		}

		// Too soon: slow_down, and the interval grows by 5 s.
		time.Sleep(4 * time.Second)
		checkError(t, h.token(t, "public", devicePollForm(code)), 400, "slow_down")
		h.want(t, "interval is 5s")
		time.Sleep(5 * time.Second)
		checkError(t, h.token(t, "public", devicePollForm(code)), 400, "slow_down")
		h.want(t, "interval is 10s")

		// At the interval: pending until the user approves.
		time.Sleep(15 * time.Second)
		a := h.token(t, "public", devicePollForm(code))
		checkError(t, a, 400, "authorization_pending")
		if !strings.HasPrefix(a.str("error_description"), "AADSTS70016:") {
			t.Errorf("pending description %q", a.str("error_description"))
		}
		h.want(t, "")
		h.ApproveDevice(strings.ToLower(user[:4]) + "-" + user[4:]) // as a user may type it
		if got := h.PendingUserCodes(); len(got) != 0 {
			t.Errorf("PendingUserCodes() = %q after approval", got)
		}
		time.Sleep(15 * time.Second)
		a = h.token(t, "public", devicePollForm(code))
		h.want(t, "")
		checkTokens(t, a, scopeFor(Microsoft), true)
		if got := h.introspect(t, a.str("access_token")).str("username"); got != mailbox {
			t.Errorf("token for %q, want %q", got, mailbox)
		}

		// The code is spent.
		time.Sleep(15 * time.Second)
		checkError(t, h.token(t, "public", devicePollForm(code)), 400, "invalid_grant")
		h.want(t, "after its final answer")
		if h.Requests(GrantDeviceCode) != 5 || h.Requests("device_authorization") != 1 {
			t.Errorf("Requests: %d polls, %d device authorizations; want 5 and 1",
				h.Requests(GrantDeviceCode), h.Requests("device_authorization"))
		}
	})
}

func TestDeviceFlowEnds(t *testing.T) {
	tests := []struct {
		name    string
		flavour Flavour
		answer  func(h *harness, user string)
		wait    time.Duration
		status  int
		error   string
	}{
		{name: "declined microsoft", flavour: Microsoft, answer: func(h *harness, u string) { h.DenyDevice(u) },
			wait: 5 * time.Second, status: 400, error: "authorization_declined"},
		{name: "declined generic", answer: func(h *harness, u string) { h.DenyDevice(u) },
			wait: 5 * time.Second, status: 400, error: "access_denied"},
		{name: "expired microsoft", flavour: Microsoft, wait: 15 * time.Minute, status: 400, error: "expired_token"},
		{name: "expired generic", wait: 15 * time.Minute, status: 400, error: "expired_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := fixture(t, tt.flavour)
				d := h.deviceStart(t, "public", scopeFor(tt.flavour))
				if tt.answer != nil {
					tt.answer(h, d.str("user_code"))
				}
				time.Sleep(tt.wait)
				checkError(t, h.token(t, "public", devicePollForm(d.str("device_code"))), tt.status, tt.error)
				h.want(t, "") // the user's doing
				if got := h.PendingUserCodes(); len(got) != 0 {
					t.Errorf("PendingUserCodes() = %q", got)
				}
				time.Sleep(tt.wait)
				checkError(t, h.token(t, "public", devicePollForm(d.str("device_code"))), tt.status, tt.error)
				h.want(t, "after its final answer")
			})
		})
	}
}

func TestDeviceAuthorizationChecks(t *testing.T) {
	tests := []struct {
		name    string
		flavour Flavour
		form    url.Values
		status  int
		error   string
		about   string
	}{
		{name: "generic", form: url.Values{"client_id": {"public"}, "scope": {"mail"}}},
		{name: "confidential client sends its id only", form: url.Values{"client_id": {"post"}, "scope": {"mail"}}},
		{name: "confidential client may authenticate", form: url.Values{"client_id": {"post"}, "client_secret": {postSecret}, "scope": {"mail"}}},
		{name: "wrong style", form: url.Values{"client_id": {"basic"}, "client_secret": {basicSecret}, "scope": {"mail"}},
			status: 401, error: "invalid_client", about: "registered for client_secret_basic"},
		{name: "google other scope", flavour: Google, form: url.Values{"client_id": {"public"}, "scope": {"openid email"}}},
		{name: "google gmail scope", flavour: Google, form: url.Values{"client_id": {"public"}, "scope": {"https://mail.google.com/"}},
			status: 400, error: "invalid_scope", about: "Invalid device flow scope"},
		{name: "google gmail.send", flavour: Google, form: url.Values{"client_id": {"public"}, "scope": {"https://www.googleapis.com/auth/gmail.send"}},
			status: 400, error: "invalid_scope", about: "Invalid device flow scope"},
		{name: "microsoft without offline_access", flavour: Microsoft,
			form: url.Values{"client_id": {"public"}, "scope": {"https://outlook.office.com/SMTP.Send"}}, about: "offline_access"},
		{name: "no scope", form: url.Values{"client_id": {"public"}}, status: 400, error: "invalid_request", about: "scope"},
		{name: "no client", form: url.Values{"scope": {"mail"}}, status: 400, error: "invalid_request", about: "client_id"},
		{name: "unknown client", form: url.Values{"client_id": {"nobody"}, "scope": {"mail"}}, status: 401, error: "invalid_client", about: "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fixture(t, tt.flavour)
			a := h.post(t, h.DeviceAuthURL(), tt.form)
			h.want(t, tt.about)
			if tt.status != 0 {
				checkError(t, a, tt.status, tt.error)
				return
			}
			if a.status != http.StatusOK || a.str("device_code") == "" || a.str("user_code") == "" {
				t.Fatalf("answer %d %s", a.status, a.raw)
			}
			uri := "verification_uri"
			if tt.flavour == Google {
				uri = "verification_url" // Google's name
			}
			if !strings.HasPrefix(a.str(uri), h.URL()+"/") {
				t.Errorf("no %s in %s", uri, a.raw)
			}
		})
	}
}

func TestDeviceHelpers(t *testing.T) {
	h := fixture(t, Generic)
	rec := &recorder{TB: t}
	h.t = rec
	h.ApproveDevice("BCDF-GHJK")
	h.DenyDevice("")
	if n := rec.take(); n != 2 {
		t.Errorf("%d errors for unknown user codes, want 2", n)
	}
	d := h.deviceStart(t, "public", "mail")
	h.ApproveDevice(d.str("user_code"))
	h.DenyDevice(d.str("user_code")) // answered already
	if n := rec.take(); n != 1 {
		t.Errorf("%d errors for answering twice, want 1", n)
	}
}

// devicePublicTokens runs a device flow for the confidential client
// "post", polling with client_id alone as a public client does, and
// returns the poll's answer.
func (h *harness) devicePublicTokens(t *testing.T) answer {
	t.Helper()
	d := h.deviceStart(t, "post", scopeFor(Microsoft))
	if d.status != http.StatusOK {
		t.Fatalf("device authorization: %d %s", d.status, d.raw)
	}
	h.ApproveDevice(d.str("user_code"))
	time.Sleep(5 * time.Second)
	form := devicePollForm(d.str("device_code"))
	form.Set("client_id", "post")
	return h.post(t, h.TokenURL(), form)
}

// TestDeviceCodeGrantIsPublic: Entra treats the device code grant as a
// public client's, even for an app with a secret: a refresh of it that
// presents the secret is refused (AADSTS700025; canonical/authd#1881,
// email-oauth2-proxy#363), one with client_id alone works.
func TestDeviceCodeGrantIsPublic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := fixture(t, Microsoft)
		a := h.devicePublicTokens(t)
		h.want(t, "")
		checkTokens(t, a, scopeFor(Microsoft), true)
		rt := a.str("refresh_token")

		r := h.token(t, "post", refreshForm(rt))
		checkError(t, r, http.StatusUnauthorized, "invalid_client")
		if !strings.HasPrefix(r.str("error_description"), "AADSTS700025: Client is public so neither 'client_assertion' nor 'client_secret' should be presented.") {
			t.Errorf("description %q, want AADSTS700025", r.str("error_description"))
		}
		h.want(t, "refresh of a device code grant")

		time.Sleep(time.Minute) // not the same failed request again at once
		form := refreshForm(rt)
		form.Set("client_id", "post")
		checkTokens(t, h.post(t, h.TokenURL(), form), scopeFor(Microsoft), false)
		h.want(t, "")

		// A grant by authorization code stays the confidential client's.
		code, verifier := h.code(t, "post")
		ac := h.token(t, "post", exchangeForm(code, verifier))
		checkTokens(t, h.token(t, "post", refreshForm(ac.str("refresh_token"))), scopeFor(Microsoft), false)
		h.want(t, "")
	})
}

// TestDeviceCodeWithoutPublicClientFlows: an app with "Allow public
// client flows" = No refuses a public device code poll with
// AADSTS7000218.
func TestDeviceCodeWithoutPublicClientFlows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := fixture(t, Microsoft, func(o *Options) { o.NoPublicClientFlows = true })
		a := h.devicePublicTokens(t)
		checkError(t, a, http.StatusUnauthorized, "invalid_client")
		if !strings.HasPrefix(a.str("error_description"), "AADSTS7000218:") {
			t.Errorf("description %q, want AADSTS7000218", a.str("error_description"))
		}
		h.want(t, "")
	})
}
