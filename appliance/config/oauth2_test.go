package config

import (
	"slices"
	"strings"
	"testing"

	"mailagent/board"
)

// oauth2Config is a configuration in mode with the keys of set, defaults
// filled in.
func oauth2Config(t *testing.T, mode string, set map[string]string) *Config {
	t.Helper()
	var c Config
	c.OAuth2.Mode = mode
	for name, val := range set {
		k, err := LookupKey(name)
		if err != nil {
			t.Fatal(err)
		}
		if val == "" {
			k.Unset(&c)
			continue
		}
		if err := k.Set(&c, val); err != nil {
			t.Fatal(err)
		}
	}
	d := c.WithDefaults(board.Profile{})
	return &d
}

func problemKeys(p Problems) []string {
	var keys []string
	for _, e := range p {
		keys = append(keys, e.Key)
	}
	return keys
}

// with returns a copy of m with the changes of edit ("" unsets a key).
func with(m map[string]string, edit map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for k, v := range edit {
		out[k] = v
	}
	return out
}

const (
	testPEMKey  = "-----BEGIN PRIVATE KEY-----\nnot parsed here\n-----END PRIVATE KEY-----\n"
	testPEMCert = "-----BEGIN CERTIFICATE-----\nnot parsed here\n-----END CERTIFICATE-----\n"
)

// oauth2Modes is, for every mode, a complete [oauth2] section and the keys
// the mode needs, written out here rather than read from Modes so that a
// rule dropped from the table fails the test.
var oauth2Modes = []struct {
	mode     string
	complete map[string]string
	needs    []string
}{
	{"exchange", map[string]string{"oauth2.tenant": "contoso.example", "oauth2.client_id": "app", "oauth2.client_secret": "s3cret"},
		[]string{"oauth2.tenant", "oauth2.client_id", "oauth2.client_secret"}},
	{"microsoft365", map[string]string{"oauth2.tenant": "contoso.example", "oauth2.client_id": "app",
		"oauth2.username": "alarm@contoso.example", "oauth2.password": "pass word"},
		[]string{"oauth2.tenant", "oauth2.client_id", "oauth2.username", "oauth2.password"}},
	{"microsoft-app", map[string]string{"oauth2.tenant": "contoso.example", "oauth2.client_id": "app", "oauth2.client_secret": "s3cret"},
		[]string{"oauth2.tenant", "oauth2.client_id", "oauth2.client_secret"}},
	{"gmail", map[string]string{"oauth2.client_id": "app.apps.googleusercontent.com", "oauth2.client_secret": "s3cret"},
		[]string{"oauth2.client_id", "oauth2.client_secret"}},
	{"google-service-account", map[string]string{"oauth2.client_email": "sa@p.iam.gserviceaccount.com",
		"oauth2.private_key": testPEMKey, "oauth2.subject": "alarm@example.test"},
		[]string{"oauth2.client_email", "oauth2.private_key", "oauth2.subject"}},
	{"client-secret-post", map[string]string{"oauth2.auth_url": "https://idp.example.test/authorize",
		"oauth2.token_url": "https://idp.example.test/token", "oauth2.client_id": "app", "oauth2.client_secret": "s3cret"},
		[]string{"oauth2.auth_url", "oauth2.token_url", "oauth2.client_id", "oauth2.client_secret"}},
	{"private-key-jwt", map[string]string{"oauth2.auth_url": "https://idp.example.test/authorize",
		"oauth2.token_url": "https://idp.example.test/token", "oauth2.client_id": "app",
		"oauth2.private_key": testPEMKey, "oauth2.key_id": "kid-1"},
		[]string{"oauth2.auth_url", "oauth2.token_url", "oauth2.client_id", "oauth2.private_key", "oauth2.key_id"}},
}

func completeFor(t *testing.T, mode string) map[string]string {
	t.Helper()
	for _, m := range oauth2Modes {
		if m.mode == mode {
			return m.complete
		}
	}
	t.Fatalf("no complete configuration for mode %s", mode)
	return nil
}

