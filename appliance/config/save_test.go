package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"mailagent/appliance/internal/flash"
)

// awkward are strings an encoder gets wrong: every TOML escape and the Go
// escapes that are not TOML, control characters, quotes that close a
// literal string, line ends of every kind, non-ASCII letters and
// separators, and the longest value kept.
var awkward = []string{
	"plain",
	"",
	"bell \a, vertical tab \v, escape \x1b, delete \x7f, nul \x00",
	"backspace \b form feed \f tab \t",
	"line1\nline2",
	"line1\r\nline2\r\n",
	"\nstarts with a line end",
	"ends with quotes'''",
	"a ''' in the middle\nand a line end",
	"ends with one quote'\nand a line end'",
	"ends with two quotes\n''",
	`double "quotes" and \backslashes\ and \u0041 written out`,
	"Größe ä€ 日本 😀",
	"next line \u0085, line separator \u2028, paragraph \u2029, bom \ufeff",
	"C1 control \u0080\u009f",
	"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
	strings.Repeat("x", MaxValueBytes),
}

// TestSaveRoundTrips saves every awkward string in every kind of key a
// string goes into (a plain string, a secret, a list element) and reads
// the file back as Load does: the same values, no damage, and the good
// copy the same bytes as the file.
func TestSaveRoundTrips(t *testing.T) {
	for _, s := range awkward {
		var c Config
		c.OAuth2.Subject = s
		c.OAuth2.ClientSecret = NewSecret(s)
		c.OAuth2.PrivateKey = NewSecret(s)
		c.OAuth2.Certificate = s
		c.Mail.To = []string{s}
		c.SMTP.Password = NewSecret(s)
		path := filepath.Join(t.TempDir(), FileName)
		if err := Save(path, &c); err != nil {
			t.Errorf("Save with %.40q = %v", s, err)
			continue
		}
		f, err := Load(path)
		if err != nil || f.Damaged != nil {
			t.Errorf("Load after Save with %.40q = %v, %v", s, err, f)
			continue
		}
		if !Equal(&f.Config, &c) {
			t.Errorf("Save then Load of %.40q changed the configuration", s)
		}
		file, _ := os.ReadFile(path)
		good, _ := os.ReadFile(flash.GoodPath(path))
		if !bytes.Equal(file, good) {
			t.Errorf("Save with %.40q: good copy differs from the file", s)
		}
	}
}

// TestSaveRefusesWhatDoesNotReadBack is finding H3 at Save: a value that
// TOML cannot hold (not UTF-8) is refused by key, and neither the file
// nor its good copy is touched. Before, the raw byte went into a
// multi-line literal string in both, and neither parsed again.
func TestSaveRefusesWhatDoesNotReadBack(t *testing.T) {
	for _, tt := range []struct {
		name, key string
		set       func(c *Config)
	}{
		{"subject, as config set wrote it", "oauth2.subject", func(c *Config) { c.OAuth2.Subject = "line1\nline2 caf\xe9" }},
		{"a one-line string", "device.name", func(c *Config) { c.Device.Name = "caf\xe9" }},
		{"a secret", "smtp.password", func(c *Config) { c.SMTP.Password = NewSecret("pw-canary-\xff") }},
		{"a list element", "mail.to", func(c *Config) { c.Mail.To = []string{"ok@example.test", "caf\xe9@example.test"} }},
		{"too long", "oauth2.certificate", func(c *Config) { c.OAuth2.Certificate = strings.Repeat("x", 10<<20) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			var before Config
			before.SMTP.Host = "smtp.example.test"
			if err := Save(path, &before); err != nil {
				t.Fatal(err)
			}
			file, _ := os.ReadFile(path)
			good, _ := os.ReadFile(flash.GoodPath(path))
			c := before
			tt.set(&c)
			err := Save(path, &c)
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("Save = %v, want an error naming %s", err, tt.key)
			}
			if err != nil && strings.Contains(err.Error(), "canary") {
				t.Errorf("Save error shows the secret: %v", err)
			}
			if now, _ := os.ReadFile(path); !bytes.Equal(now, file) {
				t.Errorf("the file changed (%d bytes)", len(now))
			}
			if now, _ := os.ReadFile(flash.GoodPath(path)); !bytes.Equal(now, good) {
				t.Errorf("the good copy changed (%d bytes)", len(now))
			}
			if f, err := Load(path); err != nil || f.Damaged != nil || f.Config.SMTP.Host != "smtp.example.test" {
				t.Errorf("Load after the refused Save = %v, %v", err, f)
			}
		})
	}
}

