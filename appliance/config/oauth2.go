package config

import (
	"net"
	"net/url"
	"strings"
)

// Need is a key a mode needs once another key is set.
type Need struct {
	// Key must be set when With is.
	Key, With string
	// Why says what needs it, for the administrator.
	Why string
}

// Refusal is a value a mode cannot work with.
type Refusal struct {
	// Key is the key whose value is refused.
	Key string
	// Refused reports whether the value is refused. It is given the
	// value as text (a list comma-separated, a secret revealed) and only
	// when the key is set.
	Refused func(v string) bool
	// Why says what is wrong and what to do instead, for the
	// administrator. For a key that is not a secret it has one %q, which
	// quotes the value; a secret's never shows it.
	Why string
}

// Refusals shared by several modes.
var (
	// Microsoft, reply-url.md: redirect URIs must be https, except
	// http://localhost and http://127.0.0.1 (any port); [::1] is not
	// supported; at most 256 characters.
	entraRedirectScheme = Refusal{Key: "oauth2.redirect_url", Refused: notHTTPSOrLocalhost,
		Why: "%q: Microsoft accepts only https redirect URIs, except http://localhost and http://127.0.0.1: register an https address of this box, or http://localhost/auth.htm and paste the address the browser ends on (mailagent authorize --paste)"}
	entraRedirectIPv6 = Refusal{Key: "oauth2.redirect_url", Refused: hostIsIPv6Loopback,
		Why: "%q: Microsoft does not accept [::1] in a redirect URI: use localhost or 127.0.0.1"}
	entraRedirectLength = Refusal{Key: "oauth2.redirect_url", Refused: func(v string) bool { return len(v) > 256 },
		Why: "%q is longer than the 256 characters Microsoft accepts in a redirect URI: register a shorter address"}
	// Microsoft, v2-oauth2-auth-code-flow.md: the token answer has a
	// refresh_token only when offline_access was asked for.
	entraOfflineAccess = Refusal{Key: "oauth2.scopes", Refused: lacks("offline_access"),
		Why: "%q lacks offline_access, without which Microsoft sends no refresh token and the box stops sending within the hour: add it, or unset oauth2.scopes for the preset"}
	// Google, web-server#uri-validation (the IP ban is confirmed by
	// reports, see PROVIDERS.md §3): no raw IP address as the redirect
	// URI's host, loopback excepted.
	googleRedirectIP = Refusal{Key: "oauth2.redirect_url", Refused: hostIsIPNotLoopback,
		Why: "%q: Google does not accept an IP address in a redirect URI: give the box a DNS name, or register http://localhost/auth.htm and paste the address the browser ends on (mailagent authorize --paste)"}
	// Google, gmail/imap/xoauth2-protocol: https://mail.google.com/ is
	// the SMTP scope; tokens for gmail.send are refused (PROVIDERS.md §3).
	googleMailScope = Refusal{Key: "oauth2.scopes", Refused: lacks("https://mail.google.com/"),
		Why: "%q lacks https://mail.google.com/, the only scope Gmail's SMTP server accepts (gmail.send does not work): add it, or unset oauth2.scopes for the preset"}
)

// ValidateOAuth2 checks the [oauth2] section of c, a configuration with
// its defaults filled in (WithDefaults), for its mode: the mode is one of
// Modes; every key the mode needs is set (Mode.Needs, Mode.NeedsWith); no
// value it refuses is set (Mode.Refuses); the endpoints and the redirect
// URI are http(s) URLs; login_hint is one account name. It returns every
// problem, each naming its key, or nil. These are the section's only
// rules: Validate checks them with this, and so does oauth.NewClient,
// which adds only what it finds parsing keys and certificates.
func ValidateOAuth2(c *Config) Problems {
	var v validator
	v.oauth2(c)
	if len(v) == 0 {
		return nil
	}
	return Problems(v)
}

