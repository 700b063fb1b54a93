package agent

// The box's state as one value. Agent.Status builds it once, with the
// agent's own clock; "mailagent status" prints it as text or JSON,
// /api/status answers it, and the console's banner is read from it, so the
// three cannot disagree.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/config"
	"mailagent/appliance/oauth"
)

// Status is everything the box says about its mail, in plain words. It
// never holds a secret. Its JSON form is the one schema of "mailagent
// status --json" and GET /api/status (README, "Status").
type Status struct {
	Board   string `json:"board"`
	DataDir string `json:"data_dir"`
	// Running is true while the agent runs (it takes alarms and mails them).
	Running bool `json:"agent_running"`
	// Clock is "ok", or why the system clock cannot be trusted.
	Clock string `json:"clock"`
	// Warnings name damaged files and what is used instead.
	Warnings []string `json:"warnings,omitempty"`
	// Problems are what keeps the box from sending mail, key by key; a
	// problem without a key says that there is no configuration file yet.
	Problems   []KeyProblem `json:"problems,omitempty"`
	Auth       string       `json:"auth"`
	MailFrom   string       `json:"mail_from,omitempty"`
	MailTo     []string     `json:"mail_to,omitempty"`
	SMTPServer string       `json:"smtp_server,omitempty"` // host:port (tls)

	Queue    QueueReport    `json:"queue"`
	Delivery DeliveryReport `json:"delivery"`
	// OAuth2 is the token state, while smtp.auth is oauth2 with a mode.
	OAuth2 *TokenReport `json:"oauth2,omitempty"`
}

