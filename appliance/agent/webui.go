package agent

// The agent as the web page sees it (webui.Backend): status in plain words,
// the configuration as one transaction, authorisation with the grants kept
// here by their state, the test mail, the recent alarms and the admin
// password hash.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/config"
	"mailagent/appliance/oauth"
	"mailagent/board"
)

// RecentAlarmsKept is how many accepted alarms the page lists.
const RecentAlarmsKept = 20

// RecentAlarm is an alarm Accept was given, and what became of it.
type RecentAlarm struct {
	// At is when it arrived.
	At    time.Time   `json:"at"`
	Alarm alarm.Alarm `json:"alarm"`
	// Result is "queued", or why it was not.
	Result string `json:"result"`
}

// recentAlarms is a ring of the last RecentAlarmsKept alarms.
type recentAlarms struct {
	mu   sync.Mutex
	ring [RecentAlarmsKept]RecentAlarm
	next int
	n    int
}

func (r *recentAlarms) add(at time.Time, al alarm.Alarm, result string) {
	r.mu.Lock()
	r.ring[r.next] = RecentAlarm{At: at, Alarm: al, Result: result}
	r.next = (r.next + 1) % len(r.ring)
	r.n = min(r.n+1, len(r.ring))
	r.mu.Unlock()
}

// list returns the alarms, newest first.
func (r *recentAlarms) list() []RecentAlarm {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RecentAlarm, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.ring[(r.next-i+len(r.ring))%len(r.ring)])
	}
	return out
}

// RecentAlarms lists the last alarms Accept was given, newest first.
func (a *Agent) RecentAlarms() []RecentAlarm { return a.recent.list() }

