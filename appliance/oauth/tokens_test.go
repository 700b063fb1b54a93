package oauth

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

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
	doc, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeTokens(doc)
	if err != nil {
		t.Fatalf("DecodeTokens(Encode) = %v", err)
	}
	if fmt.Sprintf("%#v", out) != fmt.Sprintf("%#v", in) || out.AccessToken.Reveal() != "at-canary" || out.RefreshToken.Reveal() != "rt-canary" {
		t.Errorf("round trip:\n got %#v\nwant %#v", out, in)
	}
	for _, s := range []string{fmt.Sprintf("%v", in), fmt.Sprintf("%+v", in), fmt.Sprintf("%#v", in)} {
		if strings.Contains(s, "canary") {
			t.Errorf("formatted tokens show a secret: %s", s)
		}
	}
	if empty, _ := (&Tokens{}).Encode(); len(empty) != 0 {
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

// awkwardTokens are token values an encoder gets wrong: Go's escapes that
// are not TOML (strconv.Quote's \a, \v, \x..), the others, quotes and
// backslashes, non-ASCII letters and separators.
var awkwardTokens = []string{
	"at-\a-bell",
	"rt-\v-vt\x1b-esc\x7f-del\x00-nul\x01",
	"\b\t\n\f\r",
	`"quoted" \backslash\ \u0041`,
	"Größe 日本 \u0085 \u2028 \ufeff",
	"'''",
}

// TestSaveTokensRoundTrips is finding H4: whatever a token endpoint
// answers, tokens.toml reads back as written, and so does its good copy.
// Before, the secrets went through strconv.Quote, whose \a is not TOML,
// and both copies were unreadable.
func TestSaveTokensRoundTrips(t *testing.T) {
	when := time.Date(2026, 11, 24, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	for _, s := range awkwardTokens {
		in := Tokens{AccessToken: config.NewSecret(s), TokenType: "Bearer", Expiry: when, RefreshToken: config.NewSecret(s + "-rt"),
			Mode: "exchange", ClientID: s, Account: s, Scopes: []string{s, "offline_access"}, Obtained: when, Refreshed: when,
			State: StateError, LastError: s, LastErrorAt: when, LastHint: s, SecretWarning: 7}
		path := filepath.Join(t.TempDir(), TokensFileName)
		if err := SaveTokens(path, &in); err != nil {
			t.Errorf("SaveTokens with %q = %v", s, err)
			continue
		}
		for _, p := range []string{path, path + ".good"} {
			data, _ := os.ReadFile(p)
			out, err := DecodeTokens(data)
			if err != nil {
				t.Errorf("%s with %q does not decode: %v", filepath.Base(p), s, err)
				continue
			}
			if out.AccessToken.Reveal() != s || out.RefreshToken.Reveal() != s+"-rt" || out.Account != s || out.ClientID != s ||
				out.LastError != s || out.LastHint != s || len(out.Scopes) != 2 || out.Scopes[0] != s || !out.Expiry.Equal(when) {
				t.Errorf("%s with %q reads back otherwise", filepath.Base(p), s)
			}
		}
	}
}

// TestSaveTokensRefusesWhatDoesNotReadBack: a token no TOML file can hold
// (not UTF-8) is not written, to the file or its good copy, and the error
// does not show it.
func TestSaveTokensRefusesWhatDoesNotReadBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), TokensFileName)
	if err := SaveTokens(path, &Tokens{RefreshToken: config.NewSecret("rt-1")}); err != nil {
		t.Fatal(err)
	}
	file, _ := os.ReadFile(path)
	for _, in := range []Tokens{
		{RefreshToken: config.NewSecret("rt-canary-\xff")},
		{RefreshToken: config.NewSecret("rt-2"), Account: "caf\xe9"},
		{RefreshToken: config.NewSecret("rt-2"), TokenType: "MAC"}, // Load would refuse it
	} {
		err := SaveTokens(path, &in)
		if err == nil {
			t.Errorf("SaveTokens(%+v) = nil, want an error", in)
		} else if strings.Contains(err.Error(), "canary") {
			t.Errorf("SaveTokens error shows the token: %v", err)
		}
		for _, p := range []string{path, path + ".good"} {
			if now, _ := os.ReadFile(p); string(now) != string(file) {
				t.Errorf("the refused save changed %s", filepath.Base(p))
			}
		}
	}
}

// TestTokenWithBELFromTheEndpoint is finding H4 as the reviewer made it:
// the token endpoint answers tokens holding BEL; the box keeps working,
// and tokens.toml and its good copy read back with the rotated token.
func TestTokenWithBELFromTheEndpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), TokensFileName)
	g := &belGrant{}
	s, err := NewSource(SourceOptions{Path: path, Grant: g, Config: sourceConfig("microsoft-app", false)})
	if err != nil {
		t.Fatal(err)
	}
	at, err := s.Token(t.Context())
	if err != nil || at != "at\a1" {
		t.Fatalf("Token = %q, %v", at, err)
	}
	for _, p := range []string{path, path + ".good"} {
		data, _ := os.ReadFile(p)
		tok, err := DecodeTokens(data)
		if err != nil || tok.RefreshToken.Reveal() != "rt\a1" {
			t.Errorf("%s after a token with BEL: %v, refresh token %q", filepath.Base(p), err, tok.RefreshToken.Reveal())
		}
	}
	if f, err := LoadTokens(path); err != nil {
		t.Fatalf("LoadTokens = %v", err)
	} else if f.Damaged != nil {
		t.Fatalf("LoadTokens: %v", f.Damaged)
	}
}

