package oauth

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailagent/appliance/config"
)

func TestTokensRoundTrip(t *testing.T) {
	when := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	in := Tokens{
		AccessToken: config.NewSecret("at-canary"), TokenType: "Bearer", Expiry: when,
		RefreshToken: config.NewSecret("rt-canary"), Mode: "exchange", ClientID: "c", Account: "alarm@example.test",
		Scopes: []string{"https://outlook.office.com/SMTP.Send", "offline_access"}, Obtained: when, Refreshed: when,
		State: StateReauthRequired, LastError: "invalid_grant: AADSTS700082", LastErrorAt: when, SecretWarning: 7,
	}
	out, err := DecodeTokens(in.Encode())
	if err != nil {
		t.Fatalf("DecodeTokens(Encode) = %v\n%s", err, in.Encode())
	}
	if fmt.Sprintf("%#v", out) != fmt.Sprintf("%#v", in) || out.AccessToken.Reveal() != "at-canary" || out.RefreshToken.Reveal() != "rt-canary" {
		t.Errorf("round trip:\n got %#v\nwant %#v", out, in)
	}
	for _, s := range []string{fmt.Sprintf("%v", in), fmt.Sprintf("%+v", in), fmt.Sprintf("%#v", in)} {
		if strings.Contains(s, "canary") {
			t.Errorf("formatted tokens show a secret: %s", s)
		}
	}
	if empty := (&Tokens{}).Encode(); len(empty) != 0 {
		t.Errorf("empty tokens encode to %q, want nothing", empty)
	}
}

func TestDecodeTokensStrict(t *testing.T) {
	tests := []struct{ doc, want string }{
		{"acess_token = \"x\"\n", `unknown key "acess_token"`},
		{"token_type = \"MAC\"\n", "only Bearer"},
		{"expiry = \"tomorrow\"\n", "line 1"},
		{"access_token = \"x", "line 1"},
	}
	for _, tt := range tests {
		if _, err := DecodeTokens([]byte(tt.doc)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeTokens(%q) = %v, want %q", tt.doc, err, tt.want)
		}
	}
	// A hand-written file with a quoted or a bare RFC 3339 expiry.
	for _, doc := range []string{"access_token = \"x\"\nexpiry = 2026-11-24T12:00:00Z\n", "access_token = \"x\"\nexpiry = \"2026-11-24T12:00:00+01:00\"\n"} {
		tok, err := DecodeTokens([]byte(doc))
		if err != nil || tok.Expiry.IsZero() {
			t.Errorf("DecodeTokens(%q) = %+v, %v", doc, tok, err)
		}
	}
}

func TestLoadTokensFallsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), TokensFileName)
	if err := SaveTokens(path, &Tokens{RefreshToken: config.NewSecret("rt-1")}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("refresh_token = \"rt"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Damaged == nil || f.Tokens.RefreshToken.Reveal() != "rt-1" {
		t.Errorf("LoadTokens of a damaged file = %+v, want the good copy and a warning", f)
	}
	if strings.Contains(f.Damaged.Error(), "rt") && strings.Contains(f.Damaged.Error(), "rt-1") {
		t.Errorf("warning shows the token: %v", f.Damaged)
	}
}
