package agent

// The admin password and the one-time setup code: what the web page and
// the console both check and set ([admin] password_hash).

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// MinPasswordLen is the shortest admin password HashPassword accepts.
const MinPasswordLen = 10

// PasswordCost is the bcrypt cost of the admin password hash.
const PasswordCost = 11

// ErrPasswordTooShort is HashPassword's answer to a password shorter than
// MinPasswordLen; its text is meant for the page and the console.
var ErrPasswordTooShort = fmt.Errorf("the password must be at least %d characters long", MinPasswordLen)

// ErrPasswordTooLong is HashPassword's answer to a password bcrypt cannot
// take whole (beyond 72 bytes); its text is meant for the page and the
// console.
var ErrPasswordTooLong = errors.New("the password must be at most 72 bytes long")

// HashPassword returns the bcrypt hash of pw, for [admin] password_hash.
// A password shorter than MinPasswordLen characters is refused with
// ErrPasswordTooShort; the error never contains the password.
func HashPassword(pw string) (string, error) {
	if len([]rune(pw)) < MinPasswordLen {
		return "", ErrPasswordTooShort
	}
	if len(pw) > 72 {
		return "", ErrPasswordTooLong
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), PasswordCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether pw matches hash, a HashPassword result.
// The comparison is bcrypt's, in constant time; an empty or malformed hash
// matches nothing.
func CheckPassword(hash, pw string) bool {
	if hash == "" {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// setupAlphabet has no 0/O, 1/I/L, 5/S, 8/B or 2/Z, so a code read off a
// console survives being typed.
const setupAlphabet = "ACDEFGHJKMNPQRTUVWXY34679"

// NewSetupCode returns a fresh one-time setup code of 12 characters from
// crypto/rand in groups of four, like "K7QX-M2PD-9TRF" (about 55 bits).
// The page takes it, once, to set the first password while none is set.
func NewSetupCode() string {
	const groups, per = 3, 4
	var b strings.Builder
	for i := range groups * per {
		if i > 0 && i%per == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(setupAlphabet[randIndex(len(setupAlphabet))])
	}
	return b.String()
}

// randIndex returns a uniform random number in [0, n) for n <= 256.
func randIndex(n int) int {
	limit := 256 - 256%n // reject the biased tail
	var b [1]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic("agent: crypto/rand failed: " + err.Error())
		}
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}