// TestValidateOAuth2Modes checks the one OAuth2 validator: for every mode,
// a complete section passes, each key it needs is named when missing, and
// each value it refuses is named.
func TestValidateOAuth2Modes(t *testing.T) {
	var names []string
	for _, m := range oauth2Modes {
		names = append(names, m.mode)
	}
	if !slices.Equal(names, ModeNames()) {
		t.Fatalf("the test covers modes %q; Modes has %q", names, ModeNames())
	}

	for _, m := range oauth2Modes {
		t.Run(m.mode+"/complete", func(t *testing.T) {
			if p := ValidateOAuth2(oauth2Config(t, m.mode, m.complete)); p != nil {
				t.Errorf("ValidateOAuth2(complete %s) = %v, want none", m.mode, p)
			}
		})
		for _, need := range m.needs {
			t.Run(m.mode+"/without "+need, func(t *testing.T) {
				p := ValidateOAuth2(oauth2Config(t, m.mode, with(m.complete, map[string]string{need: ""})))
				if got := problemKeys(p); !slices.Equal(got, []string{need}) {
					t.Fatalf("problems name %q, want only %s: %v", got, need, p)
				}
				if !slices.Contains(p[0].Missing, need) || !strings.Contains(p[0].Error(), "not set: mode "+m.mode+" needs "+need) {
					t.Errorf("problem %v (missing %q), want %s named as missing for mode %s", p[0], p[0].Missing, need, m.mode)
				}
			})
		}
	}

	// What one mode needs only with another key, or as an alternative.
	needTests := []struct {
		name, mode string
		edit       map[string]string
		keys       []string // problems, in order; nil: none
		missing    []string // the first problem's Missing
	}{
		{"app with a key instead of a secret, no certificate", "microsoft-app",
			map[string]string{"oauth2.client_secret": "", "oauth2.private_key": testPEMKey},
			[]string{"oauth2.certificate"}, []string{"oauth2.certificate"}},
		{"app with a key and a certificate", "microsoft-app",
			map[string]string{"oauth2.client_secret": "", "oauth2.private_key": testPEMKey, "oauth2.certificate": testPEMCert}, nil, nil},
		{"app with a secret and a key, no certificate", "microsoft-app",
			map[string]string{"oauth2.private_key": testPEMKey}, []string{"oauth2.certificate"}, []string{"oauth2.certificate"}},
		{"app with neither secret nor key", "microsoft-app",
			map[string]string{"oauth2.client_secret": ""}, []string{"oauth2.client_secret"}, []string{"oauth2.client_secret", "oauth2.private_key"}},
		{"pkjwt with a certificate instead of a key id", "private-key-jwt",
			map[string]string{"oauth2.key_id": "", "oauth2.certificate": testPEMCert}, nil, nil},
		{"pkjwt with neither key id nor certificate", "private-key-jwt",
			map[string]string{"oauth2.key_id": ""}, []string{"oauth2.key_id"}, []string{"oauth2.key_id", "oauth2.certificate"}},
	}
	for _, tt := range needTests {
		t.Run(tt.name, func(t *testing.T) {
			p := ValidateOAuth2(oauth2Config(t, tt.mode, with(completeFor(t, tt.mode), tt.edit)))
			if got := problemKeys(p); !slices.Equal(got, tt.keys) {
				t.Fatalf("problems name %q, want %q: %v", got, tt.keys, p)
			}
			if len(p) > 0 && !slices.Equal(p[0].Missing, tt.missing) {
				t.Errorf("%v: Missing = %q, want %q", p[0], p[0].Missing, tt.missing)
			}
		})
	}

	long := "https://box.example.test/" + strings.Repeat("a", 223) + "/auth.htm" // 257 characters
	refuseTests := []struct {
		name, mode string
		edit       map[string]string
		keys       []string // problems, in order; nil: the value is accepted
		says       string   // in the first problem
	}{
		{"unknown mode", "outlook", nil, []string{"oauth2.mode"}, `"outlook" is not a mode`},
		{"ropc tenant common", "microsoft365", map[string]string{"oauth2.tenant": "common"}, []string{"oauth2.tenant"}, `cannot use tenant "common"`},
		{"ropc tenant Common", "microsoft365", map[string]string{"oauth2.tenant": "Common"}, []string{"oauth2.tenant"}, `cannot use tenant "Common"`},
		{"ropc tenant COMMON", "microsoft365", map[string]string{"oauth2.tenant": "COMMON"}, []string{"oauth2.tenant"}, "microsoft-app"},
		{"ropc tenant consumers", "microsoft365", map[string]string{"oauth2.tenant": "consumers"}, []string{"oauth2.tenant"}, "tenant ID"},
		{"ropc tenant Consumers", "microsoft365", map[string]string{"oauth2.tenant": "Consumers"}, []string{"oauth2.tenant"}, "tenant ID"},
		{"ropc tenant organizations", "microsoft365", map[string]string{"oauth2.tenant": "organizations"}, nil, ""},
		{"ropc password with a leading space", "microsoft365", map[string]string{"oauth2.password": " pass word"}, []string{"oauth2.password"}, "begins or ends with a space"},
		{"ropc password with a trailing space", "microsoft365", map[string]string{"oauth2.password": "pass word "}, []string{"oauth2.password"}, "begins or ends with a space"},
		{"app tenant common", "microsoft-app", map[string]string{"oauth2.tenant": "common"}, []string{"oauth2.tenant"}, "(tenant) ID or domain"},
		{"app tenant Consumers", "microsoft-app", map[string]string{"oauth2.tenant": "Consumers"}, []string{"oauth2.tenant"}, "(tenant) ID or domain"},
		{"app tenant Organizations", "microsoft-app", map[string]string{"oauth2.tenant": "Organizations"}, []string{"oauth2.tenant"}, "(tenant) ID or domain"},
		{"exchange tenant common", "exchange", map[string]string{"oauth2.tenant": "common"}, nil, ""},
		{"exchange redirect on an http IP address", "exchange", map[string]string{"oauth2.redirect_url": "http://192.168.1.20/auth.htm"}, []string{"oauth2.redirect_url"}, "only https"},
		{"exchange redirect on http localhost", "exchange", map[string]string{"oauth2.redirect_url": "http://localhost:8080/auth.htm"}, nil, ""},
		{"exchange redirect on http 127.0.0.1", "exchange", map[string]string{"oauth2.redirect_url": "http://127.0.0.1/auth.htm"}, nil, ""},
		{"exchange redirect on https IP address", "exchange", map[string]string{"oauth2.redirect_url": "https://192.168.1.20/auth.htm"}, nil, ""},
		{"exchange redirect on [::1]", "exchange", map[string]string{"oauth2.redirect_url": "https://[::1]/auth.htm"}, []string{"oauth2.redirect_url"}, "[::1]"},
		{"exchange redirect of 257 characters", "exchange", map[string]string{"oauth2.redirect_url": long}, []string{"oauth2.redirect_url"}, "256 characters"},
		{"exchange redirect of 256 characters", "exchange", map[string]string{"oauth2.redirect_url": long[:len(long)-1]}, nil, ""},
		{"exchange scopes without offline_access", "exchange", map[string]string{"oauth2.scopes": "https://outlook.office.com/SMTP.Send"}, []string{"oauth2.scopes"}, "offline_access"},
		{"gmail redirect on an IP address", "gmail", map[string]string{"oauth2.redirect_url": "https://192.168.1.20/auth.htm"}, []string{"oauth2.redirect_url"}, "IP address"},
		{"gmail redirect on loopback", "gmail", map[string]string{"oauth2.redirect_url": "http://127.0.0.1:8080/auth.htm"}, nil, ""},
		{"gmail redirect on a name", "gmail", map[string]string{"oauth2.redirect_url": "https://box.example.test/auth.htm"}, nil, ""},
		{"gmail scope gmail.send", "gmail", map[string]string{"oauth2.scopes": "https://www.googleapis.com/auth/gmail.send"}, []string{"oauth2.scopes"}, "https://mail.google.com/"},
		{"service account scope gmail.send", "google-service-account", map[string]string{"oauth2.scopes": "https://www.googleapis.com/auth/gmail.send"}, []string{"oauth2.scopes"}, "https://mail.google.com/"},
		{"service account scopes with the mail scope", "google-service-account", map[string]string{"oauth2.scopes": "openid, https://mail.google.com/"}, nil, ""},
		// the endpoints made from a wrong authority are wrong too
		{"authority not a URL", "exchange", map[string]string{"oauth2.authority": "login.example.test"},
			[]string{"oauth2.authority", "oauth2.auth_url", "oauth2.token_url", "oauth2.device_auth_url"}, "not an http(s) URL"},
		{"auth url ftp", "client-secret-post", map[string]string{"oauth2.auth_url": "ftp://idp.example.test/a"}, []string{"oauth2.auth_url"}, "not an http(s) URL"},
		{"token url without host", "private-key-jwt", map[string]string{"oauth2.token_url": "https:///token"}, []string{"oauth2.token_url"}, "not an http(s) URL"},
		{"device url mailto", "client-secret-post", map[string]string{"oauth2.device_auth_url": "mailto:x@example.test"}, []string{"oauth2.device_auth_url"}, "not an http(s) URL"},
		{"redirect url not a URL", "gmail", map[string]string{"oauth2.redirect_url": "box/auth.htm"}, []string{"oauth2.redirect_url"}, "not an http(s) URL"},
		{"login hint with a space", "exchange", map[string]string{"oauth2.login_hint": "a b@example.test"}, []string{"oauth2.login_hint"}, "not an account name"},
	}
	refused := map[string]bool{} // mode + key refused by a case
	for _, tt := range refuseTests {
		t.Run(tt.name, func(t *testing.T) {
			set := map[string]string{}
			if _, ok := LookupMode(tt.mode); ok {
				set = completeFor(t, tt.mode)
			}
			p := ValidateOAuth2(oauth2Config(t, tt.mode, with(set, tt.edit)))
			if got := problemKeys(p); !slices.Equal(got, tt.keys) {
				t.Fatalf("problems name %q, want %q: %v", got, tt.keys, p)
			}
			if len(p) == 0 {
				return
			}
			refused[tt.mode+" "+p[0].Key] = true
			if !strings.Contains(p[0].Error(), tt.says) || len(p[0].Missing) != 0 {
				t.Errorf("problem %v (missing %q), want a wrong value saying %q", p[0], p[0].Missing, tt.says)
			}
			if strings.Contains(p[0].Error(), "pass word") {
				t.Errorf("problem %v shows the password", p[0])
			}
		})
	}
	// Every refusal of the mode table has a case.
	for _, m := range Modes {
		for _, r := range m.Refuses {
			if !refused[m.Name+" "+r.Key] {
				t.Errorf("mode %s refuses some %s values, and no case above shows it", m.Name, r.Key)
			}
		}
	}

	t.Run("no mode", func(t *testing.T) {
		p := ValidateOAuth2(oauth2Config(t, "", nil))
		if got := problemKeys(p); !slices.Equal(got, []string{"oauth2.mode"}) || !slices.Equal(p[0].Missing, []string{"oauth2.mode"}) {
			t.Fatalf("ValidateOAuth2(no mode) = %v, want oauth2.mode missing", p)
		}
	})
}

