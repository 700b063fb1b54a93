package config

import (
	"os"
	"slices"
	"strings"
	"time"

	"mailagent/board"
)

// Default values that do not come from the board or the OAuth2 mode.
const (
	DefaultMinSeverity            = "warning"
	DefaultPersistSeverity        = "major"
	DefaultMemoryQueueEntries     = 100
	DefaultPersistentQueueEntries = 50
	DefaultDigestWindow           = 30 * time.Second
	DefaultMaxMailsPerHour        = 30
	DefaultKeepaliveInterval      = 24 * time.Hour
)

// WithDefaults returns a copy of c with every empty key that has a default
// filled in: from the board profile (listen address, console; its data
// directory is what Validate keeps the file keys out of), from the
// OAuth2 mode's preset (SMTP server, scopes, endpoints) and from the fixed
// defaults above. The file itself keeps only what was written.
func (c Config) WithDefaults(p board.Profile) Config {
	d := c
	d.dataDir = p.DataDir
	d.Mail.To = slices.Clone(c.Mail.To)
	d.OAuth2.Scopes = slices.Clone(c.OAuth2.Scopes)
	d.HTTP.TrustProxy = slices.Clone(c.HTTP.TrustProxy)
	if d.Device.Name == "" {
		d.Device.Name = hostname()
	}
	mode, hasMode := LookupMode(d.OAuth2.Mode)

	if d.SMTP.Host == "" && hasMode {
		d.SMTP.Host = mode.SMTPHost
	}
	if d.SMTP.TLS == "" {
		d.SMTP.TLS = "starttls"
	}
	if d.SMTP.Port == 0 {
		switch {
		case hasMode && mode.SMTPPort != 0 && d.SMTP.TLS == "starttls":
			d.SMTP.Port = mode.SMTPPort
		case d.SMTP.TLS == "tls":
			d.SMTP.Port = 465
		case d.SMTP.TLS == "none":
			d.SMTP.Port = 25
		default:
			d.SMTP.Port = 587
		}
	}
	if d.SMTP.Auth == "" {
		switch {
		case d.OAuth2.Mode != "":
			d.SMTP.Auth = "oauth2"
		case d.SMTP.User != "" || d.SMTP.Password.IsSet():
			d.SMTP.Auth = "password"
		default:
			d.SMTP.Auth = "none"
		}
	}
	if d.SMTP.User == "" && d.SMTP.Auth == "oauth2" {
		d.SMTP.User = d.OAuth2.mailbox(d.Mail.From)
	}
	if d.SMTP.HELO == "" {
		d.SMTP.HELO = heloName(hostname())
	}

	if hasMode {
		if len(d.OAuth2.Scopes) == 0 {
			d.OAuth2.Scopes = slices.Clone(mode.Scopes)
		}
		if mode.Microsoft {
			if d.OAuth2.Authority == "" {
				d.OAuth2.Authority = microsoftAuthority
			}
			base := strings.TrimSuffix(d.OAuth2.Authority, "/") + "/" + d.OAuth2.Tenant + "/oauth2/v2.0/"
			if d.OAuth2.AuthURL == "" {
				d.OAuth2.AuthURL = base + "authorize"
			}
			if d.OAuth2.TokenURL == "" {
				d.OAuth2.TokenURL = base + "token"
			}
			if d.OAuth2.DeviceAuthURL == "" {
				d.OAuth2.DeviceAuthURL = base + "devicecode"
			}
		}
		if d.OAuth2.AuthURL == "" {
			d.OAuth2.AuthURL = mode.AuthURL
		}
		if d.OAuth2.TokenURL == "" {
			d.OAuth2.TokenURL = mode.TokenURL
		}
		if d.OAuth2.DeviceAuthURL == "" {
			d.OAuth2.DeviceAuthURL = mode.DeviceAuthURL
		}
	}
	if d.OAuth2.LoginHint == "" {
		d.OAuth2.LoginHint = d.Mail.From
	}

	if d.Alarms.MinSeverity == "" {
		d.Alarms.MinSeverity = DefaultMinSeverity
	}
	if d.Alarms.PersistSeverity == "" {
		d.Alarms.PersistSeverity = DefaultPersistSeverity
	}
	if d.Alarms.MemoryQueueEntries == 0 {
		d.Alarms.MemoryQueueEntries = DefaultMemoryQueueEntries
	}
	if d.Alarms.PersistentQueueEntries == 0 {
		d.Alarms.PersistentQueueEntries = DefaultPersistentQueueEntries
	}
	if !c.isSet("alarms.digest_window") {
		d.Alarms.DigestWindow = NewDuration(DefaultDigestWindow)
	}
	if d.Alarms.MaxMailsPerHour == 0 {
		d.Alarms.MaxMailsPerHour = DefaultMaxMailsPerHour
	}
	if !c.isSet("alarms.keepalive_interval") {
		d.Alarms.KeepaliveInterval = NewDuration(DefaultKeepaliveInterval)
	}
	if d.HTTP.Listen == "" {
		d.HTTP.Listen = p.Listen
	}
	if d.Syslog.MinSeverity == "" {
		d.Syslog.MinSeverity = DefaultMinSeverity
	}
	if d.Console.Port == "" {
		d.Console.Port = p.ConsolePort
	}
	if d.Console.Baud == 0 {
		d.Console.Baud = p.ConsoleBaud
	}
	return d
}

// isSet reports whether key is set in c.
func (c Config) isSet(name string) bool {
	k, err := LookupKey(name)
	return err == nil && k.IsSet(&c)
}

// mailbox is the mailbox an OAuth2 token sends as: the service account's
// subject, else the sender address.
func (o OAuth2) mailbox(from string) string {
	if o.Mode == "google-service-account" && o.Subject != "" {
		return o.Subject
	}
	return from
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "mailagent"
	}
	return h
}

// heloName makes a name usable in EHLO from the host name: letters,
// digits, dots and hyphens only.
func heloName(name string) string {
	h := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '-'
	}, name)
	h = strings.Trim(h, "-.")
	if h == "" {
		return "localhost"
	}
	return h
}
