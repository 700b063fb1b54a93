package webui

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files SelfSigned keeps in its directory.
const (
	SelfSignedCertFile = "webui-cert.pem"
	SelfSignedKeyFile  = "webui-key.pem"
)

// SelfSignedValidity is how long a self-signed certificate is valid.
const SelfSignedValidity = 10 * 365 * 24 * time.Hour

// SelfSigned returns the page's self-signed certificate and its
// fingerprint (Fingerprint). The first call makes an ECDSA P-256
// certificate for hosts (names, IP addresses, or both), valid ten years,
// and stores it in dir as webui-cert.pem and webui-key.pem, mode 0600, each
// written to a temporary file and renamed into place; later calls reuse the
// stored pair as long as it loads and has not expired.
func SelfSigned(dir string, hosts []string) (tls.Certificate, string, error) {
	certPath := filepath.Join(dir, SelfSignedCertFile)
	keyPath := filepath.Join(dir, SelfSignedKeyFile)
	certPEM, errC := os.ReadFile(certPath)
	keyPEM, errK := os.ReadFile(keyPath)
	switch {
	case errC == nil && errK == nil:
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err == nil && c.Leaf != nil && time.Now().Before(c.Leaf.NotAfter) {
			return c, Fingerprint(c.Certificate[0]), nil
		}
		// unusable or expired: make a new pair over it
	case errC != nil && !errors.Is(errC, fs.ErrNotExist):
		return tls.Certificate{}, "", fmt.Errorf("self-signed certificate: %w", errC)
	case errK != nil && !errors.Is(errK, fs.ErrNotExist):
		return tls.Certificate{}, "", fmt.Errorf("self-signed certificate: %w", errK)
	}
	certPEM, keyPEM, err := NewSelfSigned(hosts, time.Now())
	if err != nil {
		return tls.Certificate{}, "", err
	}
	if err := writeFile0600(keyPath, keyPEM); err != nil {
		return tls.Certificate{}, "", fmt.Errorf("self-signed certificate: %w", err)
	}
	if err := writeFile0600(certPath, certPEM); err != nil {
		return tls.Certificate{}, "", fmt.Errorf("self-signed certificate: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("self-signed certificate: %w", err)
	}
	return c, Fingerprint(c.Certificate[0]), nil
}

// NewSelfSigned makes an ECDSA P-256 certificate for hosts valid from now
// (less an hour, for clocks behind) for SelfSignedValidity, and returns the
// certificate and its PKCS#8 key as PEM. An IP address among hosts becomes
// an IP SAN, anything else a DNS SAN; the first host is the common name.
func NewSelfSigned(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"mailagent"}, CommonName: "mailagent"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(SelfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, a.AsSlice())
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
		if tmpl.Subject.CommonName == "mailagent" {
			tmpl.Subject.CommonName = h
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	return certPEM, keyPEM, nil
}

// Fingerprint is the SHA-256 of a certificate's DER as colon-separated
// upper-case hex, as browsers show it.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// writeFile0600 writes data to path through a temporary file in the same
// directory: write, sync, close, rename.
func writeFile0600(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