// KeyProblem is one configuration problem.
type KeyProblem struct {
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

func (p KeyProblem) String() string {
	if p.Key == "" {
		return p.Message
	}
	return p.Key + ": " + p.Message
}

// QueueReport is what waits to be mailed.
type QueueReport struct {
	// Memory is what waits in memory (0 while the agent is not running),
	// Spooled what waits on flash; Oldest is the oldest alarm waiting.
	Memory  int        `json:"memory"`
	Spooled int        `json:"spooled"`
	Oldest  *time.Time `json:"oldest,omitempty"`
	// Dropped counts the alarms dropped for room and not yet reported in
	// a mail, by severity ("2 warning, 1 info").
	Dropped string `json:"dropped,omitempty"`
	// Corrupt counts the damaged spool records set aside when the spool
	// was read for this status, LastDamage says what was wrong.
	Corrupt    int    `json:"corrupt,omitempty"`
	LastDamage string `json:"last_damage,omitempty"`
	// SetAside counts the damaged records kept as spool/*.bad, whoever
	// found them, until they are removed; NewestBad names the newest.
	SetAside  int    `json:"set_aside,omitempty"`
	NewestBad string `json:"newest_bad,omitempty"`
}

// DeliveryReport is how sending goes, as the running agent knows it.
type DeliveryReport struct {
	LastMail  *time.Time `json:"last_mail,omitempty"`
	LastReply string     `json:"last_reply,omitempty"`
	// Failing is the delivery error while mail cannot be delivered, since
	// FailingSince, after Failures tries in a row; Hint says what to do.
	Failing      string     `json:"failing,omitempty"`
	FailingSince *time.Time `json:"failing_since,omitempty"`
	Failures     int        `json:"failures,omitempty"`
	Hint         string     `json:"hint,omitempty"`
	NextTry      *time.Time `json:"next_try,omitempty"`
}

// TokenReport is the OAuth2 state in plain words.
type TokenReport struct {
	Mode    string `json:"mode"`
	Account string `json:"account,omitempty"`
	// State is ok, not_authorised, reauth_required, error or busy.
	State string `json:"state"`
	// Summary says the state in a sentence, Fix what to do ("" when
	// nothing needs doing).
	Summary         string     `json:"summary"`
	Fix             string     `json:"fix,omitempty"`
	HasRefreshToken bool       `json:"has_refresh_token"`
	Expiry          *time.Time `json:"expiry,omitempty"` // of the access token in memory
	Obtained        *time.Time `json:"obtained,omitempty"`
	Refreshed       *time.Time `json:"refreshed,omitempty"`
	LastError       string     `json:"last_error,omitempty"`
	LastErrorAt     *time.Time `json:"last_error_at,omitempty"`
	NextTry         *time.Time `json:"next_try,omitempty"`
	// SecretExpires is oauth2.secret_expires (YYYY-MM-DD), SecretDaysLeft
	// the whole days until then by the agent's clock, SecretNote what to
	// do when it is 30 days or less.
	SecretExpires  string `json:"secret_expires,omitempty"`
	SecretDaysLeft *int   `json:"secret_days_left,omitempty"`
	SecretNote     string `json:"secret_note,omitempty"`
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// liveTimeout bounds the question to the running agent when Status is
// built outside it (the command line, the console on a terminal).
const liveTimeout = 3 * time.Second

// Status gathers the box's state. It only reads: a missing spool
// directory is not created, and no token request is made.
func (a *Agent) Status(ctx context.Context) Status {
	c := a.Config()
	s := Status{Board: a.board.Name, DataDir: a.dataDir, Clock: "ok", Warnings: a.Warnings(), Auth: c.SMTP.Auth,
		MailFrom: c.Mail.From, MailTo: c.Mail.To}
	if c.SMTP.Host != "" {
		s.SMTPServer = fmt.Sprintf("%s:%d (%s)", c.SMTP.Host, c.SMTP.Port, c.SMTP.TLS)
	}
	if now, unset := a.ClockUnset(); unset {
		s.Clock = fmt.Sprintf("not set: it reads %s, before this build; OAuth2 and TLS fail until it is set (NTP)", now.UTC().Format(time.RFC3339))
	}
	s.Problems = a.keyProblems(&c)

	live, err := a.liveStatus()
	if errors.Is(err, ErrNotRunning) {
		// Not the running agent (a command, the console on a terminal): ask it.
		lctx, cancel := context.WithTimeout(ctx, liveTimeout)
		live, _ = a.Live(lctx)
		cancel()
	}
	if _, err := a.fs.Stat(a.SpoolDir()); err == nil {
		if q, err := a.Queue(); err == nil {
			s.Queue = QueueReport{Spooled: len(q.Spooled), Dropped: alarm.CountsText(q.Dropped), Corrupt: q.Corrupt,
				LastDamage: q.LastDamage, SetAside: q.SetAside, NewestBad: q.NewestBad}
			if len(q.Spooled) > 0 {
				s.Queue.Oldest = timeOrNil(q.Spooled[0].Time)
			}
		} else {
			s.Warnings = append(s.Warnings, "the alarm queue on flash cannot be read: "+err.Error())
		}
	}
	if live != nil {
		// The running agent also counts what its memory queue holds and dropped.
		s.Running = true
		s.Queue.Memory, s.Queue.Spooled, s.Queue.Dropped = live.Memory, live.Spooled, alarm.CountsText(live.Dropped)
		if !live.Oldest.IsZero() {
			s.Queue.Oldest = timeOrNil(live.Oldest)
		}
		s.Delivery = DeliveryReport{LastMail: timeOrNil(live.LastDelivery), LastReply: live.LastReply,
			Failing: live.Failing, FailingSince: timeOrNil(live.FailingSince), Failures: live.Failures,
			Hint: live.Hint, NextTry: timeOrNil(live.NextTry)}
	}
	if c.SMTP.Auth == "oauth2" && c.OAuth2.Mode != "" {
		var more config.Problems
		s.OAuth2, more = a.tokenReport(&c, live)
		s.Problems = addProblems(s.Problems, more)
	}
	return s
}

// addProblems adds to list the problems of p it does not hold yet.
func addProblems(list []KeyProblem, p config.Problems) []KeyProblem {
	for _, e := range p {
		kp := KeyProblem{Key: e.Key, Message: e.Err.Error()}
		if !slices.Contains(list, kp) {
			list = append(list, kp)
		}
	}
	return list
}

// keyProblems lists what keeps c from sending mail: a configuration that
// cannot be read, alone; else first that there is no file yet, then every
// problem of config.Validate.
func (a *Agent) keyProblems(c *config.Config) []KeyProblem {
	if err := a.unreadable(); err != nil {
		// what the defaults lack is beside the point: the file is
		return []KeyProblem{{Message: err.Error()}}
	}
	var out []KeyProblem
	a.mu.Lock()
	missing := a.file.Missing
	a.mu.Unlock()
	if missing {
		out = append(out, KeyProblem{Message: "no configuration yet: " + a.ConfigPath() + " does not exist"})
	}
	if p, ok := config.AsProblems(config.Validate(c)); ok {
		for _, e := range p {
			out = append(out, KeyProblem{Key: e.Key, Message: e.Err.Error()})
		}
	}
	return out
}

// tokenReport puts the token state into words: the running agent's when
// it answered (it knows its access token and backoff), else tokens.toml's.
// When the OAuth2 settings cannot be used, problems are the keys at fault
// (the validator's, and what parsing keys and certificates found).
func (a *Agent) tokenReport(c *config.Config, live *LiveStatus) (r *TokenReport, problems config.Problems) {
	var st oauth.Status
	_, src, err := a.oauthFor(c)
	switch {
	case err != nil:
		r := &TokenReport{Mode: c.OAuth2.Mode, State: oauth.StateError, Summary: "the OAuth2 settings cannot be used", Fix: Hint(err)}
		if p, ok := config.AsProblems(err); ok {
			var keys []string
			for _, e := range p {
				if !slices.Contains(keys, e.Key) {
					keys = append(keys, e.Key)
				}
			}
			r.Fix = "fix the keys named as problems: " + strings.Join(keys, ", ")
			return r, p
		}
		if r.Fix == "" {
			r.Fix = "check the OAuth2 settings: " + err.Error()
		}
		return r, nil
	case live != nil && live.Token != nil:
		st = *live.Token
	default:
		st = src.Status()
	}
	m, _ := config.LookupMode(c.OAuth2.Mode)
	r = &TokenReport{Mode: st.Mode, Account: st.Account, State: st.State, Fix: st.Hint, HasRefreshToken: st.HasRefreshToken,
		Expiry: timeOrNil(st.Expiry), Obtained: timeOrNil(st.Obtained), Refreshed: timeOrNil(st.Refreshed),
		LastError: st.LastError, LastErrorAt: timeOrNil(st.LastErrorAt), NextTry: timeOrNil(st.RetryAt)}
	const authorise = "authorise the box: Authorise on the web page, authorize on the console, or mailagent authorize"
	switch st.State {
	case oauth.StateOK:
		r.Summary = "ready"
		if st.Account != "" {
			r.Summary = "authorised as " + st.Account
		}
		if !st.HasRefreshToken && m.Interactive {
			r.Summary = "not authorised yet"
		}
	case "not_authorised":
		r.Summary = "not authorised yet"
		if r.Fix == "" {
			r.Fix = authorise + ", and sign in as the mailbox"
		}
	case oauth.StateReauthRequired:
		r.Summary = "the provider no longer accepts the grant: a person must authorise again"
		if r.Fix == "" {
			r.Fix = authorise
		}
	case oauth.StateError:
		r.Summary = "the last token request failed"
	case "busy":
		r.Summary = "busy talking to the provider"
	default:
		r.Summary = st.State
	}
	if d := c.OAuth2.SecretExpires; !d.IsZero() {
		r.SecretExpires = d.Format("2006-01-02")
		days := daysLeft(d.Time, a.now())
		r.SecretDaysLeft = &days
		switch {
		case days <= 0:
			r.SecretNote = "expired: create a new client secret at the provider, then set oauth2.client_secret and oauth2.secret_expires"
		case days <= 30:
			r.SecretNote = "renew it soon: create a new client secret at the provider, then set oauth2.client_secret and oauth2.secret_expires"
		}
	}
	return r, nil
}

// daysLeft is the days from now until t, a part of a day counted as a
// day: what the secret's expiry warnings and the status both say.
func daysLeft(t, now time.Time) int {
	return int(t.Sub(now).Hours()/24 + 0.999)
}
