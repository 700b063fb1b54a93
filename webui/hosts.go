package webui

// The Host check: the page answers only to names of this box, so that a
// page elsewhere cannot rebind its own name to the box's address (DNS
// rebinding) and drive the admin's browser against it.

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// hostOf is the host of a Host header, without port or final dot, in
// lower case; "" for none.
func hostOf(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
}

// urlHost is the host of a URL as hostOf writes it; "" when there is none.
func urlHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return hostOf(u.Host)
}

// hostAllowed reports whether the page answers to host: an IP address
// (a browser that reached the box by its address cannot be a rebinding
// page: its origin is the address itself), localhost and names under
// .localhost, the names Options.Hosts gives (the listen address, the host
// name), and the hosts of http.base_url and oauth2.redirect_url, read
// again when none of the others matches, so a change on the page counts at
// once.
func (s *Server) hostAllowed(hostport string) bool {
	h := hostOf(hostport)
	if h == "" || h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if s.hosts[h] || h == urlHost(s.baseURL) {
		return true
	}
	if c, err := s.b.Config(); err == nil {
		eff := c.WithDefaults(s.b.Board())
		return h == urlHost(eff.HTTP.BaseURL) || h == urlHost(eff.OAuth2.RedirectURL)
	}
	return false
}

// hostGuard answers 421 to a request whose Host is not one of this box's
// (hostAllowed), saying what to set, before the page's routes see it. The
// alarm endpoints are left out: other boxes post by whatever name they
// know, with credentials no rebinding page has.
func (s *Server) hostGuard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/alarm" || r.URL.Path == "/alertmanager" || s.hostAllowed(r.Host) {
			h.ServeHTTP(w, r)
			return
		}
		host := hostOf(r.Host)
		s.hostLog.Log(s.log, slog.LevelWarn, "request for another host name refused (set http.base_url if the box has this name)",
			"host", oneLine(host, 100), "remote", r.RemoteAddr, "path", r.URL.Path)
		msg := fmt.Sprintf("this box does not answer to the name %q. Open it by its IP address or as localhost, "+
			"or, if %q is the box's name, set http.base_url to the address you use (for example https://%s%s) on the console "+
			"or with \"mailagent config set http.base_url …\"",
			oneLine(host, 100), oneLine(host, 100), oneLine(host, 100), portOf(r.Host))
		if isAPI(r) {
			writeJSON(w, http.StatusMisdirectedRequest, apiError{Error: "wrong host name", Hint: msg})
			return
		}
		http.Error(w, msg, http.StatusMisdirectedRequest)
	})
}

// portOf is ":port" of a Host header, "" without one.
func portOf(hostport string) string {
	if _, port, err := net.SplitHostPort(hostport); err == nil && port != "" {
		return ":" + port
	}
	return ""
}
