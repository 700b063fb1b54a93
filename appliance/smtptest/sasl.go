package smtptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// The server side of the SASL mechanisms. go-smtp calls Next with the
// client's response (nil for "AUTH MECH" without one) and writes the
// challenge as a 334, or the error as the final reply.

const mechXOAuth2 = "XOAUTH2"

// plainServer is RFC 4616 PLAIN: authzid NUL authcid NUL password. The
// initial response may be inline (it is short) or follow an empty 334.
type plainServer struct {
	se   *session
	step int
}

func (p *plainServer) Next(resp []byte) ([]byte, bool, error) {
	p.step++
	if p.step == 1 && resp == nil {
		return []byte{}, false, nil
	}
	parts := bytes.Split(resp, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		p.se.s.violation("malformed PLAIN response: want authzid NUL user NUL password, got %d fields", len(parts))
		p.se.verdict("PLAIN", "", "malformed response")
		return nil, true, errMalformed
	}
	authz, user, pass := string(parts[0]), string(parts[1]), string(parts[2])
	if authz != "" && authz != user {
		p.se.verdict("PLAIN", user, "authorization identity differs from user")
		return nil, true, errBadPassword
	}
	return p.se.checkPassword("PLAIN", user, pass)
}

// loginServer is the obsolete LOGIN mechanism: Username: / Password:
// prompts; the user name may come inline.
type loginServer struct {
	se   *session
	step int
	user string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	l.step++
	switch {
	case l.step == 1 && resp == nil:
		return []byte("Username:"), false, nil
	case l.user == "":
		if len(resp) == 0 {
			l.se.s.violation("LOGIN: empty user name")
			l.se.verdict("LOGIN", "", "malformed response")
			return nil, true, errMalformed
		}
		l.user = string(resp)
		return []byte("Password:"), false, nil
	}
	return l.se.checkPassword("LOGIN", l.user, string(resp))
}

func (se *session) checkPassword(mech, user, pass string) ([]byte, bool, error) {
	want, ok := se.s.o.Users[user]
	switch {
	case !ok:
		se.verdict(mech, user, "unknown user")
	case want != pass:
		se.verdict(mech, user, "wrong password")
	default:
		se.verdict(mech, user, "")
		return nil, true, nil
	}
	return nil, true, errBadPassword
}

// checkToken says why a token is refused for mailbox, or "" if it is valid.
func (se *session) checkToken(mailbox, token string) string {
	owner, ok := se.s.o.Tokens[token]
	if !ok && se.s.o.TokenOwner != nil {
		owner, ok = se.s.o.TokenOwner(token)
	}
	switch {
	case !ok:
		return "unknown token"
	case !strings.EqualFold(owner, mailbox):
		return fmt.Sprintf("token is for %s, not %s", owner, mailbox)
	}
	return ""
}

// inline refuses an initial response on the AUTH line: real servers answer
// 555 for a 2 KB token (RFC 4954 §4), so the two-step form is required.
func (se *session) inline(mech string, resp []byte) ([]byte, bool, error) {
	se.s.violation("%s initial response (%d bytes) inline on the AUTH line; send it after the 334", mech, len(resp))
	se.verdict(mech, "", "initial response inline")
	return nil, true, errLineTooLong
}

// xoauth2Server is Google's XOAUTH2:
// base64("user=" mailbox ^A "auth=Bearer " token ^A ^A), sent after the 334.
type xoauth2Server struct {
	se   *session
	step int
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	x.step++
	switch x.step {
	case 1:
		if resp != nil {
			return x.se.inline(mechXOAuth2, resp)
		}
		return []byte{}, false, nil
	case 2:
		user, token, why := parseXOAuth2(resp)
		if why != "" {
			x.se.s.violation("malformed XOAUTH2 response: %s", why)
			x.se.verdict(mechXOAuth2, user, "malformed response")
			return nil, true, errMalformed
		}
		if reason := x.se.checkToken(user, token); reason != "" {
			x.se.verdict(mechXOAuth2, user, reason)
			if !x.se.s.o.GmailChallenge {
				return nil, true, errTokenRefused
			}
			ch, _ := json.Marshal(map[string]string{"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"})
			return ch, false, nil
		}
		x.se.verdict(mechXOAuth2, user, "")
		return nil, true, nil
	}
	// The reply to the error challenge must be empty.
	if len(resp) != 0 {
		x.se.s.violation("XOAUTH2: the reply to the error challenge must be empty, got %d bytes", len(resp))
	}
	return nil, true, errGmailRefused
}

