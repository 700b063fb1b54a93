package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Problems is every problem Validate found, each naming its key.
type Problems []*KeyError

func (p Problems) Error() string {
	lines := make([]string, len(p))
	for i, e := range p {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// For returns the problems with key.
func (p Problems) For(key string) Problems {
	var out Problems
	for _, e := range p {
		if e.Key == key {
			out = append(out, e)
		}
	}
	return out
}

// Validate checks a configuration with its defaults filled in (WithDefaults)
// and returns every problem at once as Problems, or nil. Messages are plain
// words for the administrator: what is wrong and, where it helps, what to do.
func Validate(c *Config) error {
	var v validator
	v.mail(c)
	v.smtp(c)
	if c.OAuth2.Mode != "" || c.SMTP.Auth == "oauth2" {
		v.oauth2(c) // see ValidateOAuth2
	}
	v.alarms(c)
	v.listeners(c)
	v.files(c)
	if len(v) == 0 {
		return nil
	}
	return Problems(sortedKeyErrors(v))
}

type validator []*KeyError

func (v *validator) add(key, format string, args ...any) {
	*v = append(*v, &KeyError{Key: key, Err: fmt.Errorf(format, args...)})
}

// missing adds a problem of a needed key that is not set; alts are the
// keys any one of which would do (nil: key alone).
func (v *validator) missing(key string, alts []string, format string, args ...any) {
	if alts == nil {
		alts = []string{key}
	}
	*v = append(*v, &KeyError{Key: key, Err: fmt.Errorf(format, args...), Missing: alts})
}

func (v *validator) address(key, addr string) {
	if strings.ContainsAny(addr, "\r\n\x00<>, ") {
		v.add(key, "%q is not a mail address: it may not contain spaces, commas, angle brackets or line breaks", addr)
		return
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr || strings.Count(addr, "@") != 1 {
		v.add(key, "%q is not a mail address (expected name@domain)", addr)
	}
}

func (v *validator) mail(c *Config) {
	if c.Mail.From == "" {
		v.missing("mail.from", nil, "not set: the sender address of alarm mails is needed")
	} else {
		v.address("mail.from", c.Mail.From)
	}
	if len(c.Mail.To) == 0 {
		v.missing("mail.to", nil, "not set: at least one recipient address is needed")
	}
	for _, to := range c.Mail.To {
		v.address("mail.to", to)
	}
	for _, k := range []struct{ key, val string }{
		{"mail.from_name", c.Mail.FromName}, {"mail.to_name", c.Mail.ToName},
		{"mail.subject_prefix", c.Mail.SubjectPrefix}, {"device.name", c.Device.Name},
	} {
		if strings.ContainsAny(k.val, "\r\n") {
			v.add(k.key, "may not contain line breaks")
		}
	}
}

func (v *validator) smtp(c *Config) {
	s := c.SMTP
	if s.Host == "" {
		v.missing("smtp.host", nil, "not set: the name of the submission server is needed (for example smtp.example.com)")
	} else if strings.ContainsAny(s.Host, " /:\r\n") && net.ParseIP(s.Host) == nil {
		v.add("smtp.host", "%q is not a host name", s.Host)
	}
	if s.Port < 1 || s.Port > 65535 {
		v.add("smtp.port", "%d is not a port number (1-65535)", s.Port)
	}
	v.enum(c, "smtp.tls", s.TLS)
	v.enum(c, "smtp.auth", s.Auth)
	if s.TLS == "tls" && s.Port == 587 {
		v.add("smtp.port", "port 587 speaks STARTTLS, not implicit TLS: use tls = \"starttls\" or port 465")
	}
	if s.TLS == "starttls" && s.Port == 465 {
		v.add("smtp.port", "port 465 speaks implicit TLS: use tls = \"tls\"")
	}
	switch s.Auth {
	case "password":
		if s.User == "" {
			v.missing("smtp.user", nil, "not set: password authentication needs a user name")
		}
		if !s.Password.IsSet() {
			v.missing("smtp.password", nil, "not set: password authentication needs a password")
		}
	}
	if s.Auth != "none" && s.TLS == "none" {
		v.add("smtp.tls", "credentials would travel in plain text: use starttls or tls")
	}
	if strings.ContainsAny(s.HELO, " \r\n") {
		v.add("smtp.helo", "%q is not a host name", s.HELO)
	}
}

func (v *validator) alarms(c *Config) {
	a := c.Alarms
	v.enum(c, "alarms.min_severity", a.MinSeverity)
	v.enum(c, "alarms.persist_severity", a.PersistSeverity)
	v.enum(c, "syslog.min_severity", c.Syslog.MinSeverity)
	if a.MemoryQueueEntries < 1 {
		v.add("alarms.memory_queue_entries", "%d: must be at least 1", a.MemoryQueueEntries)
	}
	if a.PersistentQueueEntries < 1 {
		v.add("alarms.persistent_queue_entries", "%d: must be at least 1", a.PersistentQueueEntries)
	}
	if a.MaxMailsPerHour < 1 {
		v.add("alarms.max_mails_per_hour", "%d: must be at least 1", a.MaxMailsPerHour)
	}
	if ki := a.KeepaliveInterval.Duration; ki != 0 && ki < 1e9*60 {
		v.add("alarms.keepalive_interval", "%s is too short: at least 1m", ki)
	}
}

func (v *validator) listeners(c *Config) {
	for _, k := range []struct{ key, val string }{
		{"http.listen", c.HTTP.Listen}, {"syslog.listen_udp", c.Syslog.ListenUDP}, {"syslog.listen_tcp", c.Syslog.ListenTCP},
	} {
		if k.val == "" {
			continue
		}
		_, port, err := net.SplitHostPort(k.val)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			v.add(k.key, "%q is not an address (host:port or :port)", k.val)
		}
	}
	for _, p := range c.HTTP.TrustProxy {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				v.add("http.trust_proxy", "%q is not an IP address or network", p)
			}
		}
	}
	switch {
	case c.HTTP.TLSCert != "" && c.HTTP.TLSKey == "":
		v.missing("http.tls_key", nil, "not set: tls_cert needs the file of its key (set both or neither)")
	case c.HTTP.TLSKey != "" && c.HTTP.TLSCert == "":
		v.missing("http.tls_cert", nil, "not set: tls_key needs the file of its certificate (set both or neither)")
	}
	if c.HTTP.AlarmUser != "" && !c.HTTP.AlarmPassword.IsSet() {
		v.missing("http.alarm_password", nil, "not set: alarm_user needs a password")
	}
	if pw := c.HTTP.AlarmPassword.Reveal(); pw != "" && utf8.RuneCountInString(pw) < MinAlarmPassword {
		v.add("http.alarm_password", "shorter than %d characters: other boxes send it with every alarm over the network, and a short one is guessed; choose a longer one", MinAlarmPassword)
	}
	if c.Console.Baud < 0 {
		v.add("console.baud", "%d is not a speed", c.Console.Baud)
	}
}

