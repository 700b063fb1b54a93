package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"mailagent/board"
)

const full = `
[device]
name = "gw-lab-1"

[mail]
from = "alarm@example.test"
from_name = "Gateway Lab"
to = ["ops@example.test", "noc@example.test"]
subject_prefix = "[alarm]"

[smtp]
host = "smtp.example.test"
port = 587
tls = "starttls"
auth = "password"
user = "alarm@example.test"
password = "hunter2-secret"

[oauth2]
secret_expires = 2027-03-31

[alarms]
digest_window = "0s"
max_mails_per_hour = 12

[console]
require_login = true
`

func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string // substrings of the error; none means success
	}{
		{"full", full, nil},
		{"empty", "", nil},
		{"unknown key", "[smtp]\nhost = \"a\"\nhots = \"b\"\n", []string{"line 3", `unknown key "smtp.hots"`, `did you mean "smtp.host"?`}},
		{"unknown section", "[mial]\nfrom = \"a@b\"\n", []string{"line 1", `"mial"`}},
		{"two unknown keys", "[mail]\nfrm = \"x\"\n[smtp]\nprt = 1\n", []string{"line 2", "mail.frm", "line 4", "smtp.prt"}},
		{"dotted unknown", "smtp.hots = \"b\"\n", []string{"line 1", "smtp.hots"}},
		{"wrong type", "[smtp]\nport = \"587\"\n", []string{"line 2", "port"}},
		{"bad duration", "[alarms]\ndigest_window = \"ten\"\n", []string{"line 2", "not a duration"}},
		{"duration as number", "[alarms]\ndigest_window = 30\n", []string{"line 2", "not a duration"}},
		{"bad date", "[oauth2]\nsecret_expires = \"31.03.2027\"\n", []string{"line 2", "YYYY-MM-DD"}},
		{"syntax", "[smtp\nhost = 1\n", []string{"line ", "end table name"}},
		{"truncated", "[smtp]\nhost = \"smtp.exa", []string{"line 2"}},
		{"secret not string", "[smtp]\npassword = 1234\n", []string{"line 2", "it is a secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.doc))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Decode = %v, want success", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Decode succeeded, want error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Decode error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "1234") {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c, err := Decode([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "hunter2-secret"
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "smtp", c.SMTP, "password", c.SMTP.Password)
	js, _ := json.Marshal(c)
	outputs := map[string]string{
		"%v":     fmt.Sprintf("%v", c),
		"%+v":    fmt.Sprintf("%+v", c),
		"%#v":    fmt.Sprintf("%#v", c),
		"%s":     fmt.Sprintf("%s", c.SMTP.Password),
		"%q":     fmt.Sprintf("%q", c.SMTP.Password),
		"%x":     fmt.Sprintf("%x", c.SMTP.Password),
		"json":   string(js),
		"slog":   logs.String(),
		"error":  (&KeyError{Key: "smtp.password", Err: fmt.Errorf("bad %v", c.SMTP.Password)}).Error(),
		"get":    Keys[keyIndex(t, "smtp.password")].Get(&c),
		"export": string(Export(&c)),
	}
	for name, out := range outputs {
		if strings.Contains(out, secret) {
			t.Errorf("%s output shows the secret: %s", name, out)
		}
		if !strings.Contains(out, "(set)") && name != "%x" {
			t.Errorf("%s output does not say (set): %s", name, out)
		}
	}
	if !strings.Contains(string(Encode(&c)), secret) {
		t.Error("Encode lost the secret: the file must keep it")
	}
	if got := c.SMTP.Password.Reveal(); got != secret {
		t.Errorf("Reveal() = %q, want %q", got, secret)
	}
	if got := fmt.Sprint(Secret{}); got != "(unset)" {
		t.Errorf("empty secret prints %q, want (unset)", got)
	}
}

func keyIndex(t *testing.T, name string) int {
	t.Helper()
	for i, k := range Keys {
		if k.Name == name {
			return i
		}
	}
	t.Fatalf("no key %s", name)
	return -1
}

func TestRoundTrip(t *testing.T) {
	c, err := Decode([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	key := "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"
	c.OAuth2.PrivateKey = NewSecret(key)
	c.OAuth2.Certificate = "line1\r\nline2 with 'quotes' and \"double\" \\ \t\x01"
	c.Mail.ToName = "Störungsdienst \"NOC\""
	out := Encode(&c)
	back, err := Decode(out)
	if err != nil {
		t.Fatalf("Decode(Encode(c)) = %v\n%s", err, out)
	}
	if !Equal(&c, &back) {
		t.Errorf("round trip changed the config:\n got %#v\nwant %#v\nfile:\n%s", back, c, out)
	}
	if back.OAuth2.PrivateKey.Reveal() != key {
		t.Errorf("private key after round trip = %q", back.OAuth2.PrivateKey.Reveal())
	}
	if !back.Alarms.DigestWindow.set || back.Alarms.DigestWindow.Duration != 0 {
		t.Errorf("digest_window = \"0s\" lost: %+v", back.Alarms.DigestWindow)
	}
}

func TestSetGetUnset(t *testing.T) {
	tests := []struct {
		key, in, get string
		wantErr      string
	}{
		{"smtp.host", "smtp.example.test", "smtp.example.test", ""},
		{"smtp.port", "465", "465", ""},
		{"smtp.port", "five", "", "not a whole number"},
		{"smtp.tls", "tls", "tls", ""},
		{"smtp.tls", "ssl", "", `"ssl" is not one of starttls, tls, none`},
		{"mail.to", "a@example.test, b@example.test", "a@example.test, b@example.test", ""},
		{"mail.to", `["a@example.test", "b@example.test"]`, "a@example.test, b@example.test", ""},
		{"mail.to", `["a@example.test", 1]`, "", "not a list of strings"},
		{"alarms.digest_window", "90s", "1m30s", ""},
		{"alarms.digest_window", "soon", "", "not a duration"},
		{"oauth2.secret_expires", "2027-03-31", "2027-03-31", ""},
		{"oauth2.secret_expires", "2027-13-01", "", "not a date"},
		{"console.require_login", "true", "true", ""},
		{"console.require_login", "maybe", "", "not true or false"},
		{"smtp.password", "s3cret-value", "(set)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.in, func(t *testing.T) {
			k, err := LookupKey(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			var c Config
			err = k.Set(&c, tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), tt.key+": ") {
					t.Fatalf("Set(%q) = %v, want error %q naming the key", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Set(%q) = %v", tt.in, err)
			}
			if got := k.Get(&c); got != tt.get {
				t.Errorf("Get after Set(%q) = %q, want %q", tt.in, got, tt.get)
			}
			if _, err := Decode(Encode(&c)); err != nil {
				t.Errorf("file after set does not decode: %v", err)
			}
			k.Unset(&c)
			if k.IsSet(&c) {
				t.Errorf("still set after Unset")
			}
		})
	}
	if _, err := LookupKey("smtp.hots"); err == nil || !strings.Contains(err.Error(), `did you mean "smtp.host"`) {
		t.Errorf("LookupKey(smtp.hots) = %v, want a suggestion", err)
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c, err := Decode([]byte(`
[mail]
from = "not an address"
[smtp]
tls = "ssl"
auth = "password"
[oauth2]
mode = "microsoft365"
tenant = "common"
token_url = "ftp://x"
[alarms]
min_severity = "loud"
`))
	if err != nil {
		t.Fatal(err)
	}
	d := c.WithDefaults(board.Profile{})
	err = Validate(&d)
	p, ok := AsProblems(err)
	if !ok {
		t.Fatalf("Validate = %v, want Problems", err)
	}
	for _, key := range []string{"mail.from", "mail.to", "smtp.tls", "smtp.user", "smtp.password",
		"oauth2.tenant", "oauth2.client_id", "oauth2.username", "oauth2.password", "oauth2.token_url", "alarms.min_severity"} {
		if len(p.For(key)) == 0 {
			t.Errorf("no problem reported for %s; got:\n%v", key, err)
		}
	}
}

func TestValidateGood(t *testing.T) {
	c, err := Decode([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	d := c.WithDefaults(board.Profile{Listen: "127.0.0.1:8080"})
	if err := Validate(&d); err != nil {
		t.Errorf("Validate(full) = %v", err)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Decode([]byte(`
[mail]
from = "alarm@contoso.test"
[oauth2]
mode = "exchange"
tenant = "contoso.onmicrosoft.com"
`))
	if err != nil {
		t.Fatal(err)
	}
	d := c.WithDefaults(board.Profile{Listen: "127.0.0.1:8080", ConsolePort: "/dev/ttyS1", ConsoleBaud: 115200})
	checks := map[string]string{
		"smtp.host":                 "smtp.office365.com",
		"smtp.port":                 "587",
		"smtp.tls":                  "starttls",
		"smtp.auth":                 "oauth2",
		"smtp.user":                 "alarm@contoso.test",
		"oauth2.token_url":          "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
		"oauth2.auth_url":           "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize",
		"oauth2.scopes":             "https://outlook.office.com/SMTP.Send, offline_access",
		"oauth2.login_hint":         "alarm@contoso.test",
		"alarms.digest_window":      "30s",
		"alarms.keepalive_interval": "24h0m0s",
		"http.listen":               "127.0.0.1:8080",
		"console.port":              "/dev/ttyS1",
	}
	for name, want := range checks {
		k, _ := LookupKey(name)
		if got := k.Get(&d); got != want {
			t.Errorf("default %s = %q, want %q", name, got, want)
		}
	}
	if len(c.OAuth2.Scopes) != 0 || c.SMTP.Host != "" {
		t.Error("WithDefaults changed the original")
	}
	zero := NewDuration(0)
	c.Alarms.DigestWindow = zero
	if d := c.WithDefaults(board.Profile{}); d.Alarms.DigestWindow.Duration != 0 {
		t.Errorf("digest_window = \"0s\" replaced by the default %v", d.Alarms.DigestWindow)
	}
	_ = time.Second
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte("[smtp]\nhost = \"a\"\nhots = \"b\"\n"))
	f.Add([]byte("[oauth2]\nprivate_key = '''\nline\n'''\n"))
	f.Add([]byte("[alarms]\ndigest_window = \"0s\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			return
		}
		out := Encode(&c)
		back, err := Decode(out)
		if err != nil {
			t.Fatalf("Encode output does not decode: %v\n%s", err, out)
		}
		if !Equal(&c, &back) {
			t.Fatalf("round trip changed the config\nfile:\n%s", out)
		}
		if !bytes.Equal(Encode(&back), out) {
			t.Fatalf("Encode is not stable")
		}
	})
}

func TestParseErrorHidesSecrets(t *testing.T) {
	for _, doc := range []string{
		"[smtp]\npassword = \"abc-canary\" junk\n",
		"[oauth2]\nclient_secret = abc-canary\n",
		"smtp.password = 'abc-canary\n",
	} {
		_, err := Decode([]byte(doc))
		if err == nil || strings.Contains(err.Error(), "canary") || !strings.Contains(err.Error(), "it is a secret") {
			t.Errorf("Decode(%q) = %v, want an error that hides the value", doc, err)
		}
	}
}
