package selfsigned

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"
)

func TestFingerprint(t *testing.T) {
	// SHA-256("abc")
	want := "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
	if got := Fingerprint([]byte("abc")); got != want {
		t.Errorf("Fingerprint(abc) = %s; want %s", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	hosts := []string{"box.example.com", "192.168.1.10", "[fe80::1]", ""}
	c, fp, err := Load(dir, hosts)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp) {
		t.Errorf("fingerprint %q", fp)
	}
	if fp != Fingerprint(c.Certificate[0]) {
		t.Errorf("fingerprint is not of the DER")
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key %T; want ECDSA P-256", leaf.PublicKey)
	}
	if d := time.Until(leaf.NotAfter); d < 9*365*24*time.Hour {
		t.Errorf("valid for %v; want ten years", d)
	}
	if !slices.Equal(leaf.DNSNames, []string{"box.example.com"}) {
		t.Errorf("DNS SANs %v", leaf.DNSNames)
	}
	if len(leaf.IPAddresses) != 2 || !leaf.IPAddresses[0].Equal(net.ParseIP("192.168.1.10")) ||
		!leaf.IPAddresses[1].Equal(net.ParseIP("fe80::1")) {
		t.Errorf("IP SANs %v", leaf.IPAddresses)
	}
	if err := leaf.VerifyHostname("box.example.com"); err != nil {
		t.Error(err)
	}
	for _, name := range []string{CertFile, KeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v; want 0600", name, fi.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("dir holds %d files; want 2 (no temporary left)", len(entries))
	}

	// A later start reuses the pair, whatever the hosts.
	_, fp2, err := Load(dir, []string{"other"})
	if err != nil || fp2 != fp {
		t.Errorf("second Load = %s, %v; want %s", fp2, err, fp)
	}

	// A damaged pair is replaced.
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, fp3, err := Load(dir, hosts)
	if err != nil || fp3 == fp {
		t.Errorf("after damage Load = %s, %v; want a new certificate", fp3, err)
	}

	// The certificate serves TLS.
	if _, err := tls.X509KeyPair(mustRead(t, filepath.Join(dir, CertFile)), mustRead(t, filepath.Join(dir, KeyFile))); err != nil {
		t.Errorf("stored pair does not load: %v", err)
	}
}

func TestLoadUnreadable(t *testing.T) {
	dir := t.TempDir()
	// a directory where the certificate should be: neither readable nor missing
	if err := os.Mkdir(filepath.Join(dir, CertFile), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(dir, []string{"box"}); err == nil {
		t.Error("Load over a directory succeeded")
	}
	if _, _, err := Load(filepath.Join(dir, "missing"), []string{"box"}); err == nil {
		t.Error("Load into a missing directory succeeded")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGenerateDER checks the hand-written certificate the way browsers
// and the x509 package read it, and serves TLS with it.
func TestGenerateDER(t *testing.T) {
	for _, now := range []time.Time{time.Now(), time.Date(2045, 6, 1, 0, 0, 0, 0, time.UTC)} {
		certPEM, keyPEM, err := Generate([]string{"box.example.com", "127.0.0.1", "::1"}, now)
		if err != nil {
			t.Fatal(err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatalf("X509KeyPair: %v", err)
		}
		leaf := pair.Leaf
		if leaf.Version != 3 || leaf.Subject.CommonName != "box.example.com" || !slices.Equal(leaf.Subject.Organization, []string{"mailagent"}) {
			t.Errorf("version %d, subject %v", leaf.Version, leaf.Subject)
		}
		if leaf.KeyUsage != x509.KeyUsageDigitalSignature || !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) ||
			!leaf.BasicConstraintsValid || leaf.IsCA {
			t.Errorf("key usage %v, ext %v, basic constraints %v CA %v", leaf.KeyUsage, leaf.ExtKeyUsage, leaf.BasicConstraintsValid, leaf.IsCA)
		}
		if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
			t.Errorf("self-signature: %v", err)
		}
		if !leaf.NotBefore.Equal(now.Add(-time.Hour).Truncate(time.Second)) || !leaf.NotAfter.Equal(now.Add(Validity).Truncate(time.Second)) {
			t.Errorf("validity %v – %v for now %v", leaf.NotBefore, leaf.NotAfter, now)
		}
		if leaf.SerialNumber.Sign() <= 0 {
			t.Errorf("serial %v", leaf.SerialNumber)
		}
		if len(leaf.UnhandledCriticalExtensions) != 0 {
			t.Errorf("unhandled critical extensions %v", leaf.UnhandledCriticalExtensions)
		}
	}

	certPEM, keyPEM, err := Generate([]string{"box.example.com"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, _ := tls.X509KeyPair(certPEM, keyPEM)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	roots := x509.NewCertPool()
	roots.AddCert(pair.Leaf)
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "box.example.com"})
	if err != nil {
		t.Fatalf("TLS with the self-signed certificate: %v", err)
	}
	c.Close()
}