// MinAlarmPassword is the fewest characters http.alarm_password takes.
const MinAlarmPassword = 12

// files keeps the keys that name files the box reads (smtp.ca_file,
// http.tls_cert, http.tls_key) off the files mailagent itself writes in
// the data directory: mailagent.toml, tokens.toml, their good copies and
// lock, the page's self-signed certificate and key, temporary files
// (".name123") and everything below it (spool/, run/). What is in those
// comes from the page, the token server or the network (a CA put in
// oauth2.certificate, an alarm's text), so a ca_file there would let a
// session choose whom the box trusts with the SMTP password. A file an
// administrator put in the data directory is fine. Symbolic links are
// followed; nothing is checked while the data directory is not known.
func (v *validator) files(c *Config) {
	if c.dataDir == "" {
		return
	}
	dir := realPath(c.dataDir)
	for _, k := range []struct{ key, val string }{
		{"smtp.ca_file", c.SMTP.CAFile}, {"http.tls_cert", c.HTTP.TLSCert}, {"http.tls_key", c.HTTP.TLSKey},
	} {
		if k.val == "" {
			continue
		}
		rel, err := filepath.Rel(dir, realPath(k.val))
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue // outside
		}
		if ownFile(rel) {
			v.add(k.key, "%q is mailagent's own file in the data directory %s, written from what the page, the token server or the network send: name a file of its own (put there by hand, outside spool/ and run/)", k.val, c.dataDir)
		}
	}
}

// ownFile reports whether rel, a path in the data directory, is one
// mailagent writes there.
func ownFile(rel string) bool {
	if rel == "." || strings.ContainsRune(rel, filepath.Separator) || strings.HasPrefix(rel, ".") {
		return true
	}
	for _, prefix := range []string{FileName, "tokens.toml", "webui-"} {
		if strings.HasPrefix(rel, prefix) {
			return true
		}
	}
	return false
}

// realPath is p absolute with its symbolic links resolved, as far as the
// file or its directory exists.
func realPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	if r, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(r, filepath.Base(abs))
	}
	return abs
}

func (v *validator) enum(c *Config, name, val string) {
	k, err := LookupKey(name)
	if err != nil || val == "" || contains(k.Enum, val) {
		return
	}
	v.add(name, "%q is not one of %s", val, strings.Join(k.Enum, ", "))
}

// AsProblems returns err's Problems, if it has them.
func AsProblems(err error) (Problems, bool) {
	var p Problems
	ok := errors.As(err, &p)
	return p, ok
}
