// Package console is the serial console: a plain line protocol in which a
// technician on a serial cable, or a provisioning script, configures the
// box, authorises it, sends a test mail and reads its state. It works in
// any terminal program at any speed: lines end with CR, LF or CR LF, the
// console echoes on a raw line itself, and nothing needs cursor keys.
//
// Changes are staged: set, unset and secret change a pending copy, show
// shows it, commit judges and saves it in one atomic write (as the web
// page's Save does, with config.Change), revert drops it.
//
// Serve runs it on the board's console port (go.bug.st/serial); "mailagent
// console" runs it on a terminal. When mail cannot be delivered, a banner
// says so when a session starts and whenever it changes.
package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"mailagent/appliance/agent"
	"mailagent/appliance/config"
	"mailagent/appliance/limit"
	"mailagent/board"
)

// Backend is the agent as the console sees it; agent.Admin is the real one.
type Backend interface {
	// Board is the hardware profile, for the configuration's defaults.
	Board() board.Profile
	// Status gathers the box's state, as the web page shows it.
	Status(ctx context.Context) agent.Status
	// Config returns mailagent.toml as written.
	Config() (config.Config, error)
	// UpdateConfig runs change on the file's configuration and saves the
	// result atomically, or writes nothing when change fails.
	UpdateConfig(change func(c *config.Config) error) error
	// Import reads a provider's downloaded file into the configuration.
	Import(kind string, data []byte) error
	// PasswordHash is [admin] password_hash, "" while none is set.
	PasswordHash() string
	// SetPasswordHash stores a new [admin] password_hash.
	SetPasswordHash(hash string) error
	// Hint says what to do about err, "" when nothing useful is known.
	Hint(err error) string
}

// Options are what a console session needs.
type Options struct {
	Backend Backend
	// Command runs one of the commands the console shares with the command
	// line (status, test, alarm, queue, authorize) with args as after
	// "mailagent", reading in and writing out.
	Command func(ctx context.Context, args []string, in io.Reader, out io.Writer) error
	// HashPassword and CheckPassword make and check [admin] password_hash.
	HashPassword  func(pw string) (string, error)
	CheckPassword func(hash, pw string) bool
	// Log holds the agent's recent log lines; nil where the console runs
	// outside the agent.
	Log *Ring
	// Version and Where name the program and the line in the greeting.
	Version, Where string
	// Logins limits wrong admin passwords across the sessions of one line:
	// the line is one client (limit.Attempts: 5, then one a minute). Nil
	// limits each session to its three tries only.
	Logins *limit.Attempts
}

// ErrNoLogin ends a session whose password was refused three times.
var ErrNoLogin = errors.New("console: the admin password was refused three times")

// lineClient is the one client of a console line for Options.Logins.
var lineClient = netip.IPv6Unspecified()

// loginDelay is the wait after a refused console password.
var loginDelay = 3 * time.Second

// session is one console session: the pending changes and what the
// banner last said.
type session struct {
	o         Options
	t         *Term
	pending   map[string]change
	banner    string
	exitAsked bool

	// Only the input goroutine reads t: the session asks it for a line
	// (hidden or not) on reqs and gets it on lines, so that Ctrl-C stops
	// a command that runs long (a device sign-in, a test mail).
	reqs        chan bool
	lines       chan input
	outstanding bool     // a line is asked for and not yet taken
	typeahead   []string // lines typed while a command ran, not given to it
	ended       error    // the input ended (io.EOF) or failed while a command ran
}

// input is one line the input goroutine read, or why there is none.
type input struct {
	line string
	err  error
}

// change is one pending change: a value to set, or unset.
type change struct {
	value string
	unset bool
}

