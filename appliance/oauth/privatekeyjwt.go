package oauth

// Client authentication by a signed JWT (RFC 7523 §2.2, OpenID Connect's
// private_key_jwt): modes private-key-jwt and microsoft-app with a
// certificate. x/oauth2 has no support for it; the call transport (see
// transport in client.go) adds a fresh assertion to every POST to the
// token endpoint.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"mailagent/appliance/config"
)

// assertionType is client_assertion_type for a JWT (RFC 7523 §2.2).
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is how long an assertion is valid. Microsoft asks for
// 5 to 10 minutes; RFC 7523 servers may refuse long-lived ones.
const assertionLifetime = 5 * time.Minute

// assertionSigner makes client assertions. The algorithm follows from the
// key, without a setting:
//   - an RSA key with a certificate signs PS256 (salt length = hash length)
//     with x5t#S256, as Microsoft Entra asks;
//   - an RSA key without a certificate signs RS256, which every
//     private_key_jwt server accepts;
//   - an ECDSA P-256 key signs ES256.
//
// The header carries kid when oauth2.key_id is set and x5t#S256 (the
// base64url SHA-256 of the certificate's DER) when a certificate is set.
type assertionSigner struct {
	clientID string
	aud      string
	key      crypto.Signer
	method   jwt.SigningMethod
	kid      string
	cert     *x509.Certificate
	x5tS256  string
	now      func() time.Time
}

// newAssertionSigner parses oauth2.private_key and oauth2.certificate.
func newAssertionSigner(oc config.OAuth2, now func() time.Time) (*assertionSigner, *config.KeyError) {
	key, err := parsePrivateKey(oc.PrivateKey.Reveal())
	if err != nil {
		return nil, &config.KeyError{Key: "oauth2.private_key", Err: err}
	}
	s := &assertionSigner{clientID: oc.ClientID, aud: oc.TokenURL, key: key, kid: oc.KeyID, now: now}
	if oc.Certificate != "" {
		cert, err := parseCertificate(oc.Certificate)
		if err != nil {
			return nil, &config.KeyError{Key: "oauth2.certificate", Err: err}
		}
		pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(cert.PublicKey) {
			return nil, &config.KeyError{Key: "oauth2.certificate", Err: errors.New("the certificate does not belong to oauth2.private_key")}
		}
		sum := sha256.Sum256(cert.Raw)
		s.cert, s.x5tS256 = cert, base64.RawURLEncoding.EncodeToString(sum[:])
	}
	switch key.(type) {
	case *rsa.PrivateKey:
		s.method = jwt.SigningMethodRS256
		if s.cert != nil {
			s.method = jwt.SigningMethodPS256
		}
	case *ecdsa.PrivateKey:
		s.method = jwt.SigningMethodES256
	}
	return s, nil
}

// sign returns a new assertion: iss = sub = client_id, aud = the token
// endpoint, a random jti, iat = nbf = now, exp = now + 5 minutes.
func (s *assertionSigner) sign() (string, error) {
	now := s.now()
	t := jwt.NewWithClaims(s.method, jwt.MapClaims{
		"iss": s.clientID,
		"sub": s.clientID,
		"aud": s.aud,
		"jti": rand.Text(),
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(assertionLifetime).Unix(),
	})
	if s.kid != "" {
		t.Header["kid"] = s.kid
	}
	if s.x5tS256 != "" {
		t.Header["x5t#S256"] = s.x5tS256
	}
	return t.SignedString(s.key)
}

// parsePrivateKey reads the first private key in a PEM text: PKCS #8,
// PKCS #1 (RSA) or SEC 1 (EC). RSA keys need 2048 bits at least; EC keys
// must be P-256. Errors never quote the text.
func parsePrivateKey(text string) (crypto.Signer, error) {
	rest := []byte(text)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM private key in it (expected -----BEGIN PRIVATE KEY-----)")
		}
		var key any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, errors.New("the private key is encrypted: store it without a passphrase (openssl pkcs8 -topk8 -nocrypt)")
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("the %s block is not a valid key", b.Type)
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			if k.N.BitLen() < 2048 {
				return nil, fmt.Errorf("the RSA key has %d bits: at least 2048 are needed", k.N.BitLen())
			}
			return k, nil
		case *ecdsa.PrivateKey:
			if k.Curve != elliptic.P256() {
				return nil, fmt.Errorf("the EC key is on %s: only P-256 is supported", k.Curve.Params().Name)
			}
			return k, nil
		}
		return nil, fmt.Errorf("a %T key is not supported: use RSA or EC P-256", key)
	}
}

// parseCertificate reads the first certificate in a PEM text.
func parseCertificate(text string) (*x509.Certificate, error) {
	rest := []byte(text)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)")
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("the certificate does not parse: %v", oneLine(err.Error(), 120))
		}
		return cert, nil
	}
}