func parseXOAuth2(b []byte) (user, token, why string) {
	f := strings.Split(string(b), "\x01")
	if len(f) != 4 || f[2] != "" || f[3] != "" {
		return "", "", "want user=...^Aauth=Bearer ...^A^A"
	}
	user, ok := strings.CutPrefix(f[0], "user=")
	if !ok || user == "" {
		return "", "", "no user="
	}
	auth, ok := strings.CutPrefix(f[1], "auth=")
	if !ok || len(auth) < 7 || !strings.EqualFold(auth[:7], "Bearer ") {
		return user, "", "no auth=Bearer"
	}
	token = auth[7:]
	if token == "" || strings.ContainsFunc(token, isControl) {
		return user, "", "empty token or control characters in it"
	}
	return user, token, ""
}

// oauthBearerServer is RFC 7628 OAUTHBEARER:
// "n,a=" mailbox "," ^A "host=" h ^A "port=" p ^A "auth=Bearer " token ^A ^A.
// a= is required, as Dovecot requires it.
type oauthBearerServer struct {
	se   *session
	step int
}

func (o *oauthBearerServer) Next(resp []byte) ([]byte, bool, error) {
	const mech = "OAUTHBEARER"
	o.step++
	switch o.step {
	case 1:
		if resp != nil {
			return o.se.inline(mech, resp)
		}
		return []byte{}, false, nil
	case 2:
		m, why := parseOAuthBearer(resp)
		if why == "" && m.port != "" && m.port != fmt.Sprint(o.se.s.port) {
			why = fmt.Sprintf("port=%s but the server listens on %d", m.port, o.se.s.port)
		}
		if why != "" {
			o.se.s.violation("malformed OAUTHBEARER response: %s", why)
			o.se.verdict(mech, m.user, "malformed response")
			return nil, true, errMalformed
		}
		if reason := o.se.checkToken(m.user, m.token); reason != "" {
			o.se.verdict(mech, m.user, reason)
			ch, _ := json.Marshal(map[string]string{"status": "invalid_token", "schemes": "bearer", "scope": "https://mail.google.com/"})
			return ch, false, nil
		}
		o.se.verdict(mech, m.user, "")
		return nil, true, nil
	}
	// RFC 7628 §3.2.3: the client answers the error challenge with a
	// single ^A (an SMTP "*" is also legal; go-smtp handles that itself).
	if !bytes.Equal(resp, []byte{1}) {
		o.se.s.violation("OAUTHBEARER: the reply to the error challenge must be a single ^A, got %q", resp)
	}
	return nil, true, errAuthFailed
}

type bearerMessage struct{ user, host, port, token string }

func parseOAuthBearer(b []byte) (m bearerMessage, why string) {
	s := string(b)
	flag, rest, ok := strings.Cut(s, ",")
	if !ok || (flag != "n" && flag != "y") {
		return m, `gs2 header must start with "n," or "y,"`
	}
	authz, rest, ok := strings.Cut(rest, ",")
	if !ok {
		return m, "gs2 header has no second comma"
	}
	name, ok := strings.CutPrefix(authz, "a=")
	if !ok || name == "" {
		return m, "no a= (Dovecot requires it)"
	}
	if m.user, ok = unescapeSASLName(name); !ok {
		return m, "a= has a bad escape (only =2C and =3D)"
	}
	if !strings.HasPrefix(rest, "\x01") || !strings.HasSuffix(rest, "\x01\x01") || len(rest) < 3 {
		return m, "key/value pairs must be framed by ^A and end in ^A^A"
	}
	for kv := range strings.SplitSeq(rest[1:len(rest)-2], "\x01") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsFunc(k, func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') }) {
			return m, fmt.Sprintf("bad key/value pair %q", kv)
		}
		switch k {
		case "host":
			m.host = v
		case "port":
			m.port = v
		case "auth":
			if len(v) < 7 || !strings.EqualFold(v[:7], "Bearer ") {
				return m, "auth= is not a Bearer token"
			}
			m.token = v[7:]
		}
	}
	if m.token == "" || strings.ContainsFunc(m.token, isControl) {
		return m, "no auth=Bearer token, or control characters in it"
	}
	return m, ""
}

// unescapeSASLName undoes RFC 5801's saslname escaping.
func unescapeSASLName(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