// belGrant answers tokens with a BEL in them.
type belGrant struct{ n int }

func (g *belGrant) Refresh(ctx context.Context, rt string) (*oauth2.Token, error) {
	return g.Obtain(ctx)
}
func (g *belGrant) Obtain(context.Context) (*oauth2.Token, error) {
	g.n++
	return &oauth2.Token{AccessToken: fmt.Sprintf("at\a%d", g.n), RefreshToken: fmt.Sprintf("rt\a%d", g.n), Expiry: time.Now().Add(time.Hour)}, nil
}

// TestLoadTokensFindsDamage is finding M6 for tokens.toml: a file
// SaveTokens wrote, cut short at every byte (to nothing too) or removed,
// is damaged, and the good copy's refresh token is used. Before, an empty
// file gave not_authorised while the good copy held the refresh token.
func TestLoadTokensFindsDamage(t *testing.T) {
	when := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	in := Tokens{RefreshToken: config.NewSecret("rt-good"), Mode: "exchange", ClientID: "client-1", Account: "alarm@example.test",
		Scopes: []string{"offline_access"}, Obtained: when, Refreshed: when, State: StateOK}
	path := filepath.Join(t.TempDir(), TokensFileName)
	if err := SaveTokens(path, &in); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(data) - 1 { // the last line end loses nothing
		if err := os.WriteFile(path, data[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := LoadTokens(path)
		if err != nil {
			t.Fatalf("LoadTokens of the first %d bytes = %v", n, err)
		}
		if f.Damaged == nil || f.Tokens.RefreshToken.Reveal() != "rt-good" || f.Tokens.State != StateOK {
			t.Fatalf("LoadTokens of the first %d bytes: damaged %v, refresh token set %v; want the good copy", n, f.Damaged, f.Tokens.RefreshToken.IsSet())
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	f, err := LoadTokens(path)
	if err != nil || f.Missing || f.Damaged == nil || f.Tokens.RefreshToken.Reveal() != "rt-good" {
		t.Fatalf("LoadTokens of a removed file beside its good copy = %+v, %v", f, err)
	}
	// A Source on an empty tokens.toml uses the good copy's grant.
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewSource(SourceOptions{Path: path, Grant: &fakeGrant{t: t, live: "rt-good", ttl: time.Hour}, Config: sourceConfig("exchange", false)})
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.State != StateOK || !st.HasRefreshToken || !strings.Contains(st.Damaged, "empty") {
		t.Errorf("Status on an empty tokens.toml = %+v; want the good copy's grant and the damage named", st)
	}
}

// FuzzSaveTokens puts any strings and times into tokens, as a token
// endpoint or a hand may, and asks for the bytes SaveTokens would write:
// either they are refused, or the decoder LoadTokens uses reads them back
// to exactly those tokens. SaveTokens writes exactly these bytes, and
// nothing when they are refused (TestSaveTokensRefusesWhatDoesNotReadBack).
func FuzzSaveTokens(f *testing.F) {
	for i, s := range awkwardTokens {
		f.Add(s, s+"-rt", "Bearer", s, int64(1795000000+i), int64(i*1e8), 7)
	}
	f.Add("", "", "", "", int64(0), int64(0), 0)
	f.Add("at", "rt", "MAC", "x", int64(-62135596801), int64(0), -1)
	f.Fuzz(func(t *testing.T, access, refresh, typ, text string, sec, nsec int64, warn int) {
		when := time.Unix(sec, nsec)
		in := Tokens{AccessToken: config.NewSecret(access), TokenType: typ, Expiry: when, RefreshToken: config.NewSecret(refresh),
			Mode: text, ClientID: text, Account: text, Scopes: strings.Fields(text), Obtained: when.UTC(), Refreshed: when,
			State: text, LastError: text, LastErrorAt: when, LastHint: text, SecretWarning: warn}
		data, err := tokensBytes(&in)
		if err != nil {
			if strings.Contains(err.Error(), access) && len(access) > 8 || strings.Contains(err.Error(), refresh) && len(refresh) > 8 {
				t.Fatalf("refusal shows a token: %v", err)
			}
			return
		}
		back, err := decodeTokensFile(data)
		if err != nil {
			t.Fatalf("accepted, but does not read back: %v", err)
		}
		if d := differingTokens(&in, &back); len(d) > 0 {
			t.Fatalf("accepted, but %v read back otherwise", d)
		}
	})
}
