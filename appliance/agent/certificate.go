package agent

import (
	"crypto/tls"

	"mailagent/appliance/internal/selfsigned"
)

// SelfSigned is the certificate the box serves TLS with when none is
// configured (WebCertificate).
type SelfSigned struct {
	// Certificate is the pair to serve.
	Certificate tls.Certificate
	// File is the certificate's file in the data directory.
	File string
	// Fingerprint is the certificate's SHA-256 as browsers show it
	// (colon-separated upper-case hex), for the administrator to compare.
	Fingerprint string
}

// WebCertificate returns the self-signed certificate kept in the data
// directory (webui-cert.pem and webui-key.pem), making an ECDSA P-256 one
// for hosts, valid ten years, on the first call or when the stored one is
// damaged or expired. The data directory must exist (MakeDataDir).
func (a *Agent) WebCertificate(hosts []string) (SelfSigned, error) {
	c, fp, err := selfsigned.Load(a.dataDir, hosts)
	if err != nil {
		return SelfSigned{}, err
	}
	// the data directory as given, as the start-up lines name it
	return SelfSigned{Certificate: c, File: a.dataDir + "/" + selfsigned.CertFile, Fingerprint: fp}, nil
}
