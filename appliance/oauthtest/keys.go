package oauthtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"sync"
	"testing"
	"time"
)

var keyPairs struct {
	sync.Mutex
	m map[string]keyPair
}

type keyPair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// KeyPair returns a 2048-bit RSA key and a self-signed certificate for it
// (valid 1999–2100, so bubble time fits), for client assertions and
// service accounts. The same name gives the same pair throughout the test
// binary, since making keys is slow.
func KeyPair(t testing.TB, name string) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	keyPairs.Lock()
	defer keyPairs.Unlock()
	if kp, ok := keyPairs.m[name]; ok {
		return kp.key, kp.cert
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("oauthtest: key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(len(keyPairs.m) + 1)),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("oauthtest: certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("oauthtest: certificate: %v", err)
	}
	if keyPairs.m == nil {
		keyPairs.m = make(map[string]keyPair)
	}
	keyPairs.m[name] = keyPair{key, cert}
	return key, cert
}
