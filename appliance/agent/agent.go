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
	"slices"
	"strings"
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
	mu     sync.Mutex // guards file, tokens, their errors and oauth
	file   *config.File
	tokens *oauth.TokensFile
	// fileErr and tokensErr are why the file could not be used at the
	// last Reload (damaged, and no good copy to use), nil when it could;
	// fileKept and tokensKept say that file and tokens are then what
	// an earlier Reload read, and not empty stand-ins.
	fileErr, tokensErr   error
	fileKept, tokensKept bool
	oauth                *tokenState
	outbox               *outbox.Outbox // while Run runs
	// minSeverity is the lowest severity mailed, while Run runs.
	minSeverity alarm.Severity
	// failingErr is the last delivery error, nil while delivery works.
	failingErr error
	// recent are the last alarms Accept took, for the web page.
	recent recentAlarms
}

// New loads the configuration and token files. A damaged file with a good
// copy is used through that copy and reported by Warnings. A damaged file
// without one does not stop the agent (Reload): it starts, names the
// damage, sends no mail without its configuration, and takes alarms.
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
	// The profile says where the data is: the validator keeps file keys
	// (smtp.ca_file, http.tls_cert, http.tls_key) out of it.
	a.board.DataDir = a.dataDir
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.Reload() // a file that cannot be used is in Warnings
	return a, nil
}

// Reload reads the configuration and token files again. A file that
// cannot be used (damaged, and no good copy to use) is named by Warnings
// and does not stop the agent: what an earlier Reload read of it is kept;
// when nothing was, the agent goes on without it. Without its
// configuration it sends no mail, and says so (Warnings, Problems, and
// every delivery's error); without its tokens, OAuth2 starts from none,
// and an authorisation saves new ones over them. The error is the
// configuration's only: damaged tokens must not stop the change or the
// authorisation that repairs them.
func (a *Agent) Reload() error {
	f, ferr := config.LoadFS(a.fs, a.ConfigPath())
	t, terr := oauth.LoadTokensFS(a.fs, a.TokensPath())
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case ferr == nil:
		a.file, a.fileErr, a.fileKept = f, nil, false
	case a.file != nil && (a.fileErr == nil || a.fileKept):
		a.fileErr, a.fileKept = ferr, true
	default:
		a.file, a.fileErr, a.fileKept = &config.File{Path: a.ConfigPath()}, ferr, false
	}
	switch {
	case terr == nil:
		a.tokens, a.tokensErr, a.tokensKept = t, nil, false
	case a.tokens != nil && (a.tokensErr == nil || a.tokensKept):
		a.tokensErr, a.tokensKept = terr, true
	default:
		a.tokens, a.tokensErr, a.tokensKept = &oauth.TokensFile{Path: a.TokensPath()}, terr, false
	}
	return ferr
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
	w := fileState{path: a.file.Path, err: a.fileErr, kept: a.fileKept, damaged: a.file.Damaged, goodDamaged: a.file.GoodDamaged, empty: a.file.Empty,
		whenKept: "the configuration read before is used until it is fixed",
		without:  "the box runs without its configuration and sends no mail until the file is fixed (alarms wait on flash)",
		none:     "there is no configuration",
		remade:   "the next change or \"mailagent config check\" makes the good copy again",
	}.warnings(nil)
	return fileState{path: a.tokens.Path, err: a.tokensErr, kept: a.tokensKept, damaged: a.tokens.Damaged, goodDamaged: a.tokens.GoodDamaged, empty: a.tokens.Empty,
		whenKept: "the tokens read before are used",
		without:  "OAuth2 starts without tokens (authorise the box again if its mode needs a person)",
		none:     "there are no tokens",
		remade:   "the next token save makes the good copy again",
	}.warnings(w)
}

// fileState is what the last Reload found of one file, and what the agent
// does about each kind of damage, for Warnings.
type fileState struct {
	path string
	err  error // the file could not be used
	kept bool  // ... and what was read before is
	// damaged: the good copy is used; goodDamaged: the file is sound, its
	// good copy not; empty: an empty file without a good copy.
	damaged, goodDamaged *flash.DamagedError
	empty                bool

	whenKept, without, none, remade string
}

func (f fileState) warnings(w []string) []string {
	switch {
	case f.err != nil && f.kept:
		w = append(w, f.err.Error()+"; "+f.whenKept)
	case f.err != nil:
		w = append(w, f.err.Error()+"; "+f.without)
	case f.damaged != nil:
		w = append(w, f.damaged.Error())
	case f.empty:
		w = append(w, f.path+" is empty (0 bytes) and has no good copy: "+f.none)
	}
	if f.goodDamaged != nil && f.err == nil {
		w = append(w, f.goodDamaged.Error()+"; the file itself is sound, and "+f.remade)
	}
	return w
}

// unreadable is why the configuration cannot be used, nil when it can:
// the file is damaged without a good copy, and none was read before.
func (a *Agent) unreadable() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fileErr == nil || a.fileKept {
		return nil
	}
	return &unreadableError{path: a.ConfigPath(), err: a.fileErr}
}

// unreadableError is a configuration that cannot be read: no mail goes
// out on the defaults.
type unreadableError struct {
	path string
	err  error
}

func (e *unreadableError) Error() string {
	return "the configuration cannot be read, so no mail is sent: " + e.err.Error()
}

func (e *unreadableError) Unwrap() []error { return []error{ErrNotConfigured, e.err} }

func (e *unreadableError) Hint() string {
	return "\"mailagent config check\" names what is wrong with " + e.path + ": fix it by hand, or remove it and " +
		filepath.Base(e.path) + ".good to set the box up afresh; alarms wait on flash meanwhile"
}

// Config returns the configuration with its defaults filled in.
func (a *Agent) Config() config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.file.Config.WithDefaults(a.board)
}

// Problems returns what keeps the box from sending mail (config.Problems
// of the keys mail is sent with), or nil. Status and config check name
// every problem.
func (a *Agent) Problems() error {
	if err := a.unreadable(); err != nil {
		return err
	}
	c := a.Config()
	a.mu.Lock()
	missing := a.file.Missing
	a.mu.Unlock()
	if missing {
		return fmt.Errorf("no configuration yet: %s does not exist\n%w", a.ConfigPath(), config.Validate(&c))
	}
	return sendingProblems(config.Validate(&c))
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
	if err := a.unreadable(); err != nil {
		return nil, []error{err}
	}
	c := a.Config()
	if p := sendingProblems(config.Validate(&c)); p != nil {
		return nil, []error{fmt.Errorf("%w:\n%w", ErrNotConfigured, p)}
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

// sendingSections are the sections of the keys a mail is sent with. A
// problem elsewhere (the page, syslog, the console, the queues) is named
// by status and config check but does not stop the mail: one bad value
// there must not silence the box.
var sendingSections = []string{"device", "mail", "smtp", "oauth2"}

// sendingProblems are the problems of err (config.Validate's) that keep a
// mail from being sent, or nil.
func sendingProblems(err error) error {
	p, ok := config.AsProblems(err)
	if !ok {
		return err
	}
	var out config.Problems
	for _, e := range p {
		section, _, _ := strings.Cut(e.Key, ".")
		if slices.Contains(sendingSections, section) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
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
