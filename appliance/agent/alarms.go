package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/config"
	"mailagent/appliance/ingest"
	"mailagent/appliance/internal/message"
	"mailagent/appliance/internal/outbox"
	"mailagent/appliance/internal/spool"
	"mailagent/appliance/internal/submit"
	"mailagent/appliance/oauth"
)

// SpoolDir is the persistent alarm queue in the data directory.
func (a *Agent) SpoolDir() string { return filepath.Join(a.dataDir, "spool") }

// openSpool opens the persistent alarm queue with the configured size.
func (a *Agent) openSpool(c *config.Config) (*spool.Spool, error) {
	return spool.Open(a.SpoolDir(), spool.Options{Max: c.Alarms.PersistentQueueEntries})
}

// newOutbox makes the alarm queues and the delivery loop for c.
func (a *Agent) newOutbox(c *config.Config, sp *spool.Spool) *outbox.Outbox {
	persist, _ := alarm.ParseSeverity(c.Alarms.PersistSeverity)
	return outbox.New(outbox.Options{
		Spool:         sp,
		MemoryEntries: c.Alarms.MemoryQueueEntries,
		Persist:       persist,
		DigestWindow:  c.Alarms.DigestWindow.Duration,
		MaxPerHour:    c.Alarms.MaxMailsPerHour,
		Device:        c.Device.Name,
		Send:          a.sendBurst,
		Now:           a.now,
		Log:           a.log,
		Notify:        a.deliveryChanged,
	})
}

// sendBurst delivers mails over one SMTP connection: one AUTH for the lot.
func (a *Agent) sendBurst(ctx context.Context, ms []outbox.Mail) ([]string, []error) {
	if err := a.Reload(); err != nil {
		a.log.Warn("configuration not reloaded; using the one loaded before", "err", err)
	}
	c := a.Config()
	if err := config.Validate(&c); err != nil {
		return nil, []error{fmt.Errorf("%w:\n%w", ErrNotConfigured, err)}
	}
	so, err := a.submitOptions(&c, nil)
	if err != nil {
		return nil, []error{err}
	}
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	cl, err := submit.Dial(ctx, so)
	if err != nil {
		return nil, []error{err}
	}
	defer cl.Close()
	var replies []string
	var errs []error
	for _, m := range ms {
		raw, err := a.render(&c, prefixed(&c, m.Subject()), m.Body())
		if err == nil {
			var r submit.Reply
			r, err = cl.Send(ctx, c.Mail.From, c.Mail.To, raw)
			replies = append(replies, r.String())
		}
		errs = append(errs, err)
		if err != nil {
			break
		}
	}
	return replies, errs
}

// prefixed puts subject_prefix before a subject.
func prefixed(c *config.Config, subject string) string {
	if c.Mail.SubjectPrefix == "" {
		return subject
	}
	return c.Mail.SubjectPrefix + " " + subject
}

// render makes the RFC 5322 message for c's sender and recipients.
func (a *Agent) render(c *config.Config, subject, body string) ([]byte, error) {
	m := message.Message{
		From:    message.Address{Name: c.Mail.FromName, Addr: c.Mail.From},
		Subject: subject,
		Date:    a.now(),
		Body:    body,
	}
	for _, to := range c.Mail.To {
		name := ""
		if len(c.Mail.To) == 1 {
			name = c.Mail.ToName
		}
		m.To = append(m.To, message.Address{Name: name, Addr: to})
	}
	return m.Bytes()
}

// ErrQueueFull means an alarm was refused because the queues are full of
// more severe alarms: the sender should try again later.
var ErrQueueFull = errors.New("the alarm queue is full of more severe alarms; try again later")

// ErrNotRunning means alarms cannot be taken because Run is not running.
var ErrNotRunning = errors.New("the agent is not running")

// Accept takes an alarm into the queues while Run runs: the sink of every
// way in. It returns once the alarm is safe (on flash when it must persist).
// Alarms below alarms.min_severity are taken and not mailed (clears always
// pass).
func (a *Agent) Accept(ctx context.Context, al alarm.Alarm) error {
	a.mu.Lock()
	ob, min := a.outbox, a.minSeverity
	a.mu.Unlock()
	if ob == nil {
		return ErrNotRunning
	}
	if al.Severity != alarm.Cleared && al.Severity < min {
		a.log.Debug("alarm below min_severity not mailed", "code", al.Code, "severity", al.Severity)
		a.recent.add(a.now(), al, "taken, not mailed: below alarms.min_severity")
		return nil
	}
	if err := ob.Accept(al); err != nil {
		if errors.Is(err, spool.ErrFull) {
			a.recent.add(a.now(), al, "refused: queue full")
			return ErrQueueFull
		}
		return err
	}
	a.recent.add(a.now(), al, "queued")
	return nil
}

