package webui

// trust_proxy: the admin web server in front may name the logged-in user.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"unicode"

	"mailagent/appliance/lograte"
)

// DefaultProxyHeader is the header ProxyAuth reads when none is named.
const DefaultProxyHeader = "X-Remote-User"

type proxyUserKey struct{}

func proxyUserFrom(r *http.Request) (string, bool) {
	u, ok := r.Context().Value(proxyUserKey{}).(string)
	return u, ok && u != ""
}

// ParseTrusted parses [http] trust_proxy: IP addresses and CIDR prefixes.
func ParseTrusted(trusted []string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, t := range trusted {
		t = strings.TrimSpace(t)
		if strings.Contains(t, "/") {
			p, err := netip.ParsePrefix(t)
			if err != nil {
				return nil, fmt.Errorf("trust_proxy %q: %w", t, err)
			}
			ps = append(ps, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(t)
		if err != nil {
			return nil, fmt.Errorf("trust_proxy %q: %w", t, err)
		}
		a = a.Unmap()
		ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
	}
	return ps, nil
}

// ProxyAuth returns the trust_proxy middleware. When a request comes
// straight from one of the trusted addresses (IPs or CIDRs of [http]
// trust_proxy; RemoteAddr, never X-Forwarded-For) and header names a user,
// RequireSession lets it in as that user without a cookie. From any other
// address the header is ignored and the attempt logged, a line a minute
// at most with the count held back, since anyone can send the header. An
// empty header means DefaultProxyHeader; an empty trusted list trusts
// nobody.
func ProxyAuth(trusted []string, header string, log *slog.Logger) (func(http.Handler) http.Handler, error) {
	ps, err := ParseTrusted(trusted)
	if err != nil {
		return nil, err
	}
	if header == "" {
		header = DefaultProxyHeader
	}
	header = http.CanonicalHeaderKey(header)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var malformed, untrusted lograte.Limiter
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user := strings.TrimSpace(r.Header.Get(header))
			if user == "" {
				h.ServeHTTP(w, r)
				return
			}
			if len(user) > 256 || strings.ContainsFunc(user, unicode.IsControl) {
				malformed.Log(log, slog.LevelWarn, "proxy user header malformed", "header", header, "remote", r.RemoteAddr)
				h.ServeHTTP(w, r)
				return
			}
			if !fromTrusted(r.RemoteAddr, ps) {
				untrusted.Log(log, slog.LevelWarn, "proxy user header ignored from untrusted address", "header", header, "remote", r.RemoteAddr)
				h.ServeHTTP(w, r)
				return
			}
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), proxyUserKey{}, user)))
		})
	}, nil
}

func fromTrusted(remote string, ps []netip.Prefix) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
