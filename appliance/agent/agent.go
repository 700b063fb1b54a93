// Package agent is the domain's single API for the commands, the web page and
// the console: it loads the configuration and tokens from the data
// directory, sends test mails and alarm mails, and runs the agent.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/config"
	"mailagent/appliance/internal/flash"
	"mailagent/appliance/internal/outbox"
	"mailagent/appliance/internal/submit"
	"mailagent/appliance/oauth"
	"mailagent/board"
)

// Options configures an Agent. Zero values take the defaults named.
type Options struct {
	// Board is the hardware profile.
	Board board.Profile
	// DataDir holds mailagent.toml and tokens.toml; "" means Board.DataDir.
	DataDir string
	// RunDir holds the local alarm socket; "" means Board.RunDir, or
	// DataDir/run when DataDir is given.
	RunDir string
	// Log receives the agent's log; nil discards it.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HTTPClient makes the OAuth2 requests; nil means the oauth package's
	// default (timeouts, no redirects).
	HTTPClient *http.Client
	// BuildDate is the earliest plausible time: a clock before it was never
	// set. Zero disables the check.
	BuildDate time.Time
	// FS is the file system of DataDir (mailagent.toml, tokens.toml and the
	// spool); nil means the operating system's. Tests give a power-cut model.
	FS flash.FS
}

// Agent is mailagent on one box.
type Agent struct {
	board   board.Profile
	dataDir string
	runDir  string
	fs      flash.FS
	log     *slog.Logger
	now     func() time.Time

	httpClient *http.Client
	buildDate  time.Time

	sendMu sync.Mutex // one submission at a time
	mu     sync.Mutex // guards file, tokens and oauth
	file   *config.File
	tokens *oauth.TokensFile
	oauth  *tokenState
	outbox *outbox.Outbox // while Run runs
	// minSeverity is the lowest severity mailed, while Run runs.
	minSeverity alarm.Severity
	// failingErr is the last delivery error, nil while delivery works.
	failingErr error
	// recent are the last alarms Accept took, for the web page.
	recent recentAlarms
}

// New loads the configuration and token files. A damaged file with a good
// copy is used through that copy and reported by Warnings; a damaged file
// without one is an error.
func New(o Options) (*Agent, error) {
	a := &Agent{board: o.Board, dataDir: o.DataDir, runDir: o.RunDir, fs: o.FS, log: o.Log, now: o.Now, httpClient: o.HTTPClient, buildDate: o.BuildDate}
	if a.fs == nil {
		a.fs = flash.OS
	}
	switch {
	case a.runDir != "":
	case a.dataDir != "":
		a.runDir = filepath.Join(a.dataDir, "run")
	default:
		a.runDir = o.Board.RunDir
	}
	if a.dataDir == "" {
		a.dataDir = o.Board.DataDir
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// Reload reads the configuration and token files again.
func (a *Agent) Reload() error {
	f, err := config.LoadFS(a.fs, a.ConfigPath())
	if err != nil {
		return err
	}
	t, err := oauth.LoadTokensFS(a.fs, a.TokensPath())
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.file, a.tokens = f, t
	a.mu.Unlock()
	return nil
}

// DataDir is the data directory.
func (a *Agent) DataDir() string { return a.dataDir }

// MakeDataDir creates the data directory (0700) if it is missing, as on a
// box's first start on an empty flash partition.
func (a *Agent) MakeDataDir() error { return flash.MakeDir(a.fs, a.dataDir) }

// ConfigPath is the path of mailagent.toml.
func (a *Agent) ConfigPath() string { return filepath.Join(a.dataDir, config.FileName) }

// TokensPath is the path of tokens.toml.
func (a *Agent) TokensPath() string { return filepath.Join(a.dataDir, oauth.TokensFileName) }

// Board is the hardware profile.
func (a *Agent) Board() board.Profile { return a.board }

// Warnings lists damaged files and what is used instead, in plain words.
func (a *Agent) Warnings() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var w []string
	if d := a.file.Damaged; d != nil {
		w = append(w, d.Error())
	}
	if d := a.tokens.Damaged; d != nil {
		w = append(w, d.Error())
	}
	return w
}

// Config returns the configuration with its defaults filled in.
func (a *Agent) Config() config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.file.Config.WithDefaults(a.board)
}

