package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/config"
	"mailagent/appliance/ingest"
	"mailagent/appliance/internal/message"
	"mailagent/appliance/internal/outbox"
	"mailagent/appliance/internal/spool"
	"mailagent/appliance/oauth"
)

// SpoolDir is the persistent alarm queue in the data directory.
func (a *Agent) SpoolDir() string { return filepath.Join(a.dataDir, "spool") }

// SyslogSpoolDir is the persistent queue of alarms from syslog, the ways in
// whose senders are not authenticated (outbox.AcceptUnauthenticated).
func (a *Agent) SyslogSpoolDir() string { return filepath.Join(a.dataDir, "spool-syslog") }

// Flash budget of the alarms from syslog: a spool of their own this
// large, written at most this often a minute; beyond, they wait in memory.
const (
	syslogSpoolEntries     = 10
	syslogFlashesPerMinute = 10
)

// openSpool opens the persistent alarm queue with the configured size.
func (a *Agent) openSpool(c *config.Config) (*spool.Spool, error) {
	return spool.Open(a.SpoolDir(), spool.Options{Max: c.Alarms.PersistentQueueEntries, FS: a.fs})
}

// openSyslogSpool opens the syslog alarms' queue when syslog listens or
// the queue holds alarms from before; nil, nil otherwise.
func (a *Agent) openSyslogSpool(c *config.Config) (*spool.Spool, error) {
	if _, err := os.Stat(a.SyslogSpoolDir()); err != nil && c.Syslog.ListenUDP == "" && c.Syslog.ListenTCP == "" {
		return nil, nil
	}
	return spool.Open(a.SyslogSpoolDir(), spool.Options{Max: syslogSpoolEntries})
}

// newOutbox makes the alarm queues and the delivery loop for c; usp, if
// not nil, is the syslog alarms' spool.
func (a *Agent) newOutbox(c *config.Config, sp, usp *spool.Spool) *outbox.Outbox {
	persist, _ := alarm.ParseSeverity(c.Alarms.PersistSeverity)
	return outbox.New(outbox.Options{
		Spool:                    sp,
		Unauthenticated:          usp,
		UnauthenticatedPerMinute: syslogFlashesPerMinute,
		MemoryEntries:            c.Alarms.MemoryQueueEntries,
		Persist:                  persist,
		DigestWindow:             c.Alarms.DigestWindow.Duration,
		MaxPerHour:               c.Alarms.MaxMailsPerHour,
		Device:                   c.Device.Name,
		Send:                     a.sendBurst,
		Now:                      a.now,
		Log:                      a.log,
		Notify:                   a.deliveryChanged,
	})
}

// sendBurst delivers the outbox's mails over one SMTP connection.
func (a *Agent) sendBurst(ctx context.Context, ms []outbox.Mail) ([]string, []error) {
	return a.deliver(ctx, nil, func(*config.Config) []draft {
		ds := make([]draft, len(ms))
		for i, m := range ms {
			ds[i] = draft{subject: m.Subject(), body: m.Body()}
		}
		return ds
	})
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
// way in whose sender is authenticated (the socket, HTTP with Basic
// credentials, the console). It returns once the alarm is safe (on flash
// when it must persist). Alarms below alarms.min_severity are taken and
// not mailed (clears always pass).
func (a *Agent) Accept(ctx context.Context, al alarm.Alarm) error {
	return a.accept(ctx, al, false)
}

// acceptUnauthenticated is Accept for syslog, whose senders anyone on the
// LAN can spoof: within the syslog alarms' flash budget and share of
// memory (outbox.AcceptUnauthenticated), never at the cost of an
// authenticated alarm.
func (a *Agent) acceptUnauthenticated(ctx context.Context, al alarm.Alarm) error {
	return a.accept(ctx, al, true)
}

func (a *Agent) accept(ctx context.Context, al alarm.Alarm, unauth bool) error {
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
	take := ob.Accept
	if unauth {
		take = ob.AcceptUnauthenticated
	}
	if err := take(al); err != nil {
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

// Queue reads the persistent queues: the spool and, if there is one, the
// syslog alarms' spool.
func (a *Agent) Queue() (QueueStatus, error) {
	c := a.Config()
	sp, err := a.openSpool(&c)
	if err != nil {
		return QueueStatus{}, err
	}
	defer sp.Close()
	spools := []*spool.Spool{sp}
	if _, err := os.Stat(a.SyslogSpoolDir()); err == nil {
		usp, err := spool.Open(a.SyslogSpoolDir(), spool.Options{Max: syslogSpoolEntries})
		if err != nil {
			return QueueStatus{}, err
		}
		defer usp.Close()
		spools = append(spools, usp)
	}
	var q QueueStatus
	for _, sp := range spools {
		entries, err := sp.List()
		if err != nil {
			return QueueStatus{}, err
		}
		for _, e := range entries {
			q.Spooled = append(q.Spooled, e.Alarm)
		}
		st := sp.Stats()
		for i := range q.Dropped {
			q.Dropped[i] += st.Drops[i]
		}
		q.Corrupt += st.Corrupt
		q.SetAside += st.SetAside
		if st.LastDamage != "" {
			q.LastDamage = st.LastDamage
		}
		if st.NewestBad != "" {
			q.NewestBad = st.NewestBad
		}
	}
	if len(spools) > 1 { // one list, oldest first
		slices.SortStableFunc(q.Spooled, func(x, y alarm.Alarm) int { return x.Time.Compare(y.Time) })
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

// The operations the local socket answers besides alarms.
const (
	opStatus = "status" // LiveStatus
	opFlush  = "flush"  // try delivery now
)

// liveStatus is the delivery state of this agent while Run runs;
// ErrNotRunning otherwise.
func (a *Agent) liveStatus() (*LiveStatus, error) {
	a.mu.Lock()
	ob, failing, ts := a.outbox, a.failingErr, a.oauth
	a.mu.Unlock()
	if ob == nil {
		return nil, ErrNotRunning
	}
	st := ob.Status()
	ls := &LiveStatus{Memory: st.Memory, Spooled: st.Spooled, Oldest: st.Oldest, Dropped: st.Dropped,
		LastDelivery: st.Last.Time, LastReply: st.Last.Reply, Failing: st.Failing, FailingSince: st.Since,
		Failures: st.Failures, NextTry: st.NextTry}
	if failing != nil {
		ls.Hint = Hint(failing)
	}
	if ts != nil {
		st := ts.source.Status()
		ls.Token = &st
	}
	return ls, nil
}

// flushNow has this agent try delivery now while Run runs.
func (a *Agent) flushNow() error {
	a.mu.Lock()
	ob := a.outbox
	a.mu.Unlock()
	if ob == nil {
		return ErrNotRunning
	}
	ob.Flush()
	return nil
}

// control answers the operations asked over the socket, each with its
// typed call.
func (a *Agent) control(ctx context.Context, op string) (any, error) {
	switch op {
	case opStatus:
		return a.liveStatus()
	case opFlush:
		return struct{}{}, a.flushNow()
	}
	return nil, fmt.Errorf("unknown operation %q", op)
}

// Live asks the running agent for its delivery state; ingest.ErrNoAgent
// (wrapped) when it is not running.
func (a *Agent) Live(ctx context.Context) (*LiveStatus, error) {
	var ls LiveStatus
	if err := ingest.Ask(ctx, a.SocketPath(), opStatus, &ls); err != nil {
		return nil, err
	}
	return &ls, nil
}

// Flush asks the running agent to try delivery now.
func (a *Agent) Flush(ctx context.Context) error {
	var v struct{}
	return ingest.Ask(ctx, a.SocketPath(), opFlush, &v)
}
