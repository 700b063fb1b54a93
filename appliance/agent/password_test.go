package agent

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

const adminPassword = "canary-Admin-7c2d" // must never show in an error

func TestHashPassword(t *testing.T) {
	h, err := HashPassword(adminPassword)
	if err != nil {
		t.Fatalf("HashPassword: %v", err)
	}
	// a hash at the lowest cost, for the checks around the hash
	b, err := bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("bcrypt: %v", err)
	}
	cheap := string(b)
	if !strings.HasPrefix(h, "$2a$11$") {
		t.Errorf("hash %q is not bcrypt cost 11", h)
	}
	if strings.Contains(h, adminPassword) {
		t.Error("hash contains the password")
	}
	tests := []struct {
		name string
		hash string
		pw   string
		want bool
	}{
		{"right", h, adminPassword, true},
		{"wrong", h, adminPassword + "x", false},
		{"right, cheap hash", cheap, adminPassword, true},
		{"prefix", cheap, adminPassword[:10], false},
		{"empty password", cheap, "", false},
		{"empty hash", "", adminPassword, false},
		{"empty both", "", "", false},
		{"malformed hash", "$2a$11$short", adminPassword, false},
		{"plain text hash", adminPassword, adminPassword, false},
	}
	for _, tt := range tests {
		if got := CheckPassword(tt.hash, tt.pw); got != tt.want {
			t.Errorf("%s: CheckPassword = %v; want %v", tt.name, got, tt.want)
		}
	}
}

func TestHashPasswordRefuses(t *testing.T) {
	tests := []struct {
		pw   string
		want error
	}{
		{"", ErrPasswordTooShort},
		{"short-pw1", ErrPasswordTooShort},            // 9
		{"ääääääääö", ErrPasswordTooShort},            // 9 characters, 18 bytes
		{strings.Repeat("p", 73), ErrPasswordTooLong}, // bcrypt would cut it
	}
	for _, tt := range tests {
		h, err := HashPassword(tt.pw)
		if !errors.Is(err, tt.want) || h != "" {
			t.Errorf("HashPassword(%q) = %q, %v; want %v", tt.pw, h, err, tt.want)
			continue
		}
		if tt.pw != "" && strings.Contains(err.Error(), tt.pw) {
			t.Errorf("error %q shows the password", err)
		}
	}
	if !strings.Contains(ErrPasswordTooShort.Error(), "at least 10 characters") {
		t.Errorf("ErrPasswordTooShort = %q; want it to say the minimum", ErrPasswordTooShort)
	}
}

func TestNewSetupCode(t *testing.T) {
	form := regexp.MustCompile(`^[` + setupAlphabet + `]{4}-[` + setupAlphabet + `]{4}-[` + setupAlphabet + `]{4}$`)
	seen := map[string]bool{}
	for range 200 {
		c := NewSetupCode()
		if !form.MatchString(c) {
			t.Fatalf("NewSetupCode() = %q; want XXXX-XXXX-XXXX from %s", c, setupAlphabet)
		}
		if strings.ContainsAny(c, "0O1IL5S8B2Z") {
			t.Fatalf("NewSetupCode() = %q has an ambiguous character", c)
		}
		if seen[c] {
			t.Fatalf("NewSetupCode() repeated %q", c)
		}
		seen[c] = true
	}
}
