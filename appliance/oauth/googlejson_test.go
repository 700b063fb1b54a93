package oauth

import (
	"strings"
	"testing"

	"mailagent/appliance/config"
	"mailagent/board"
)

func TestImportGoogleClient(t *testing.T) {
	tests := []struct {
		file, clientID, secret, redirect string
	}{
		{"google-client-web.json", "123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com", "GOCSPX-test-web-secret-not-real", "https://box.example.com/auth.htm"},
		{"google-client-installed.json", "123456789012-installedclientidxxxxxxxxxxxxxx.apps.googleusercontent.com", "GOCSPX-test-installed-secret", "http://localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c := config.Config{Mail: config.Mail{From: "alarm@example.test"}}
			c.OAuth2.Mode = "exchange"
			c.OAuth2.AuthURL = "https://old.example.test/auth"
			if err := ImportGoogleClient(&c, []byte(readTestdata(t, tt.file))); err != nil {
				t.Fatal(err)
			}
			o := c.OAuth2
			if o.Mode != "gmail" || o.ClientID != tt.clientID || o.ClientSecret.Reveal() != tt.secret || o.RedirectURL != tt.redirect {
				t.Errorf("imported %+v", o)
			}
			if o.AuthURL != "" || o.TokenURL != "" {
				t.Errorf("auth/token URLs %q %q, want the preset (empty)", o.AuthURL, o.TokenURL)
			}
			d := c.WithDefaults(board.Profile{})
			cl, err := NewClient(ClientOptions{Config: &d})
			if err != nil {
				t.Fatalf("NewClient after import: %v", err)
			}
			if u, _, err := cl.Start(); err != nil || !strings.HasPrefix(u, "https://accounts.google.com/o/oauth2/auth?") {
				t.Errorf("Start() = %s, %v", u, err)
			}
		})
	}
}

func TestImportGoogleClientOwnEndpoints(t *testing.T) {
	var c config.Config
	data := `{"web":{"client_id":"id","client_secret":"s","auth_uri":"https://idp.example.test/auth","token_uri":"https://oauth2.googleapis.com/token","redirect_uris":["urn:ietf:wg:oauth:2.0:oob"]}}`
	if err := ImportGoogleClient(&c, []byte(data)); err != nil {
		t.Fatal(err)
	}
	if c.OAuth2.AuthURL != "https://idp.example.test/auth" || c.OAuth2.TokenURL != "" || c.OAuth2.RedirectURL != "" {
		t.Errorf("imported %+v", c.OAuth2)
	}
}

func TestImportGoogleServiceAccount(t *testing.T) {
	c := config.Config{Mail: config.Mail{From: "alarm@example.test"}}
	c.OAuth2.Subject = "alarm@example.test"
	if err := ImportGoogleServiceAccount(&c, []byte(readTestdata(t, "google-service-account.json"))); err != nil {
		t.Fatal(err)
	}
	o := c.OAuth2
	if o.Mode != "google-service-account" || o.ClientEmail != "alarms@mailagent-test.iam.gserviceaccount.com" || o.ClientID != "104242424242424242424" ||
		o.PrivateKeyID != "0123456789abcdef0123456789abcdef01234567" || o.PrivateKey.Reveal() != readTestdata(t, "test-key.pem") ||
		o.TokenURL != "" || o.Subject != "alarm@example.test" {
		t.Errorf("imported %+v", o)
	}
	d := c.WithDefaults(board.Profile{})
	if _, err := NewClient(ClientOptions{Config: &d}); err != nil {
		t.Errorf("NewClient after import: %v", err)
	}
}

func TestImportRefusals(t *testing.T) {
	const secret = "GOCSPX-canary-in-a-bad-file"
	tests := []struct {
		name    string
		service bool
		data    string
		want    string
	}{
		{"client: not json", false, "client_secret=" + secret, "not Google's client JSON"},
		{"client: wrong shape", false, `{"web":"` + secret + `"}`, "wrong type"},
		{"client: service account given", false, readTestdata(t, "google-service-account.json"), "google-service-account"},
		{"client: empty object", false, `{}`, `no "web" or "installed"`},
		{"client: no secret", false, `{"installed":{"client_id":"x"}}`, "no client_secret"},
		{"sa: client file given", true, readTestdata(t, "google-client-web.json"), "no type"},
		{"sa: authorized user", true, `{"type":"authorized_user","client_secret":"` + secret + `","refresh_token":"` + secret + `"}`, `"authorized_user"`},
		{"sa: broken key", true, `{"type":"service_account","client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\n` + secret + `\n-----END PRIVATE KEY-----\n"}`, "private_key"},
		{"sa: syntax", true, `{"type":"service_account","private_key":"` + secret, "syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c config.Config
			var err error
			if tt.service {
				err = ImportGoogleServiceAccount(&c, []byte(tt.data))
			} else {
				err = ImportGoogleClient(&c, []byte(tt.data))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("import = %v, want an error containing %q", err, tt.want)
			}
			if err != nil && (strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "GOCSPX")) {
				t.Errorf("import error quotes the file: %v", err)
			}
			if c.OAuth2.Mode != "" {
				t.Errorf("a refused import changed the configuration: %+v", c.OAuth2)
			}
		})
	}
}

func FuzzImportGoogle(f *testing.F) {
	for _, name := range []string{"google-client-web.json", "google-client-installed.json", "google-service-account.json"} {
		f.Add([]byte(readTestdataF(f, name)))
	}
	f.Add([]byte(`{"web":{"client_id":"x","client_secret":"y","redirect_uris":[1]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c config.Config
		_ = ImportGoogleClient(&c, data)
		_ = ImportGoogleServiceAccount(&c, data)
	})
}