// TestSetRefusesWhatCannotBeAValue is finding H3 at the key table: a value
// that is not UTF-8 text, holds a control character (a line break outside
// a PEM key) or is longer than MaxValueBytes is refused with the key
// named, and a secret is never quoted.
func TestSetRefusesWhatCannotBeAValue(t *testing.T) {
	tests := []struct {
		key, val, want string
	}{
		{"oauth2.subject", "line1\nline2 caf\xe9", "not valid UTF-8"},
		{"oauth2.subject", "caf\xe9", "not valid UTF-8"},
		{"oauth2.subject", "line1\nline2", "line break"},
		{"device.name", "gw\r", "line break"},
		{"mail.from_name", "bell\a", "control character U+0007"},
		{"mail.to", "a@example.test, b\x1b@example.test", "control character U+001B"},
		{"smtp.password", "pw-canary\n", "line break"},
		{"smtp.password", "pw-canary\xff", "not valid UTF-8"},
		{"oauth2.client_secret", strings.Repeat("canary", 2<<20), "at most 16384 bytes"},
		{"oauth2.certificate", strings.Repeat("x", MaxValueBytes+1), "at most 16384 bytes"},
		{"oauth2.private_key", "-----BEGIN PRIVATE KEY-----\nMIIB\x07\n-----END PRIVATE KEY-----\n", "control character U+0007"},
	}
	for _, tt := range tests {
		k, err := LookupKey(tt.key)
		if err != nil {
			t.Fatal(err)
		}
		var c Config
		err = k.Set(&c, tt.val)
		if err == nil || !strings.HasPrefix(err.Error(), tt.key+": ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Set(%s, %.40q) = %v, want an error naming the key and %q", tt.key, tt.val, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "canary") {
			t.Errorf("Set(%s) error shows the secret: %.80s", tt.key, err)
		}
		if k.IsSet(&c) {
			t.Errorf("Set(%s, %.40q) stored the value", tt.key, tt.val)
		}
	}
	// A PEM key and certificate keep their lines, CRLF or not, and tabs
	// go anywhere.
	for _, tt := range []struct{ key, val string }{
		{"oauth2.private_key", "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"},
		{"oauth2.certificate", "-----BEGIN CERTIFICATE-----\r\nMIIB\r\n-----END CERTIFICATE-----\r\n"},
		{"mail.from_name", "tab\there"},
		{"oauth2.subject", strings.Repeat("x", MaxValueBytes)},
	} {
		k, _ := LookupKey(tt.key)
		var c Config
		if err := k.Set(&c, tt.val); err != nil || k.text(&c) != tt.val {
			t.Errorf("Set(%s, %.40q) = %v, value %.40q", tt.key, tt.val, err, k.text(&c))
		}
	}
}

// saveSeeds are the configurations the fuzzer starts from: the awkward
// strings, each in a key of every kind.
func saveSeeds() (keys []string, vals []string) {
	for i, s := range awkward {
		for _, k := range []string{"oauth2.subject", "smtp.password", "mail.to", "oauth2.private_key", "alarms.digest_window", "smtp.port"} {
			if i%2 == 0 || k == "oauth2.subject" {
				keys, vals = append(keys, k), append(vals, s)
			}
		}
	}
	return keys, vals
}

// FuzzSave puts any string into any key, directly as code does (Import,
// the password hash) and not through Set, and asks for the bytes Save
// would write: either they are refused, or the decoder Load uses reads
// them back to exactly that configuration. Save writes exactly these
// bytes, and nothing when they are refused (TestSaveRefusesWhatDoesNotReadBack).
func FuzzSave(f *testing.F) {
	keys, vals := saveSeeds()
	for i := range keys {
		f.Add(keyIndexOf(keys[i]), vals[i], int64(0))
	}
	f.Add(keyIndexOf("oauth2.secret_expires"), "", int64(1806451200))
	f.Add(keyIndexOf("alarms.keepalive_interval"), "", int64(90*time.Second))
	f.Fuzz(func(t *testing.T, key int, val string, n int64) {
		if key < 0 {
			key = -key
		}
		k := Keys[key%len(Keys)]
		var c Config
		v := k.value(&c)
		switch k.Kind {
		case String:
			v.SetString(val)
		case SecretKind:
			v.Set(reflect.ValueOf(NewSecret(val)))
		case List:
			v.Set(reflect.ValueOf(strings.Split(val, ",")))
		case Int:
			v.SetInt(n)
		case Bool:
			v.SetBool(n%2 == 1)
		case DurationKind:
			v.Set(reflect.ValueOf(Duration{Duration: time.Duration(n), set: len(val)%2 == 0}))
		case DateKind:
			v.Set(reflect.ValueOf(Date{Time: time.Unix(n, 0).UTC()}))
		}
		data, err := fileBytes(&c)
		if err != nil {
			if strings.Contains(val, "canary") && strings.Contains(err.Error(), "canary") {
				t.Fatalf("refusal shows the value: %v", err)
			}
			return
		}
		back, err := decodeFile(data)
		if err != nil {
			t.Fatalf("%s = %.60q: accepted, but does not read back: %v\n%s", k.Name, val, err, data)
		}
		if !Equal(&c, &back) {
			t.Fatalf("%s = %.60q: accepted, but reads back as %.60q", k.Name, k.text(&c), k.text(&back))
		}
	})
}

func keyIndexOf(name string) int {
	for i, k := range Keys {
		if k.Name == name {
			return i
		}
	}
	panic("no key " + name)
}