// PageStatus is what the web page shows at the top: the same facts as
// "mailagent status", each with its plain-language cause and fix. It never
// holds a secret.
type PageStatus struct {
	Board   string `json:"board"`
	Running bool   `json:"agent_running"`
	// Clock is "" while the clock is fine, else why not.
	Clock    string   `json:"clock,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	// Problems are what keeps the box from sending mail, key by key.
	Problems []KeyProblem `json:"problems,omitempty"`
	Auth     string       `json:"auth"`
	Token    *TokenReport `json:"token,omitempty"`

	Memory     int        `json:"memory"`
	Spooled    int        `json:"spooled"`
	Oldest     *time.Time `json:"oldest,omitempty"`
	Dropped    string     `json:"dropped,omitempty"`
	Corrupt    int        `json:"corrupt,omitempty"`
	SetAside   int        `json:"set_aside,omitempty"` // damaged records kept as spool/*.bad
	NewestBad  string     `json:"newest_bad,omitempty"`
	Failures   int        `json:"failures,omitempty"` // delivery tries failed in a row
	LastMail   *time.Time `json:"last_mail,omitempty"`
	LastReply  string     `json:"last_reply,omitempty"`
	Failing    string     `json:"failing,omitempty"`
	Hint       string     `json:"hint,omitempty"`
	NextTry    *time.Time `json:"next_try,omitempty"`
	MailFrom   string     `json:"mail_from,omitempty"`
	MailTo     []string   `json:"mail_to,omitempty"`
	SMTPServer string     `json:"smtp_server,omitempty"`

	SecretExpires  string `json:"secret_expires,omitempty"`
	SecretDaysLeft *int   `json:"secret_days_left,omitempty"`
	SecretNote     string `json:"secret_note,omitempty"`
}

// KeyProblem is one configuration problem.
type KeyProblem struct {
	Key     string `json:"key"`
	Message string `json:"message"`
}

// TokenReport is the OAuth2 state in plain words.
type TokenReport struct {
	Mode    string `json:"mode"`
	Account string `json:"account,omitempty"`
	State   string `json:"state"`
	// Summary says the state in a sentence, Fix what to do ("" when
	// nothing needs doing).
	Summary     string     `json:"summary"`
	Fix         string     `json:"fix,omitempty"`
	Expiry      *time.Time `json:"expiry,omitempty"`
	Refreshed   *time.Time `json:"refreshed,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	NextTry     *time.Time `json:"next_try,omitempty"`
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// PageStatus gathers the status for the web page. It only reads: a
// missing spool directory is not created.
func (a *Agent) PageStatus(ctx context.Context) PageStatus {
	c := a.Config()
	s := PageStatus{Board: a.board.Name, Warnings: a.Warnings(), Auth: c.SMTP.Auth,
		MailFrom: c.Mail.From, MailTo: c.Mail.To}
	if c.SMTP.Host != "" {
		s.SMTPServer = fmt.Sprintf("%s:%d (%s)", c.SMTP.Host, c.SMTP.Port, c.SMTP.TLS)
	}
	if now, unset := a.ClockUnset(); unset {
		s.Clock = fmt.Sprintf("not set: it reads %s, before this build; OAuth2 and TLS fail until it is set (NTP)", now.UTC().Format(time.RFC3339))
	}
	a.mu.Lock()
	missing := a.file.Missing
	a.mu.Unlock()
	if missing {
		s.Problems = append(s.Problems, KeyProblem{Message: "no configuration yet: fill in the form below and save"})
	}
	if p, ok := config.AsProblems(config.Validate(&c)); ok {
		for _, e := range p {
			s.Problems = append(s.Problems, KeyProblem{Key: e.Key, Message: e.Err.Error()})
		}
	}
	var live *LiveStatus
	if v, err := a.control(ctx, "status"); err == nil {
		ls := v.(LiveStatus)
		live = &ls
	} else if errors.Is(err, ErrNotRunning) {
		// Not the running agent (the console on a terminal): ask it.
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		live, _ = a.Live(lctx)
		cancel()
	}
	if live != nil {
		s.Running, s.Memory, s.Spooled = true, live.Memory, live.Spooled
		s.Oldest, s.Dropped = timeOrNil(live.Oldest), alarm.CountsText(live.Dropped)
		s.LastMail, s.LastReply = timeOrNil(live.LastDelivery), live.LastReply
		s.Failing, s.Hint, s.NextTry = live.Failing, live.Hint, timeOrNil(live.NextTry)
		s.Failures = live.Failures
	}
	if _, err := os.Stat(a.SpoolDir()); err == nil {
		if q, err := a.Queue(); err == nil {
			s.SetAside, s.NewestBad = q.SetAside, q.NewestBad
			if live == nil {
				s.Spooled, s.Dropped, s.Corrupt = len(q.Spooled), alarm.CountsText(q.Dropped), q.Corrupt
				if len(q.Spooled) > 0 {
					s.Oldest = timeOrNil(q.Spooled[0].Time)
				}
			}
		}
	}
	st, err := a.TokenStatus()
	if err != nil {
		s.Token = &TokenReport{Mode: c.OAuth2.Mode, State: "error", Summary: "the OAuth2 settings cannot be used", Fix: Hint(err)}
		if s.Token.Fix == "" {
			s.Token.Fix = "check the OAuth2 fields below: " + err.Error()
		}
	} else if st != nil {
		if live != nil && live.Token != nil {
			st = live.Token
		}
		s.Token = tokenReport(st, c.OAuth2.Mode)
	}
	if d := c.OAuth2.SecretExpires; !d.IsZero() && c.SMTP.Auth == "oauth2" {
		s.SecretExpires = d.Format("2006-01-02")
		days := int(d.Sub(a.now()).Hours() / 24)
		s.SecretDaysLeft = &days
		switch {
		case days < 0:
			s.SecretNote = "expired: create a new client secret at the provider, then set the client secret and its expiry date below"
		case days <= 30:
			s.SecretNote = "renew it soon: create a new secret at the provider, then set the client secret and its expiry date below"
		}
	}
	return s
}

// tokenReport puts a token status into words.
func tokenReport(st *oauth.Status, mode string) *TokenReport {
	m, _ := config.LookupMode(mode)
	r := &TokenReport{Mode: st.Mode, Account: st.Account, State: st.State, Expiry: timeOrNil(st.Expiry),
		Refreshed: timeOrNil(st.Refreshed), LastError: st.LastError, LastErrorAt: timeOrNil(st.LastErrorAt),
		NextTry: timeOrNil(st.RetryAt), Fix: st.Hint}
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
			r.Fix = "fill in the OAuth2 fields, save, then press Authorise and sign in as the mailbox"
		}
	case oauth.StateReauthRequired:
		r.Summary = "the provider no longer accepts the grant: a person must authorise again"
		if r.Fix == "" {
			r.Fix = "press Authorise and sign in again"
		}
	case oauth.StateError:
		r.Summary = "the last token request failed"
	case "busy":
		r.Summary = "busy talking to the provider"
	default:
		r.Summary = st.State
	}
	return r
}

// AuthorizeError is a failed authorisation as the page shows it: what the
// provider said, if anything, and what to do. Err keeps the operator
// detail, which the page does not show.
type AuthorizeError struct {
	// Code and Description are the provider's error and
	// error_description, "" when it sent none.
	Code, Description string
	// Hint says what to do.
	Hint string
	Err  error
}

func (e *AuthorizeError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	return "authorization failed"
}

func (e *AuthorizeError) Unwrap() error { return e.Err }

// maxWebGrants bounds the grants the page may have started and not finished.
const maxWebGrants = 16

// WebUI adapts an Agent to the web page (webui.Backend). It keeps the
// started grants (state, PKCE verifier) in memory, keyed by their state;
// the page binds each state to the admin's session.
type WebUI struct {
	a *Agent

	cfgMu sync.Mutex // one configuration change at a time

	mu      sync.Mutex
	pending map[string]oauth.Pending
}

// NewWebUI returns the web page's view of a.
func NewWebUI(a *Agent) *WebUI {
	return &WebUI{a: a, pending: make(map[string]oauth.Pending)}
}

// Board is the hardware profile.
func (w *WebUI) Board() board.Profile { return w.a.board }

