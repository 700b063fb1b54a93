package config

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"mailagent/board"
)

func TestChangeApply(t *testing.T) {
	passwordAuth := Config{
		Mail: Mail{From: "alarm@example.test", To: []string{"ops@example.test"}},
		SMTP: SMTP{Host: "smtp.example.test", User: "alarm@example.test", Password: NewSecret("pw")},
	}
	exchange := Config{
		Mail:   Mail{From: "alarm@example.test", To: []string{"ops@example.test"}},
		OAuth2: OAuth2{Mode: "exchange", Tenant: "contoso.example", ClientID: "app", ClientSecret: NewSecret("s")},
	}
	ropc := Config{
		Mail: Mail{From: "alarm@example.test", To: []string{"ops@example.test"}},
		OAuth2: OAuth2{Mode: "microsoft365", Tenant: "contoso.example", ClientID: "app",
			Username: "alarm@example.test", Password: NewSecret("pw")},
	}
	certApp := Config{
		Mail: Mail{From: "alarm@example.test", To: []string{"ops@example.test"}},
		OAuth2: OAuth2{Mode: "microsoft-app", Tenant: "contoso.example", ClientID: "app",
			PrivateKey: NewSecret(testPEMKey), Certificate: testPEMCert},
	}
	tenantCommon := passwordAuth
	tenantCommon.OAuth2.Tenant = "Common"
	badFrom := passwordAuth
	badFrom.Mail.From = "not an address"

	tests := []struct {
		name      string
		c         Config
		ch        Change
		errs      []string // keys refused
		remaining []string // keys of the problems left, when errs is empty
	}{
		// built up one key at a time from nothing
		{"oauth2 before its mode", Config{}, Change{Set: map[string]string{"smtp.auth": "oauth2"}}, nil,
			[]string{"mail.from", "mail.to", "smtp.host", "oauth2.mode"}},
		{"a mode before its keys", Config{}, Change{Set: map[string]string{"oauth2.mode": "exchange"}}, nil,
			[]string{"mail.from", "mail.to", "oauth2.client_id", "oauth2.client_secret", "oauth2.tenant"}},
		{"a password before its user", Config{Mail: passwordAuth.Mail, SMTP: SMTP{Host: "smtp.example.test"}},
			Change{Set: map[string]string{"smtp.password": "pw"}}, nil, []string{"smtp.user"}},
		{"an unset key stays unset", Config{}, Change{Unset: []string{"mail.from"}}, nil,
			[]string{"mail.from", "mail.to", "smtp.host"}},
		{"a problem elsewhere does not block", badFrom, Change{Set: map[string]string{"mail.to": "noc@example.test"}}, nil,
			[]string{"mail.from"}},

		// wrong values
		{"a port out of range", passwordAuth, Change{Set: map[string]string{"smtp.port": "70000"}}, []string{"smtp.port"}, nil},
		{"not an address", passwordAuth, Change{Set: map[string]string{"mail.from": "not an address"}}, []string{"mail.from"}, nil},
		{"a value that does not parse", passwordAuth, Change{Set: map[string]string{"smtp.port": "many"}}, []string{"smtp.port"}, nil},
		{"tenant Common with microsoft365", ropc, Change{Set: map[string]string{"oauth2.tenant": "Common"}}, []string{"oauth2.tenant"}, nil},
		{"tenant COMMON with microsoft365", ropc, Change{Set: map[string]string{"oauth2.tenant": "COMMON"}}, []string{"oauth2.tenant"}, nil},
		{"tenant Consumers with microsoft365", ropc, Change{Set: map[string]string{"oauth2.tenant": "Consumers"}}, []string{"oauth2.tenant"}, nil},
		{"microsoft365 onto tenant Common", tenantCommon, Change{Set: map[string]string{"oauth2.mode": "microsoft365"}},
			[]string{"oauth2.tenant"}, nil},

		// needed values taken away
		{"the user of password auth", passwordAuth, Change{Unset: []string{"smtp.user"}}, []string{"smtp.user"}, nil},
		{"the password of password auth", passwordAuth, Change{Unset: []string{"smtp.password"}}, []string{"smtp.password"}, nil},
		{"an empty value unsets", passwordAuth, Change{Set: map[string]string{"smtp.user": ""}}, []string{"smtp.user"}, nil},
		{"the mode that gave the server", exchange, Change{Unset: []string{"oauth2.mode"}}, []string{"smtp.host"}, nil},
		{"the key of a certificate app", certApp, Change{Unset: []string{"oauth2.private_key"}}, []string{"oauth2.client_secret"}, nil},
		{"user and password together", passwordAuth, Change{Unset: []string{"smtp.user", "smtp.password"}}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			errs, remaining := tt.ch.Apply(&c, board.Profile{})
			if got := slices.Sorted(maps.Keys(errs)); !slices.Equal(got, tt.errs) {
				t.Fatalf("Apply refuses %q, want %q: %v", got, tt.errs, errs)
			}
			if len(errs) > 0 {
				return
			}
			if got := problemKeys(remaining); !slices.Equal(got, tt.remaining) {
				t.Errorf("remaining problems name %q, want %q: %v", got, tt.remaining, remaining)
			}
		})
	}
}

// TestChangeTenantMessage checks that a refused tenant says what to do.
func TestChangeTenantMessage(t *testing.T) {
	c := Config{OAuth2: OAuth2{Mode: "microsoft365"}}
	errs, _ := Change{Set: map[string]string{"oauth2.tenant": "Common"}}.Apply(&c, board.Profile{})
	if msg := errs["oauth2.tenant"]; !strings.Contains(msg, `"Common"`) || !strings.Contains(msg, "tenant ID") {
		t.Errorf("Apply(tenant Common) says %q, want the value and what to set instead", msg)
	}
}