// TestModeTableKeys checks that every key the mode table names exists.
func TestModeTableKeys(t *testing.T) {
	for _, m := range Modes {
		var keys []string
		for _, n := range m.Needs {
			keys = append(keys, strings.Split(n, "|")...)
		}
		for _, n := range m.NeedsWith {
			keys = append(keys, n.Key, n.With)
		}
		for _, r := range m.Refuses {
			keys = append(keys, r.Key)
			if k, _ := LookupKey(r.Key); k.Kind == SecretKind && strings.Contains(r.Why, "%") {
				t.Errorf("mode %s: the reason for refusing secret %s would quote it: %q", m.Name, r.Key, r.Why)
			}
		}
		for _, k := range keys {
			if _, err := LookupKey(k); err != nil {
				t.Errorf("mode %s: %v", m.Name, err)
			}
		}
	}
}

// TestValidateUsesTheOAuth2Validator checks that Validate reports the
// [oauth2] section's problems as ValidateOAuth2 does, when a mode is set or
// smtp.auth is oauth2, and not otherwise.
func TestValidateUsesTheOAuth2Validator(t *testing.T) {
	base := Config{Mail: Mail{From: "alarm@example.test", To: []string{"ops@example.test"}}, SMTP: SMTP{Host: "smtp.example.test"}}

	c := base
	c.OAuth2 = OAuth2{Mode: "microsoft365", Tenant: "Common", ClientID: "app", Username: "u@example.test", Password: NewSecret("pw")}
	d := c.WithDefaults(board.Profile{})
	p, _ := AsProblems(Validate(&d))
	if got := problemKeys(p); !slices.Equal(got, []string{"oauth2.tenant"}) {
		t.Errorf("Validate(microsoft365, tenant Common) names %q, want oauth2.tenant: %v", got, p)
	}

	c = base
	c.SMTP.Auth = "oauth2"
	d = c.WithDefaults(board.Profile{})
	p, _ = AsProblems(Validate(&d))
	if got := problemKeys(p); !slices.Equal(got, []string{"oauth2.mode"}) || len(p[0].Missing) == 0 {
		t.Errorf("Validate(auth oauth2, no mode) = %v, want oauth2.mode missing", p)
	}

	c = base
	c.OAuth2.RedirectURL = "not a url" // no mode, password-less auth: [oauth2] unused
	d = c.WithDefaults(board.Profile{})
	if err := Validate(&d); err != nil {
		t.Errorf("Validate without OAuth2 = %v, want nil", err)
	}
}
