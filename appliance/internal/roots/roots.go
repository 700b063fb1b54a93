// Package roots is the box's trust store for TLS: the system's roots plus a
// built-in fallback set (golang.org/x/crypto/x509roots/fallback/bundle),
// because a box often ships no CA bundle of its own.
package roots

import (
	"crypto/x509"
	"sync"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// Pool returns the system roots plus the fallback bundle, parsed once. The
// pool is shared: callers that add roots must Clone it first.
var Pool = sync.OnceValue(func() *x509.CertPool {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for r := range bundle.Roots() {
		cert, err := x509.ParseCertificate(r.Certificate)
		if err != nil {
			continue
		}
		if r.Constraint != nil {
			pool.AddCertWithConstraint(cert, r.Constraint)
		} else {
			pool.AddCert(cert)
		}
	}
	return pool
})
