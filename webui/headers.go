package webui

// The security headers on every answer of the page.

import (
	"net/http"
)

// ContentSecurityPolicy is the page's CSP: nothing from outside the box, no
// inline script or style, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// HSTS is the Strict-Transport-Security of every answer under TLS.
const HSTS = "max-age=31536000"

// SecurityHeaders sets the security headers on every answer of h: the CSP,
// Referrer-Policy no-referrer, X-Content-Type-Options nosniff,
// X-Frame-Options DENY, Cache-Control no-store under /api/ and on
// /auth.htm, and under TLS Strict-Transport-Security for a year (without
// includeSubDomains: other devices may live under the box's domain).
// Browsers ignore it over a certificate they do not trust, so a
// self-signed certificate's warning can still be clicked through.
func SecurityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", ContentSecurityPolicy)
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		if isAPI(r) || r.URL.Path == "/auth.htm" {
			hd.Set("Cache-Control", "no-store")
		}
		if r.TLS != nil {
			hd.Set("Strict-Transport-Security", HSTS)
		}
		h.ServeHTTP(w, r)
	})
}
