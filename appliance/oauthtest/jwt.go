package oauthtest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// jwt is a JWS compact serialization (RFC 7515 §7.1) of a JWT, parsed but
// not yet verified.
type jwt struct {
	header map[string]any
	claims map[string]any
	signed string // header "." payload, the signing input
	sig    []byte
}

func parseJWT(s string) (*jwt, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%d parts separated by dots, want 3", len(parts))
	}
	enc := base64.RawURLEncoding.Strict()
	var j jwt
	h, err := enc.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("header is not unpadded base64url: %w", err)
	}
	if err := json.Unmarshal(h, &j.header); err != nil || j.header == nil {
		return nil, fmt.Errorf("header is not a JSON object")
	}
	c, err := enc.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("claims are not unpadded base64url: %w", err)
	}
	if err := json.Unmarshal(c, &j.claims); err != nil || j.claims == nil {
		return nil, fmt.Errorf("claims are not a JSON object")
	}
	if j.sig, err = enc.DecodeString(parts[2]); err != nil {
		return nil, fmt.Errorf("signature is not unpadded base64url: %w", err)
	}
	j.signed = parts[0] + "." + parts[1]
	return &j, nil
}

// head returns a string header parameter, "" if absent or not a string.
func (j *jwt) head(name string) string {
	v, _ := j.header[name].(string)
	return v
}

// claim returns a string claim, "" if absent or not a string.
func (j *jwt) claim(name string) string {
	v, _ := j.claims[name].(string)
	return v
}

// time returns a NumericDate claim (RFC 7519 §2); ok is false if it is
// absent, and err set if it is not a number.
func (j *jwt) time(name string) (t time.Time, ok bool, err error) {
	v, present := j.claims[name]
	if !present {
		return time.Time{}, false, nil
	}
	f, isNum := v.(float64)
	if !isNum || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
		return time.Time{}, false, fmt.Errorf("claim %s is not a NumericDate", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// audience returns the aud claim, a string or an array of strings.
func (j *jwt) audience() []string {
	switch v := j.claims["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, a := range v {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// verify checks the signature with pub for the header's alg, which must be
// one of algs. PS256 is RFC 7518 §3.5's: the salt is as long as the hash,
// so a signature with Go's default maximal salt fails.
func (j *jwt) verify(pub *rsa.PublicKey, algs ...string) error {
	alg := j.head("alg")
	ok := false
	for _, a := range algs {
		ok = ok || a == alg
	}
	if !ok {
		return fmt.Errorf("alg %q, want %s", alg, strings.Join(algs, " or "))
	}
	h := sha256.Sum256([]byte(j.signed))
	switch alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], j.sig)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, h[:], j.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return errors.New("unsupported alg " + alg)
}