func (v *validator) oauth2(c *Config) {
	o := c.OAuth2
	if o.Mode == "" {
		v.missing("oauth2.mode", nil, "not set: OAuth2 needs a mode: one of %s", strings.Join(ModeNames(), ", "))
		return
	}
	m, ok := LookupMode(o.Mode)
	if !ok {
		v.add("oauth2.mode", "%q is not a mode (%s)", o.Mode, strings.Join(ModeNames(), ", "))
		return
	}
	for _, need := range m.Needs {
		alts := strings.Split(need, "|")
		set := false
		for _, a := range alts {
			set = set || c.isSet(a)
		}
		if !set {
			v.missing(alts[0], alts, "not set: mode %s needs %s", o.Mode, strings.Join(alts, " or "))
		}
	}
	for _, n := range m.NeedsWith {
		if c.isSet(n.With) && !c.isSet(n.Key) {
			v.missing(n.Key, nil, "not set: %s", n.Why)
		}
	}
	for _, r := range m.Refuses {
		k, err := LookupKey(r.Key)
		if err != nil || !k.IsSet(c) {
			continue
		}
		val := k.text(c)
		if !r.Refused(val) {
			continue
		}
		if k.Kind == SecretKind {
			v.add(r.Key, "%s", r.Why)
		} else {
			v.add(r.Key, r.Why, val)
		}
	}
	for _, k := range []struct{ key, val string }{
		{"oauth2.authority", o.Authority}, {"oauth2.auth_url", o.AuthURL}, {"oauth2.token_url", o.TokenURL},
		{"oauth2.device_auth_url", o.DeviceAuthURL}, {"oauth2.redirect_url", o.RedirectURL},
	} {
		switch {
		case k.val == "":
		case !isHTTPURL(k.val):
			v.add(k.key, "%q is not an http(s) URL", k.val)
		case k.key != "oauth2.redirect_url" && plainHTTPNotLoopback(k.val):
			// The token endpoint gets the client secret, the password
			// or the assertion, and answers tokens.
			v.add(k.key, "%q would carry the client secret and the tokens in clear: use https (plain http only to a loopback address such as 127.0.0.1)", k.val)
		}
	}
	if o.LoginHint != "" && strings.ContainsAny(o.LoginHint, "\r\n ") {
		v.add("oauth2.login_hint", "%q is not an account name", o.LoginHint)
	}
}

// text is the key's value in c as a Refusal sees it: as Get, but a
// secret revealed.
func (k Key) text(c *Config) string {
	if k.Kind == SecretKind {
		return k.value(c).Interface().(Secret).Reveal()
	}
	return k.Get(c)
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// oneOf refuses any of names, in any case: Entra's tenant names are not
// case-sensitive ("Common" is "common").
func oneOf(names ...string) func(string) bool {
	return func(v string) bool {
		for _, n := range names {
			if strings.EqualFold(strings.TrimSpace(v), n) {
				return true
			}
		}
		return false
	}
}

// lacks refuses a list (as Key.Get writes it) without scope.
func lacks(scope string) func(string) bool {
	return func(v string) bool {
		for s := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(s) == scope {
				return false
			}
		}
		return true
	}
}

func spaceAtEnds(v string) bool { return strings.TrimSpace(v) != v }

// redirectHost returns the host of an http(s) URL, without brackets; ok is
// false for anything else (the URL rule reports it).
func redirectHost(v string) (scheme, host string, ok bool) {
	u, err := url.Parse(v)
	if err != nil || !isHTTPURL(v) {
		return "", "", false
	}
	return u.Scheme, u.Hostname(), true
}

// plainHTTPNotLoopback reports an http:// URL whose host is not a loopback
// address (localhost, 127.0.0.0/8, ::1).
func plainHTTPNotLoopback(v string) bool {
	scheme, host, ok := redirectHost(v)
	if !ok || scheme != "http" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

func notHTTPSOrLocalhost(v string) bool {
	scheme, host, ok := redirectHost(v)
	return ok && scheme != "https" && !strings.EqualFold(host, "localhost") && host != "127.0.0.1"
}

func hostIsIPv6Loopback(v string) bool {
	_, host, ok := redirectHost(v)
	ip := net.ParseIP(host)
	return ok && ip != nil && ip.To4() == nil && ip.IsLoopback()
}

func hostIsIPNotLoopback(v string) bool {
	_, host, ok := redirectHost(v)
	ip := net.ParseIP(host)
	return ok && ip != nil && !ip.IsLoopback()
}
