package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailagent/board"
)

// TestTokenEndpointsOverHTTPOnlyToLoopback is finding M1 (part): an http
// token, authorisation or device endpoint, or authority, would get the
// client secret in clear; only a loopback host may be reached so.
func TestTokenEndpointsOverHTTPOnlyToLoopback(t *testing.T) {
	tests := []struct {
		mode, key, url string
		refused        []string
	}{
		{"client-secret-post", "oauth2.token_url", "http://idp.example.test/token", []string{"oauth2.token_url"}},
		{"client-secret-post", "oauth2.auth_url", "http://idp.example.test/authorize", []string{"oauth2.auth_url"}},
		{"client-secret-post", "oauth2.device_auth_url", "http://10.0.0.1/device", []string{"oauth2.device_auth_url"}},
		{"client-secret-post", "oauth2.token_url", "HTTP://idp.example.test/token", []string{"oauth2.token_url"}},
		{"client-secret-post", "oauth2.token_url", "http://localhost.example.test/token", []string{"oauth2.token_url"}},
		// the endpoints of a Microsoft mode come from the authority
		{"exchange", "oauth2.authority", "http://login.example.test/", []string{"oauth2.authority", "oauth2.auth_url", "oauth2.token_url", "oauth2.device_auth_url"}},
		{"client-secret-post", "oauth2.token_url", "http://127.0.0.1:8080/token", nil},
		{"client-secret-post", "oauth2.token_url", "http://127.9.9.9/token", nil},
		{"client-secret-post", "oauth2.token_url", "http://localhost:9000/token", nil},
		{"client-secret-post", "oauth2.token_url", "http://[::1]:9000/token", nil},
		{"client-secret-post", "oauth2.token_url", "https://idp.example.test/token", nil},
		{"exchange", "oauth2.authority", "http://127.0.0.1:8080/", nil},
		// the redirect URI goes to a browser, under its own rules
		{"client-secret-post", "oauth2.redirect_url", "http://box.example.test/auth.htm", nil},
	}
	for _, tt := range tests {
		c := oauth2Config(t, tt.mode, with(completeFor(t, tt.mode), map[string]string{tt.key: tt.url}))
		var got []string
		for _, e := range ValidateOAuth2(c) {
			if strings.Contains(e.Err.Error(), "in clear") {
				got = append(got, e.Key)
			}
		}
		if strings.Join(got, " ") != strings.Join(tt.refused, " ") {
			t.Errorf("%s %s = %s: refused %q, want %q", tt.mode, tt.key, tt.url, got, tt.refused)
		}
	}
}

// TestFileKeysStayOffMailagentsFiles is finding M1 (part): smtp.ca_file,
// http.tls_cert and http.tls_key may not name a file mailagent writes in
// the data directory (the board profile's, as WithDefaults passes it),
// however the path is spelt; a file of the administrator's there, or
// elsewhere, is fine.
func TestFileKeysStayOffMailagentsFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, d := range []string{dir, filepath.Join(dir, "spool")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{FileName, "ca.pem", "spool/1.alarm"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(t.TempDir(), "innocent.pem")
	if err := os.Symlink(filepath.Join(dir, FileName), link); err != nil {
		t.Fatal(err)
	}
	refused := []string{
		filepath.Join(dir, FileName),
		filepath.Join(dir, FileName+".good"),
		filepath.Join(dir, LockName),
		filepath.Join(dir, "tokens.toml"),
		filepath.Join(dir, "tokens.toml.good"),
		filepath.Join(dir, ".mailagent.toml123456"),
		filepath.Join(dir, "webui-key.pem"),
		filepath.Join(dir, "spool", "1.alarm"),
		filepath.Join(dir, "run", "mailagent.sock"),
		dir,
		dir + "/./spool/../" + FileName,
		dir + "//" + FileName,
		link,
	}
	fine := []string{filepath.Join(dir, "ca.pem"), filepath.Join(filepath.Dir(dir), "ca.pem"), "/etc/ssl/certs/ca-certificates.crt"}
	for _, key := range []string{"smtp.ca_file", "http.tls_cert", "http.tls_key"} {
		for _, p := range append(refused, fine...) {
			var c Config
			k, _ := LookupKey(key)
			if err := k.Set(&c, p); err != nil {
				t.Fatal(err)
			}
			d := c.WithDefaults(board.Profile{DataDir: dir})
			probs, _ := AsProblems(Validate(&d))
			got := len(probs.For(key)) > 0 && strings.Contains(probs.For(key).Error(), "mailagent's own file")
			want := !contains(fine, p)
			if got != want {
				t.Errorf("%s = %s: refused %v, want %v (%v)", key, p, got, want, probs.For(key))
			}
			// Without a data directory nothing is known to refuse.
			n := c.WithDefaults(board.Profile{})
			if probs, _ := AsProblems(Validate(&n)); strings.Contains(probs.Error(), "mailagent's own file") {
				t.Errorf("%s = %s refused without a data directory", key, p)
			}
		}
	}
}

// TestAlarmPasswordLength is finding M2 (part): http.alarm_password takes
// at least MinAlarmPassword characters.
func TestAlarmPasswordLength(t *testing.T) {
	for _, tt := range []struct {
		pw      string
		refused bool
	}{
		{"a", true}, {"elevenchars", true}, {"ä€日本😀ä€日本😀ä", true}, {"twelve-chars", false}, {"ä€日本😀ä€日本😀äx", false},
	} {
		var c Config
		c.HTTP.AlarmUser, c.HTTP.AlarmPassword = "poster", NewSecret(tt.pw)
		d := c.WithDefaults(board.Profile{})
		probs, _ := AsProblems(Validate(&d))
		p := probs.For("http.alarm_password")
		if (len(p) > 0) != tt.refused {
			t.Errorf("alarm_password of %d characters: %v, want refused %v", len([]rune(tt.pw)), p, tt.refused)
		}
		if len(p) > 0 && len(tt.pw) > 4 && strings.Contains(p.Error(), tt.pw) {
			t.Errorf("the problem shows the password: %v", p)
		}
	}
}