// Problems returns what keeps the box from sending mail (config.Problems),
// or nil.
func (a *Agent) Problems() error {
	c := a.Config()
	a.mu.Lock()
	missing := a.file.Missing
	a.mu.Unlock()
	if missing {
		return fmt.Errorf("no configuration yet: %s does not exist\n%w", a.ConfigPath(), config.Validate(&c))
	}
	return config.Validate(&c)
}

// submitOptions builds the SMTP options from c.
func (a *Agent) submitOptions(c *config.Config, trace func(step, detail string)) (submit.Options, error) {
	o := submit.Options{
		Host:     c.SMTP.Host,
		Port:     c.SMTP.Port,
		TLS:      c.SMTP.TLS,
		CAFile:   c.SMTP.CAFile,
		HELO:     c.SMTP.HELO,
		Auth:     c.SMTP.Auth,
		User:     c.SMTP.User,
		Password: c.SMTP.Password.Reveal(),
		Trace:    trace,
	}
	if c.SMTP.Auth == "oauth2" {
		_, src, err := a.oauthFor(c)
		if err != nil {
			return o, err
		}
		o.Tokens = src
	}
	return o, nil
}

// ErrNotConfigured means mail cannot be sent until the configuration is
// complete; it wraps config.Problems.
var ErrNotConfigured = errors.New("mail is not configured")

// draft is one mail to deliver: its subject (without subject_prefix) and
// body.
type draft struct{ subject, body string }

// deliver is the one way mail leaves the agent: the test mail and every
// alarm burst. It reads the files again first, so a change made with
// "mailagent config set" applies to the next mail (when they cannot be
// read, the configuration loaded before is kept), checks that mail can be
// sent, and submits the drafts made for that configuration over one SMTP
// connection with one AUTH, one submission at a time. It stops at the
// first mail that fails: replies and errs are of the mails tried, in order;
// an error before any mail (configuration, connection, AUTH) is the only
// element of errs.
func (a *Agent) deliver(ctx context.Context, trace func(step, detail string), drafts func(*config.Config) []draft) (replies []string, errs []error) {
	if err := a.Reload(); err != nil {
		a.log.Warn("configuration not reloaded; using the one loaded before", "err", err)
	}
	c := a.Config()
	if err := config.Validate(&c); err != nil {
		return nil, []error{fmt.Errorf("%w:\n%w", ErrNotConfigured, err)}
	}
	a.sendMu.Lock()
	defer a.sendMu.Unlock()
	so, err := a.submitOptions(&c, trace)
	if err != nil {
		return nil, []error{err}
	}
	cl, err := submit.Dial(ctx, so)
	if err != nil {
		return nil, []error{err}
	}
	defer cl.Close()
	for _, d := range drafts(&c) {
		raw, err := a.render(&c, prefixed(&c, d.subject), d.body)
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

// SendTest sends a test mail now and returns the server's reply ("250
// 2.0.0 Ok: queued as …"); trace, if not nil, is told each step.
func (a *Agent) SendTest(ctx context.Context, trace func(step, detail string)) (string, error) {
	replies, errs := a.deliver(ctx, trace, func(c *config.Config) []draft {
		return []draft{{subject: c.Device.Name + ": test mail",
			body: fmt.Sprintf("This is a test mail from %s.\n\nIf you read this, alarm mail from this box reaches you.\n\nSent at %s by mailagent (board %s).\n",
				c.Device.Name, a.now().Format(time.RFC1123Z), a.board.Name)}}
	})
	if err := errs[0]; err != nil {
		return "", err
	}
	return replies[0], nil
}
