package agent

// The admin API: what the web page (webui.Backend) and the console
// (console.Backend) use. The configuration as one transaction,
// authorisation with the grants kept here by their state, the test mail,
// the recent alarms and the admin password hash.

import (
	"context"
	"errors"
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

// maxAdminGrants bounds the grants started and not finished.
const maxAdminGrants = 16

// Admin is the agent as its administrators use it, on the web page and the
// console: one per agent, so that it orders their configuration changes.
// It keeps the started grants (state, PKCE verifier) in memory, keyed by
// their state; the page binds each state to the admin's session.
type Admin struct {
	a *Agent

	cfgMu sync.Mutex // one configuration change at a time

	mu      sync.Mutex
	pending map[string]Grant
}

// NewAdmin returns the admin API of a.
func NewAdmin(a *Agent) *Admin {
	return &Admin{a: a, pending: make(map[string]Grant)}
}

// Board is the hardware profile.
func (w *Admin) Board() board.Profile { return w.a.board }

// Status gathers the box's state.
func (w *Admin) Status(ctx context.Context) Status { return w.a.Status(ctx) }

// Config returns mailagent.toml as written (no defaults), read again.
func (w *Admin) Config() (config.Config, error) {
	f, err := config.LoadFS(w.a.fs, w.a.ConfigPath())
	if err != nil {
		return config.Config{}, err
	}
	return f.Config, nil
}

// UpdateConfig changes mailagent.toml in one transaction (config.Update,
// which other processes' changes wait for): change gets the file's
// configuration as written; when it returns an error nothing is written,
// otherwise the result is saved atomically (nothing when it did not
// change) and the agent uses it from the next mail on.
func (w *Admin) UpdateConfig(change func(c *config.Config) error) error {
	w.cfgMu.Lock()
	defer w.cfgMu.Unlock()
	var f *config.File
	var c config.Config
	err := config.UpdateFS(context.Background(), w.a.fs, w.a.ConfigPath(), func(file *config.File, next *config.Config) error {
		if err := change(next); err != nil {
			return err
		}
		f, c = file, *next
		return nil
	})
	if err != nil {
		return err
	}
	if config.Equal(&c, &f.Config) && !f.Missing {
		return nil
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
func (w *Admin) StartAuthorize() (authURL, state string, err error) {
	if err := w.a.Reload(); err != nil {
		return "", "", err
	}
	g, err := w.a.StartAuthorize()
	if err != nil {
		return "", "", err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.a.now()
	for s, q := range w.pending {
		if now.Sub(q.pending.Created) > oauth.MaxPending {
			delete(w.pending, s)
		}
	}
	for len(w.pending) >= maxAdminGrants {
		var oldest string
		for s, q := range w.pending {
			if oldest == "" || q.pending.Created.Before(w.pending[oldest].pending.Created) {
				oldest = s
			}
		}
		delete(w.pending, oldest)
	}
	w.pending[g.pending.State] = g
	return g.URL, g.pending.State, nil
}

// FinishAuthorize completes the grant started with state from the address
// the browser was sent to (or its query), once: the grant is forgotten
// whatever the outcome. Failures are *AuthorizeError.
func (w *Admin) FinishAuthorize(ctx context.Context, state, redirected string) (string, error) {
	w.mu.Lock()
	g, ok := w.pending[state]
	delete(w.pending, state)
	w.mu.Unlock()
	if !ok {
		return "", &AuthorizeError{Err: errors.New("no authorization with this state is pending"),
			Hint: "start the authorisation again with Authorise and finish it within 30 minutes"}
	}
	account, err := w.a.FinishAuthorize(ctx, g, redirected)
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
func (w *Admin) SendTest(ctx context.Context, trace func(step, detail string)) (string, error) {
	return w.a.SendTest(ctx, trace)
}

// RecentAlarms lists the last alarms taken, newest first.
func (w *Admin) RecentAlarms() []RecentAlarm { return w.a.RecentAlarms() }

// Import reads a provider's downloaded file into mailagent.toml.
func (w *Admin) Import(kind string, data []byte) error {
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
func (w *Admin) PasswordHash() string {
	c, err := w.Config()
	if err != nil {
		w.a.log.Warn("admin password hash not read", "err", err)
		return ""
	}
	return c.Admin.PasswordHash.Reveal()
}

// SetPasswordHash stores a new [admin] password_hash.
func (w *Admin) SetPasswordHash(hash string) error {
	return w.UpdateConfig(func(c *config.Config) error {
		c.Admin.PasswordHash = config.NewSecret(hash)
		return nil
	})
}

// Hint says what to do about err, or "".
func (w *Admin) Hint(err error) string { return Hint(err) }

// ObtainNow gets tokens at once in a mode that needs no person.
func (w *Admin) ObtainNow(ctx context.Context) (string, error) {
	if err := w.a.Reload(); err != nil {
		return "", err
	}
	return w.a.ObtainNow(ctx)
}