// Status gathers the page's status.
func (w *WebUI) Status(ctx context.Context) PageStatus { return w.a.PageStatus(ctx) }

// Config returns mailagent.toml as written (no defaults), read again.
func (w *WebUI) Config() (config.Config, error) {
	f, err := config.Load(w.a.ConfigPath())
	if err != nil {
		return config.Config{}, err
	}
	return f.Config, nil
}

// UpdateConfig changes mailagent.toml in one transaction: change gets the
// file's configuration as written; when it returns an error nothing is
// written, otherwise the result is saved atomically (nothing when it did
// not change) and the agent uses it from the next mail on.
func (w *WebUI) UpdateConfig(change func(c *config.Config) error) error {
	w.cfgMu.Lock()
	defer w.cfgMu.Unlock()
	f, err := config.Load(w.a.ConfigPath())
	if err != nil {
		return err
	}
	c := f.Config
	if err := change(&c); err != nil {
		return err
	}
	if config.Equal(&c, &f.Config) && !f.Missing {
		return nil
	}
	if err := config.Save(w.a.ConfigPath(), &c); err != nil {
		return err
	}
	if err := w.a.Reload(); err != nil {
		return err
	}
	if !reflect.DeepEqual(c.OAuth2, f.Config.OAuth2) || c.Mail.From != f.Config.Mail.From || c.SMTP.User != f.Config.SMTP.User {
		w.a.mu.Lock()
		w.a.oauth = nil // made anew with the new client settings
		w.a.mu.Unlock()
	}
	return nil
}

// StartAuthorize begins an authorisation-code grant and keeps it under its
// state until FinishAuthorize or oauth.MaxPending.
func (w *WebUI) StartAuthorize() (authURL, state string, err error) {
	if err := w.a.Reload(); err != nil {
		return "", "", err
	}
	u, p, err := w.a.StartAuthorize()
	if err != nil {
		return "", "", err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.a.now()
	for s, q := range w.pending {
		if now.Sub(q.Created) > oauth.MaxPending {
			delete(w.pending, s)
		}
	}
	for len(w.pending) >= maxWebGrants {
		var oldest string
		for s, q := range w.pending {
			if oldest == "" || q.Created.Before(w.pending[oldest].Created) {
				oldest = s
			}
		}
		delete(w.pending, oldest)
	}
	w.pending[p.State] = p
	return u, p.State, nil
}

// FinishAuthorize completes the grant started with state from the address
// the browser was sent to (or its query), once: the grant is forgotten
// whatever the outcome. Failures are *AuthorizeError.
func (w *WebUI) FinishAuthorize(ctx context.Context, state, redirected string) (string, error) {
	w.mu.Lock()
	p, ok := w.pending[state]
	delete(w.pending, state)
	w.mu.Unlock()
	if !ok {
		return "", &AuthorizeError{Err: errors.New("no authorization with this state is pending"),
			Hint: "start the authorisation again with Authorise and finish it within 30 minutes"}
	}
	account, err := w.a.FinishAuthorize(ctx, p, redirected)
	if err != nil {
		ae := &AuthorizeError{Hint: Hint(err), Err: err}
		if pe, ok := errors.AsType[*oauth.ProviderError](err); ok {
			ae.Code, ae.Description = pe.Code, pe.Description
		}
		return "", ae
	}
	return account, nil
}

// SendTest sends a test mail now and returns the server's reply.
func (w *WebUI) SendTest(ctx context.Context, trace func(step, detail string)) (string, error) {
	r, err := w.a.SendTest(ctx, trace)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}

// RecentAlarms lists the last alarms taken, newest first.
func (w *WebUI) RecentAlarms() []RecentAlarm { return w.a.RecentAlarms() }

// Import reads a provider's downloaded file into mailagent.toml.
func (w *WebUI) Import(kind string, data []byte) error {
	w.cfgMu.Lock()
	defer w.cfgMu.Unlock()
	if err := w.a.Import(kind, data); err != nil {
		return err
	}
	w.a.mu.Lock()
	w.a.oauth = nil
	w.a.mu.Unlock()
	return w.a.Reload()
}

// PasswordHash returns [admin] password_hash as the file has it now, ""
// while none is set.
func (w *WebUI) PasswordHash() string {
	c, err := w.Config()
	if err != nil {
		w.a.log.Warn("admin password hash not read", "err", err)
		return ""
	}
	return c.Admin.PasswordHash.Reveal()
}

// SetPasswordHash stores a new [admin] password_hash.
func (w *WebUI) SetPasswordHash(hash string) error {
	return w.UpdateConfig(func(c *config.Config) error {
		c.Admin.PasswordHash = config.NewSecret(hash)
		return nil
	})
}

// Hint says what to do about err, or "".
func (w *WebUI) Hint(err error) string { return Hint(err) }

// ObtainNow gets tokens at once in a mode that needs no person.
func (w *WebUI) ObtainNow(ctx context.Context) (string, error) {
	if err := w.a.Reload(); err != nil {
		return "", err
	}
	return w.a.ObtainNow(ctx)
}
