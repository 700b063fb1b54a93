package webui

// The one-time setup code's gate: the first password from the page, once.

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
	"sync"
)

// normalizeSetupCode makes "k7qx m2pd-9trf" and "K7QXM2PD9TRF" equal.
func normalizeSetupCode(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if r == '-' || r == ' ' || r == '\t' {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// SetupGate guards the one-time setup code: it lets the first password be
// set from the page, once, and only while no password is set.
type SetupGate struct {
	mu   sync.Mutex
	sum  [32]byte
	used bool
}

// NewSetupGate returns a gate that opens for code (see agent.NewSetupCode). An
// empty code never opens it.
func NewSetupGate(code string) *SetupGate {
	g := &SetupGate{sum: sha256.Sum256([]byte(normalizeSetupCode(code)))}
	if normalizeSetupCode(code) == "" {
		g.used = true
	}
	return g
}

// Use reports whether code is the setup code, compared in constant time
// (case, spaces and dashes aside). passwordSet tells whether an admin
// password exists; while one does, every code is refused. A code is good
// once: a successful Use closes the gate for good.
func (g *SetupGate) Use(code string, passwordSet bool) bool {
	sum := sha256.Sum256([]byte(normalizeSetupCode(code)))
	g.mu.Lock()
	defer g.mu.Unlock()
	ok := subtle.ConstantTimeCompare(sum[:], g.sum[:]) == 1
	if !ok || g.used || passwordSet {
		return false
	}
	g.used = true
	return true
}
