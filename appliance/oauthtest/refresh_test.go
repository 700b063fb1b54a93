package oauthtest

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestRotation(t *testing.T) {
	tests := []struct {
		name     string
		rotation Rotation
		flavour  Flavour
	}{
		{"none", NoRotation, Google},
		{"rotate", Rotate, Microsoft},
		{"revoke on reuse", RotateRevokeOnReuse, Generic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := fixture(t, tt.flavour, func(o *Options) { o.Rotation = tt.rotation })
				first := h.tokens(t, "post").str("refresh_token")
				current := first
				for i := range 5 {
					time.Sleep(time.Minute)
					a := h.token(t, "post", refreshForm(current))
					checkTokens(t, a, scopeFor(tt.flavour), tt.rotation != NoRotation)
					if next := a.str("refresh_token"); next != "" {
						if next == current {
							t.Fatalf("refresh %d: the same refresh token back", i)
						}
						current = next
					}
				}
				h.want(t, "")
				if got := h.Requests(GrantRefreshToken); got != 5 {
					t.Errorf("Requests(refresh_token) = %d, want 5", got)
				}
				if got := h.Issued(); got != 6 {
					t.Errorf("Issued() = %d, want 6", got)
				}
				live := h.LiveRefreshTokens()
				switch tt.rotation {
				case NoRotation:
					if !slices.Equal(live, []string{first}) {
						t.Errorf("%d live refresh tokens, want the first only", len(live))
					}
				case Rotate:
					if len(live) != 6 || live[5] != current {
						t.Errorf("%d live refresh tokens, want all 6, newest last", len(live))
					}
				case RotateRevokeOnReuse:
					if !slices.Equal(live, []string{current}) {
						t.Errorf("%d live refresh tokens, want the newest only", len(live))
					}
				}
				if h.Reuses() != 0 {
					t.Errorf("Reuses() = %d before any reuse", h.Reuses())
				}

				// Use the first one again.
				time.Sleep(time.Minute)
				a := h.token(t, "post", refreshForm(first))
				switch tt.rotation {
				case NoRotation:
					checkTokens(t, a, scopeFor(tt.flavour), false)
					h.want(t, "")
				case Rotate: // Microsoft keeps old refresh tokens valid
					checkTokens(t, a, scopeFor(tt.flavour), true)
					h.want(t, "")
					if h.Reuses() != 1 {
						t.Errorf("Reuses() = %d, want 1", h.Reuses())
					}
				case RotateRevokeOnReuse:
					checkError(t, a, 400, "invalid_grant")
					h.want(t, "rotated out")
					time.Sleep(time.Minute)
					checkError(t, h.token(t, "post", refreshForm(current)), 400, "invalid_grant")
					h.want(t, "") // the newest one is revoked with the grant
					if live := h.LiveRefreshTokens(); len(live) != 0 {
						t.Errorf("%d live refresh tokens after reuse, want none", len(live))
					}
				}
			})
		})
	}
}

func TestRefreshRefused(t *testing.T) {
	tests := []struct {
		name    string
		flavour Flavour
		setup   func(h *harness, rt string) string // returns the token to send
		client  string
		status  int
		error   string
		desc    string
		about   string
	}{
		{name: "expired microsoft", flavour: Microsoft, setup: func(h *harness, rt string) string { h.ExpireRefreshTokens(); return rt },
			status: 400, error: "invalid_grant", desc: "AADSTS700082:"},
		{name: "expired google", flavour: Google, setup: func(h *harness, rt string) string { h.ExpireRefreshTokens(); return rt },
			status: 400, error: "invalid_grant", desc: "Token has been expired or revoked."},
		{name: "revoked microsoft", flavour: Microsoft, setup: func(h *harness, rt string) string { h.RevokeAll(); return rt },
			status: 400, error: "invalid_grant", desc: "AADSTS50173:"},
		{name: "revoked google", flavour: Google, setup: func(h *harness, rt string) string { h.RevokeAll(); return rt },
			status: 400, error: "invalid_grant", desc: "Token has been expired or revoked."},
		{name: "unknown", setup: func(h *harness, rt string) string { return "forged" },
			status: 400, error: "invalid_grant", about: "unknown refresh token"},
		{name: "none", setup: func(h *harness, rt string) string { return "" },
			status: 400, error: "invalid_request", about: "refresh_token"},
		{name: "other client", client: "basic",
			status: 400, error: "invalid_grant", about: "used by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fixture(t, tt.flavour)
			rt := h.tokens(t, "post").str("refresh_token")
			if tt.setup != nil {
				rt = tt.setup(h, rt)
			}
			client := tt.client
			if client == "" {
				client = "post"
			}
			f := refreshForm(rt)
			if rt == "" {
				f.Del("refresh_token")
			}
			a := h.token(t, client, f)
			h.want(t, tt.about)
			checkError(t, a, tt.status, tt.error)
			if !strings.HasPrefix(a.str("error_description"), tt.desc) {
				t.Errorf("description %q, want it to start %q", a.str("error_description"), tt.desc)
			}
		})
	}
}

func TestRevokeAllDeactivatesAccessTokens(t *testing.T) {
	h := fixture(t, Generic)
	at := h.tokens(t, "post").str("access_token")
	minted := h.Mint(mailbox, time.Hour)
	for _, tok := range []string{at, minted} {
		if a := h.introspect(t, tok); a.body["active"] != true {
			t.Fatalf("token inactive before RevokeAll: %s", a.raw)
		}
	}
	h.RevokeAll()
	for _, tok := range []string{at, minted} {
		if a := h.introspect(t, tok); a.body["active"] != false {
			t.Errorf("token active after RevokeAll: %s", a.raw)
		}
	}
	h.want(t, "")
}

func TestRefreshInactivity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := fixture(t, Microsoft, func(o *Options) { o.Rotation = Rotate; o.RefreshTTL = 90 * 24 * time.Hour })
		rt := h.tokens(t, "post").str("refresh_token")
		// Used every 89 days, it lives on.
		for range 3 {
			time.Sleep(89 * 24 * time.Hour)
			a := h.token(t, "post", refreshForm(rt))
			checkTokens(t, a, scopeFor(Microsoft), true)
			rt = a.str("refresh_token")
		}
		time.Sleep(90 * 24 * time.Hour)
		a := h.token(t, "post", refreshForm(rt))
		checkError(t, a, 400, "invalid_grant")
		if !strings.HasPrefix(a.str("error_description"), "AADSTS700082:") {
			t.Errorf("description %q, want AADSTS700082", a.str("error_description"))
		}
		h.want(t, "")
	})
}

func TestRefreshScope(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := fixture(t, Microsoft)
		rt := h.tokens(t, "post").str("refresh_token")
		f := refreshForm(rt)
		f.Set("scope", "https://outlook.office.com/SMTP.Send")
		a := h.token(t, "post", f)
		h.want(t, "")
		if a.status != http.StatusOK || a.str("scope") != "https://outlook.office.com/SMTP.Send" {
			t.Errorf("narrower scope: %d %.300s", a.status, a.raw)
		}
		time.Sleep(time.Minute)
		f.Set("scope", "https://graph.microsoft.com/User.Read")
		checkError(t, h.token(t, "post", f), 400, "invalid_scope")
		h.want(t, "not part of the grant")
	})
}