// AlarmCredentials are the HTTP Basic credentials other boxes post alarms
// with ([http] alarm_user and alarm_password).
func (a *Agent) AlarmCredentials() (user, password string) {
	c := a.Config()
	return c.HTTP.AlarmUser, c.HTTP.AlarmPassword.Reveal()
}

// Spool puts an alarm straight into the persistent queue, for when the
// agent is not running; the agent mails it when it starts. It returns once
// the alarm is on flash.
func (a *Agent) Spool(al alarm.Alarm) error {
	c := a.Config()
	sp, err := a.openSpool(&c)
	if err != nil {
		return err
	}
	defer sp.Close()
	if _, err := sp.Put(al); err != nil {
		if errors.Is(err, spool.ErrFull) {
			return ErrQueueFull
		}
		return err
	}
	return nil
}

// QueueStatus is what is queued on flash, readable without the agent.
type QueueStatus struct {
	// Spooled are the alarms waiting on flash, oldest first.
	Spooled []alarm.Alarm
	// Dropped counts alarms dropped for room and not yet reported in a mail,
	// by severity (index alarm.Severity).
	Dropped [alarm.Critical + 1]int
	// Corrupt counts damaged records set aside when the spool was read now.
	Corrupt    int
	LastDamage string
	// SetAside counts the damaged records kept as spool/*.bad, whoever
	// found them, until they are removed; NewestBad names the newest.
	SetAside  int
	NewestBad string
}

// Queue reads the persistent queue.
func (a *Agent) Queue() (QueueStatus, error) {
	c := a.Config()
	sp, err := a.openSpool(&c)
	if err != nil {
		return QueueStatus{}, err
	}
	defer sp.Close()
	entries, err := sp.List()
	if err != nil {
		return QueueStatus{}, err
	}
	st := sp.Stats()
	q := QueueStatus{Dropped: st.Drops, Corrupt: st.Corrupt, LastDamage: st.LastDamage, SetAside: st.SetAside, NewestBad: st.NewestBad}
	for _, e := range entries {
		q.Spooled = append(q.Spooled, e.Alarm)
	}
	return q, nil
}

// LiveStatus is the delivery state of the running agent.
type LiveStatus struct {
	Memory, Spooled int
	Oldest          time.Time
	Dropped         [alarm.Critical + 1]int
	LastDelivery    time.Time
	LastReply       string
	// Failing is the delivery error while mail cannot be delivered, since
	// FailingSince, after Failures tries in a row.
	Failing      string
	FailingSince time.Time
	Failures     int
	Hint         string
	NextTry      time.Time
	// Token is the running agent's token state (with its backoff), when it
	// uses OAuth2.
	Token *oauth.Status
}

// control answers the operations asked over the socket.
func (a *Agent) control(ctx context.Context, op string) (any, error) {
	a.mu.Lock()
	ob, failing := a.outbox, a.failingErr
	a.mu.Unlock()
	if ob == nil {
		return nil, ErrNotRunning
	}
	switch op {
	case "status":
		st := ob.Status()
		ls := LiveStatus{Memory: st.Memory, Spooled: st.Spooled, Oldest: st.Oldest, Dropped: st.Dropped,
			LastDelivery: st.Last.Time, LastReply: st.Last.Reply, Failing: st.Failing, FailingSince: st.Since,
			Failures: st.Failures, NextTry: st.NextTry}
		if failing != nil {
			ls.Hint = Hint(failing)
		}
		a.mu.Lock()
		ts := a.oauth
		a.mu.Unlock()
		if ts != nil {
			st := ts.source.Status()
			ls.Token = &st
		}
		return ls, nil
	case "flush":
		ob.Flush()
		return struct{}{}, nil
	}
	return nil, fmt.Errorf("unknown operation %q", op)
}

// Live asks the running agent for its delivery state; ingest.ErrNoAgent
// (wrapped) when it is not running.
func (a *Agent) Live(ctx context.Context) (*LiveStatus, error) {
	var ls LiveStatus
	if err := ingest.Ask(ctx, a.SocketPath(), "status", &ls); err != nil {
		return nil, err
	}
	return &ls, nil
}

// Flush asks the running agent to try delivery now.
func (a *Agent) Flush(ctx context.Context) error {
	var v struct{}
	return ingest.Ask(ctx, a.SocketPath(), "flush", &v)
}
