// Package selfsigned makes and keeps the certificate the box serves its
// page and alarm endpoints with when no certificate is configured: ECDSA
// P-256, valid ten years, stored in the data directory through flash.
package selfsigned

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mailagent/appliance/internal/flash"
)

// Files Load keeps in its directory. They keep the names they had when
// the web page made the certificate, so that a box keeps its certificate
// (and the fingerprint its administrator accepted) across an update.
const (
	CertFile = "webui-cert.pem"
	KeyFile  = "webui-key.pem"
)

// Validity is how long a self-signed certificate is valid.
const Validity = 10 * 365 * 24 * time.Hour

// Load returns the self-signed certificate kept in dir and its
// fingerprint (Fingerprint). The first call makes an ECDSA P-256
// certificate for hosts (names, IP addresses, or both), valid ten years
// (Generate), and stores it in dir as CertFile and KeyFile with
// flash.Replace: atomically, mode 0600, the directory fsynced. Later calls
// reuse the stored pair as long as it loads and has not expired; a damaged
// or expired pair is made again. dir must exist (the agent makes its data
// directory at start): Load does not create it.
func Load(dir string, hosts []string) (tls.Certificate, string, error) {
	if fi, err := os.Stat(dir); err != nil {
		return tls.Certificate{}, "", fmt.Errorf("self-signed certificate: %w", err)
	} else if !fi.IsDir() {
		return tls.Certificate{}, "", fmt.Errorf("self-signed certificate: %s is not a directory", dir)
	}
	certPath := filepath.Join(dir, CertFile)
	keyPath := filepath.Join(dir, KeyFile)
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
	certPEM, keyPEM, err := Generate(hosts, time.Now())
	if err != nil {
		return tls.Certificate{}, "", err
	}
	if err := flash.Replace(flash.OS, keyPath, keyPEM); err != nil {
		return tls.Certificate{}, "", fmt.Errorf("self-signed certificate: %w", err)
	}
	if err := flash.Replace(flash.OS, certPath, certPEM); err != nil {
		return tls.Certificate{}, "", fmt.Errorf("self-signed certificate: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("self-signed certificate: %w", err)
	}
	return c, Fingerprint(c.Certificate[0]), nil
}

// Generate makes an ECDSA P-256 certificate for hosts valid from now
// (less an hour, for clocks behind) for Validity, and returns the
// certificate and its SEC 1 ("EC PRIVATE KEY") key as PEM. An IP address
// among hosts becomes an IP SAN, anything else a DNS SAN; the first host is
// the common name. The certificate is a server certificate (key usage
// digital signature, extended key usage server auth, not a CA).
//
// The DER is written here rather than by x509.CreateCertificate, whose
// encoder would add some 65 KB to the binary for this one certificate.
func Generate(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	priv, err := key.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	serial := make([]byte, 16)
	if _, err := rand.Read(serial); err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	serial[0] = serial[0]&0x7f | 0x40 // positive, and no leading zero byte
	cn := "mailagent"
	var sans [][]byte
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
			sans = append(sans, der(0x87, a.WithZone("").AsSlice())) // iPAddress
		} else {
			sans = append(sans, der(0x82, []byte(h))) // dNSName
		}
		if cn == "mailagent" {
			cn = h
		}
	}
	name := der(0x30,
		der(0x31, der(0x30, oidOrganization, der(0x0c, []byte("mailagent")))),
		der(0x31, der(0x30, oidCommonName, der(0x0c, []byte(cn)))))
	exts := [][]byte{
		der(0x30, oidKeyUsage, asn1True, der(0x04, der(0x03, []byte{7, 0x80}))), // digitalSignature
		der(0x30, oidExtKeyUsage, der(0x04, der(0x30, oidServerAuth))),
		der(0x30, oidBasicConstraints, asn1True, der(0x04, der(0x30))),
	}
	if len(sans) > 0 {
		exts = append(exts, der(0x30, oidSubjectAltName, der(0x04, der(0x30, sans...))))
	}
	tbs := der(0x30,
		der(0xa0, der(0x02, []byte{2})), // version 3
		der(0x02, serial),
		der(0x30, oidECDSAWithSHA256),
		name,
		der(0x30, derTime(now.Add(-time.Hour)), derTime(now.Add(Validity))),
		name,
		der(0x30, der(0x30, oidECPublicKey, oidP256), der(0x03, []byte{0}, pub)),
		der(0xa3, der(0x30, exts...)))
	sum := sha256.Sum256(tbs)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		return nil, nil, fmt.Errorf("self-signed certificate: %w", err)
	}
	cert := der(0x30, tbs, der(0x30, oidECDSAWithSHA256), der(0x03, []byte{0}, sig))
	sec1 := der(0x30, der(0x02, []byte{1}), der(0x04, priv), der(0xa0, oidP256), der(0xa1, der(0x03, []byte{0}, pub)))
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})
	return certPEM, keyPEM, nil
}

// DER encodings of the object identifiers and values Generate uses.
var (
	oidECDSAWithSHA256  = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02} // 1.2.840.10045.4.3.2
	oidECPublicKey      = []byte{0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01}       // 1.2.840.10045.2.1
	oidP256             = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07} // 1.2.840.10045.3.1.7
	oidOrganization     = []byte{0x06, 0x03, 0x55, 0x04, 0x0a}                               // 2.5.4.10
	oidCommonName       = []byte{0x06, 0x03, 0x55, 0x04, 0x03}                               // 2.5.4.3
	oidKeyUsage         = []byte{0x06, 0x03, 0x55, 0x1d, 0x0f}                               // 2.5.29.15
	oidExtKeyUsage      = []byte{0x06, 0x03, 0x55, 0x1d, 0x25}                               // 2.5.29.37
	oidBasicConstraints = []byte{0x06, 0x03, 0x55, 0x1d, 0x13}                               // 2.5.29.19
	oidSubjectAltName   = []byte{0x06, 0x03, 0x55, 0x1d, 0x11}                               // 2.5.29.17
	oidServerAuth       = []byte{0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01} // 1.3.6.1.5.5.7.3.1
	asn1True            = []byte{0x01, 0x01, 0xff}
)

// der encodes one DER element: tag, definite length, the parts as content.
func der(tag byte, parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := []byte{tag}
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 0x100:
		out = append(out, 0x81, byte(n))
	case n < 0x10000:
		out = append(out, 0x82, byte(n>>8), byte(n))
	default:
		out = append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// derTime is a certificate validity time: UTCTime through 2049,
// GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
func derTime(t time.Time) []byte {
	t = t.UTC()
	if t.Year() < 2050 {
		return der(0x17, []byte(t.Format("060102150405Z")))
	}
	return der(0x18, []byte(t.Format("20060102150405Z")))
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