// Run runs one session on t until "exit", the end of the input or ctx
// ends. It returns nil for the first two.
func Run(ctx context.Context, t *Term, o Options) error {
	s := &session{o: o, t: t, pending: map[string]change{}, reqs: make(chan bool), lines: make(chan input, 1)}
	t.Mask = typingSecret
	go func() {
		for hidden := range s.reqs {
			line, err := t.ReadLine(hidden)
			s.lines <- input{line, err}
			if err != nil && !errors.Is(err, ErrInterrupt) {
				return
			}
		}
	}()
	defer close(s.reqs)
	fmt.Fprintf(t, "mailagent %s console on board %s (%s)\n", o.Version, o.Backend.Board().Name, o.Where)
	if err := s.login(ctx); err != nil {
		return err
	}
	fmt.Fprintln(t, "type help for the commands")
	for ctx.Err() == nil {
		s.showBanner(ctx)
		fmt.Fprint(t, "mailagent> ")
		line, err := s.read(ctx, false)
		switch {
		case errors.Is(err, ErrInterrupt):
			continue
		case errors.Is(err, io.EOF):
			if len(s.pending) > 0 {
				fmt.Fprintf(t, "\nthe end of the input: %s dropped, not committed\n", plural(len(s.pending), "change"))
			}
			return nil
		case err != nil:
			return err
		}
		if done := s.do(ctx, line); done {
			return nil
		}
	}
	return ctx.Err()
}

// login asks for the admin password when console.require_login is on and
// a password is set.
func (s *session) login(ctx context.Context) error {
	c, err := s.o.Backend.Config()
	if err != nil || !c.Console.RequireLogin {
		return nil
	}
	hash := s.o.Backend.PasswordHash()
	if hash == "" {
		fmt.Fprintln(s.t, "note: console.require_login is on but no admin password is set: set one with passwd")
		return nil
	}
	for try := 0; try < 3 && ctx.Err() == nil; try++ {
		if s.o.Logins != nil {
			if ok, wait := s.o.Logins.Take(lineClient); !ok {
				fmt.Fprintf(s.t, "too many wrong passwords on this line: try again in %d seconds\n", limit.RetryAfter(wait))
				return ErrNoLogin
			}
		}
		pw, err := s.ask(ctx, "admin password: ")
		if err != nil && !errors.Is(err, ErrInterrupt) {
			return err
		}
		if s.o.CheckPassword(hash, pw) {
			if s.o.Logins != nil {
				s.o.Logins.Success(lineClient)
			}
			return nil
		}
		time.Sleep(loginDelay)
		fmt.Fprintln(s.t, "wrong password")
	}
	return ErrNoLogin
}

// do runs one command line; done ends the session.
func (s *session) do(ctx context.Context, line string) (done bool) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return false
	}
	c, ok := lookup(fields[0])
	if c.name != "exit" {
		s.exitAsked = false
	}
	err := fmt.Errorf("unknown command %q: type help for the commands", fields[0])
	if ok {
		err = c.run(s, ctx, line, fields[1:])
	}
	if errors.Is(err, errExit) {
		return true
	}
	if err != nil {
		s.fail(err)
	}
	return false
}

// fail prints err and its hint.
func (s *session) fail(err error) {
	for i, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		if i == 0 {
			fmt.Fprintf(s.t, "error: %s\n", line)
		} else {
			fmt.Fprintf(s.t, "  %s\n", line)
		}
	}
	if h := s.o.Backend.Hint(err); h != "" {
		fmt.Fprintf(s.t, "hint: %s\n", h)
	}
}

// help lists the commands in 80 columns: a usage too long for its column
// has a line of its own.
func (s *session) help() {
	const col = 24
	for _, c := range commands {
		usage := strings.TrimSpace(c.name + " " + c.args)
		if len(usage) > col {
			fmt.Fprintf(s.t, "  %s\n  %-*s %s\n", usage, col, "", c.short)
			continue
		}
		fmt.Fprintf(s.t, "  %-*s %s\n", col, usage, c.short)
	}
	fmt.Fprintln(s.t, "Keys are as in mailagent.toml: section.key, e.g. mail.from; show lists them all.")
}
