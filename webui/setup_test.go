package webui

import (
	"strings"
	"testing"

	"mailagent/appliance/agent"
)

func TestSetupGate(t *testing.T) {
	code := agent.NewSetupCode()
	g := NewSetupGate(code)
	steps := []struct {
		name        string
		code        string
		passwordSet bool
		want        bool
	}{
		{"wrong code", "AAAA-AAAA-AAAA", false, false},
		{"empty", "", false, false},
		{"right code but a password is set", code, true, false},
		{"right code, lower case, no dashes", strings.ToLower(strings.ReplaceAll(code, "-", "")), false, true},
		{"second use", code, false, false},
	}
	for _, s := range steps {
		if got := g.Use(s.code, s.passwordSet); got != s.want {
			t.Errorf("%s: Use = %v; want %v", s.name, got, s.want)
		}
	}
	if NewSetupGate("").Use("", false) {
		t.Error("a gate without a code opened for the empty code")
	}
	if NewSetupGate(" - ").Use("", false) {
		t.Error("a gate with a blank code opened")
	}
}
