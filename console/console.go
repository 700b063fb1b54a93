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
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"mailagent/appliance/agent"
	"mailagent/appliance/config"
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
}

// ErrNoLogin ends a session whose password was refused three times.
var ErrNoLogin = errors.New("console: the admin password was refused three times")

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
		pw, err := s.ask(ctx, "admin password: ")
		if err != nil && !errors.Is(err, ErrInterrupt) {
			return err
		}
		if s.o.CheckPassword(hash, pw) {
			return nil
		}
		time.Sleep(loginDelay)
		fmt.Fprintln(s.t, "wrong password")
	}
	return ErrNoLogin
}

// commands lists what help shows, in its order.
var commands = []struct{ name, args, short string }{
	{"help", "", "this list"},
	{"status", "", "token, queue and delivery state"},
	{"show", "[SECTION]", "the configuration, with the changes not yet committed"},
	{"set", "KEY VALUE", "change a key (committed by commit)"},
	{"unset", "KEY", "return a key to its default (committed by commit)"},
	{"secret", "KEY", "set a secret key; the value is asked for and not shown"},
	{"commit", "", "check the changes and save them all, or none"},
	{"revert", "", "drop the changes not yet committed"},
	{"authorize", "[paste|device]", "authorise the box at the OAuth2 provider"},
	{"test", "", "send a test mail now and show each step"},
	{"alarm", "SEVERITY CODE TEXT | clear CODE", "raise or clear an alarm"},
	{"queue", "[flush]", "the alarms waiting on flash; flush: try delivery now"},
	{"log", "[N]", "the agent's last N log lines (default 20)"},
	{"passwd", "", "set the admin password of the web page and the console"},
	{"import", "google-client | google-service-account", "paste a file downloaded from Google"},
	{"export", "", "the saved configuration without secrets"},
	{"exit", "", "end the session"},
}

// do runs one command line; done ends the session.
func (s *session) do(ctx context.Context, line string) (done bool) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return false
	}
	name, args := fields[0], fields[1:]
	if name != "exit" && name != "quit" {
		s.exitAsked = false
	}
	var err error
	switch name {
	case "help", "?":
		s.help()
	case "exit", "quit":
		if len(s.pending) > 0 && !s.exitAsked {
			s.exitAsked = true
			fmt.Fprintf(s.t, "%s not committed: commit saves, revert drops; exit again to drop them\n", plural(len(s.pending), "change"))
			return false
		}
		return true
	case "show":
		err = s.show(args)
	case "set":
		err = s.set(line)
	case "unset":
		err = s.unset(args)
	case "secret":
		err = s.secret(ctx, args)
	case "commit":
		err = s.commit()
	case "revert":
		fmt.Fprintf(s.t, "ok: %s dropped\n", plural(len(s.pending), "change"))
		clear(s.pending)
	case "status", "test", "queue":
		err = s.shared(ctx, fields...)
	case "authorize":
		err = s.authorize(ctx, args)
	case "alarm":
		err = s.alarm(ctx, line, args)
	case "log":
		err = s.log(args)
	case "passwd":
		err = s.passwd(ctx)
	case "import":
		err = s.importFile(ctx, args)
	case "export":
		err = s.export()
	default:
		err = fmt.Errorf("unknown command %q: type help for the commands", name)
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

func (s *session) help() {
	for _, c := range commands {
		fmt.Fprintf(s.t, "  %-30s %s\n", strings.TrimSpace(c.name+" "+c.args), c.short)
	}
	fmt.Fprintln(s.t, "Keys are as in mailagent.toml: section.key, e.g. mail.from; show lists them all.")
}

// showBanner prints what stands in the way of mail when it differs from
// what the session last showed.
func (s *session) showBanner(ctx context.Context) {
	b := Banner(s.o.Backend.Status(ctx))
	if b == s.banner {
		return
	}
	if b == "" {
		fmt.Fprintln(s.t, "ok: nothing stands in the way of mail any more")
	}
	fmt.Fprint(s.t, b)
	s.banner = b
}

// Banner says, in a few lines each starting with "!!", what keeps mail
// from being delivered; "" when nothing does.
func Banner(st agent.Status) string {
	var b strings.Builder
	if !st.Running {
		fmt.Fprintln(&b, "!! the agent is not running: alarms wait on flash until it starts (mailagent run)")
	}
	if d := st.Delivery; d.Failing != "" {
		fmt.Fprintf(&b, "!! MAIL CANNOT BE DELIVERED: %s\n", d.Failing)
		if d.Hint != "" {
			fmt.Fprintf(&b, "!!   %s\n", d.Hint)
		}
		if n := st.Queue.Memory + st.Queue.Spooled; n > 0 {
			fmt.Fprintf(&b, "!!   %s wait", plural(n, "alarm"))
			if d.NextTry != nil {
				fmt.Fprintf(&b, "; next try %s", d.NextTry.Local().Format(time.DateTime))
			}
			fmt.Fprintln(&b)
		}
	}
	if t := st.OAuth2; t != nil && t.Fix != "" {
		fmt.Fprintf(&b, "!! OAuth2: %s\n!!   %s\n", t.Summary, t.Fix)
	}
	if t := st.OAuth2; t != nil && t.SecretNote != "" && t.SecretDaysLeft != nil {
		fmt.Fprintf(&b, "!! OAuth2 client secret expires %s (%s): %s\n", t.SecretExpires, plural(*t.SecretDaysLeft, "day"), t.SecretNote)
	}
	if len(st.Problems) > 0 {
		keys := make([]string, 0, len(st.Problems))
		for _, p := range st.Problems {
			if p.Key != "" && !slices.Contains(keys, p.Key) { // the keyless one says there is no file yet
				keys = append(keys, p.Key)
			}
		}
		fmt.Fprintf(&b, "!! mail cannot be sent yet: %s (set, then commit)\n", strings.Join(keys, ", "))
	}
	if st.Clock != "" && st.Clock != "ok" {
		fmt.Fprintf(&b, "!! clock %s\n", st.Clock)
	}
	return b.String()
}

// read returns the next line: one typed ahead while a command ran, or one
// it asks the input goroutine for. A line asked for while a command ran
// and not yet typed is taken as it is.
func (s *session) read(ctx context.Context, hidden bool) (string, error) {
	if len(s.typeahead) > 0 {
		line := s.typeahead[0]
		s.typeahead = s.typeahead[1:]
		return line, nil
	}
	if s.ended != nil {
		return "", s.ended
	}
	if !s.outstanding {
		s.reqs <- hidden
		s.outstanding = true
	}
	select {
	case in := <-s.lines:
		s.outstanding = false
		if in.err != nil && !errors.Is(in.err, ErrInterrupt) {
			s.ended = in.err // the input goroutine has stopped
		}
		return in.line, in.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// ask prints prompt and reads a line without echo.
func (s *session) ask(ctx context.Context, prompt string) (string, error) {
	fmt.Fprint(s.t, prompt)
	line, err := s.read(ctx, true)
	if !s.t.raw {
		fmt.Fprintln(s.t) // a raw line has had its line end echoed
	}
	return line, err
}

// errInterrupted is what a command stopped with Ctrl-C answers.
var errInterrupted = errors.New("interrupted: the command was stopped")

// shared runs a command shared with the command line. While it runs the
// input is still read: Ctrl-C stops it, and the lines typed are kept in
// order, given to it when it reads (a pasted address) and otherwise run
// as the next commands. The end of the input is the end of its input and,
// once it is done, of the session.
func (s *session) shared(ctx context.Context, args ...string) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := &chanReader{ctx: cctx, want: make(chan struct{}), lines: make(chan string)}
	done := make(chan error, 1)
	go func() { done <- s.o.Command(cctx, args, in, s.t) }()
	interrupted, wanting, closed := false, false, false
	for {
		if wanting && len(s.typeahead) > 0 {
			select {
			case in.lines <- s.typeahead[0]:
				s.typeahead = s.typeahead[1:]
			case <-cctx.Done(): // stopped before it took the line: the line stays
			}
			wanting = false
			continue
		}
		if wanting && s.ended != nil {
			if !closed {
				close(in.lines) // the end of its input
				closed = true
			}
			wanting = false
		}
		if !s.outstanding && s.ended == nil {
			s.reqs <- false
			s.outstanding = true
		}
		var lines chan input // nil, never ready, once the input ended
		if s.ended == nil {
			lines = s.lines
		}
		select {
		case err := <-done:
			if interrupted && errors.Is(err, context.Canceled) {
				return errInterrupted
			}
			return err
		case <-in.want:
			wanting = true
		case ev := <-lines:
			s.outstanding = false
			switch {
			case errors.Is(ev.err, ErrInterrupt):
				interrupted = true
				cancel()
			case ev.err != nil:
				s.ended = ev.err
			default:
				s.typeahead = append(s.typeahead, ev.line)
			}
		}
	}
}

// chanReader is a shared command's input: it asks the session for a line
// on want and gets it on lines (closed at the end of the input).
type chanReader struct {
	ctx   context.Context
	want  chan struct{}
	lines chan string
	rest  []byte
}

func (r *chanReader) Read(p []byte) (int, error) {
	if len(r.rest) == 0 {
		select {
		case r.want <- struct{}{}:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
		select {
		case line, ok := <-r.lines:
			if !ok {
				return 0, io.EOF
			}
			r.rest = []byte(line + "\n")
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

func (s *session) authorize(ctx context.Context, args []string) error {
	cmd := []string{"authorize"}
	switch {
	case len(args) == 0:
	case len(args) == 1 && (args[0] == "paste" || args[0] == "device"):
		cmd = append(cmd, "--"+args[0])
	default:
		return errors.New("authorize takes nothing, paste or device")
	}
	return s.shared(ctx, cmd...)
}

// alarm raises "alarm SEVERITY CODE TEXT…" or clears "alarm clear CODE".
func (s *session) alarm(ctx context.Context, line string, args []string) error {
	if len(args) < 2 {
		return errors.New("say alarm SEVERITY CODE TEXT (critical, major, minor, warning or info), or alarm clear CODE")
	}
	if args[0] == "clear" {
		if len(args) != 2 {
			return errors.New("alarm clear takes the code only")
		}
		return s.shared(ctx, "alarm", "--clear", "--code", args[1], "--source", "console")
	}
	text := rest(line, 3)
	return s.shared(ctx, "alarm", "--severity", args[0], "--code", args[1], "--source", "console", "--", text)
}

// rest is line after its first n words, spaces inside it kept.
func rest(line string, n int) string {
	s := strings.TrimSpace(line)
	for range n {
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			return ""
		}
		s = strings.TrimLeft(s[i:], " \t")
	}
	return s
}

// key looks up a key the console may change.
func key(name string) (config.Key, error) {
	k, err := config.LookupKey(name)
	if err != nil {
		return k, err
	}
	if name == passwordKey {
		return k, errors.New("the admin password changes with passwd")
	}
	return k, nil
}

const passwordKey = "admin.password_hash"

// typingSecret reports whether line is "set KEY " with KEY a secret: what
// follows is its value, and is echoed as *.
func typingSecret(line []byte) bool {
	f := strings.Fields(string(line))
	if len(f) < 2 || f[0] != "set" || len(f) == 2 && !strings.HasSuffix(string(line), " ") {
		return false
	}
	k, err := config.LookupKey(f[1])
	return err == nil && k.Kind == config.SecretKind
}

func (s *session) set(line string) error {
	fields := strings.Fields(line)
	if len(fields) < 2 {
		return errors.New("say set KEY VALUE; show lists the keys")
	}
	k, err := key(fields[1])
	if err != nil {
		return err
	}
	val := rest(line, 2)
	if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
		if u, err := strconv.Unquote(val); err == nil {
			val = u
		}
	}
	if val == "" {
		return fmt.Errorf("set %s needs a value; unset %s returns it to its default", k.Name, k.Name)
	}
	return s.stage(k, val, k.Kind == config.SecretKind)
}

// stage checks that val parses for k and keeps it as a pending change.
func (s *session) stage(k config.Key, val string, secret bool) error {
	var scratch config.Config
	if err := k.Set(&scratch, val); err != nil {
		return err
	}
	s.pending[k.Name] = change{value: val}
	if secret {
		fmt.Fprintf(s.t, "ok: %s is set (not shown); commit saves it\n", k.Name)
	} else {
		fmt.Fprintf(s.t, "ok: %s = %s; commit saves it\n", k.Name, k.Get(&scratch))
	}
	return nil
}

func (s *session) unset(args []string) error {
	if len(args) != 1 {
		return errors.New("say unset KEY")
	}
	k, err := key(args[0])
	if err != nil {
		return err
	}
	s.pending[k.Name] = change{unset: true}
	fmt.Fprintf(s.t, "ok: %s returns to its default; commit saves it\n", k.Name)
	return nil
}

func (s *session) secret(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("say secret KEY, e.g. secret smtp.password")
	}
	k, err := key(args[0])
	if err != nil {
		return err
	}
	if k.Kind != config.SecretKind {
		return fmt.Errorf("%s is not a secret: use set %s VALUE", k.Name, k.Name)
	}
	val, err := s.ask(ctx, k.Name+" (not shown; an empty line keeps it as it is): ")
	if err != nil {
		return err
	}
	if val == "" {
		fmt.Fprintf(s.t, "%s not changed\n", k.Name)
		return nil
	}
	return s.stage(k, val, true)
}

// changeSet is the pending changes as a config.Change.
func (s *session) changeSet() config.Change {
	ch := config.Change{Set: map[string]string{}}
	for _, name := range slices.Sorted(maps.Keys(s.pending)) {
		if p := s.pending[name]; p.unset {
			ch.Unset = append(ch.Unset, name)
		} else {
			ch.Set[name] = p.value
		}
	}
	return ch
}

var errNotSaved = errors.New("nothing was saved")

func (s *session) commit() error {
	if len(s.pending) == 0 {
		fmt.Fprintln(s.t, "nothing to commit")
		return nil
	}
	var errs map[string]string
	var rest config.Problems
	err := s.o.Backend.UpdateConfig(func(c *config.Config) error {
		errs, rest = s.changeSet().Apply(c, s.o.Backend.Board())
		if len(errs) > 0 {
			return errNotSaved
		}
		return nil
	})
	if errors.Is(err, errNotSaved) {
		for _, name := range slices.Sorted(maps.Keys(errs)) {
			fmt.Fprintf(s.t, "error: %s: %s\n", name, errs[name])
		}
		return errors.New("nothing was saved: change the keys named with set or unset, then commit again (revert drops every change)")
	}
	if err != nil {
		return fmt.Errorf("nothing was saved: %w", err)
	}
	fmt.Fprintf(s.t, "ok: %s saved; the agent uses them from the next mail on\n", plural(len(s.pending), "change"))
	clear(s.pending)
	for _, p := range rest {
		fmt.Fprintf(s.t, "note: %v\n", p)
	}
	return nil
}

func (s *session) show(args []string) error {
	if len(args) > 1 {
		return errors.New("say show, or show SECTION")
	}
	section := ""
	if len(args) == 1 {
		section = args[0]
	}
	c, err := s.o.Backend.Config()
	if err != nil {
		return err
	}
	s.changeSet().Apply(&c, s.o.Backend.Board()) // each value parsed when staged
	if err := config.Show(s.t, &c, s.o.Backend.Board(), section, func(name string) bool { return name == passwordKey }); err != nil {
		return err
	}
	if len(s.pending) > 0 {
		fmt.Fprintf(s.t, "# not committed: %s (commit saves, revert drops)\n", strings.Join(slices.Sorted(maps.Keys(s.pending)), ", "))
	}
	return nil
}

func (s *session) export() error {
	c, err := s.o.Backend.Config()
	if err != nil {
		return err
	}
	s.t.Write(config.Export(&c))
	if len(s.pending) > 0 {
		fmt.Fprintf(s.t, "# as saved; %s not committed\n", plural(len(s.pending), "change"))
	}
	return nil
}

func (s *session) log(args []string) error {
	n := 20
	if len(args) == 1 {
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 1 {
			return fmt.Errorf("log takes a number of lines, not %q", args[0])
		}
		n = v
	} else if len(args) > 1 {
		return errors.New("say log, or log N")
	}
	if s.o.Log == nil {
		return errors.New("this console runs outside the agent and has no log: the agent writes it to its standard error, and errors to syslog; the console on the serial port shows it")
	}
	lines := s.o.Log.Last(n)
	if len(lines) == 0 {
		fmt.Fprintln(s.t, "the log is empty")
	}
	for _, l := range lines {
		fmt.Fprintln(s.t, l)
	}
	return nil
}

func (s *session) passwd(ctx context.Context) error {
	pw, err := s.ask(ctx, "new admin password (not shown): ")
	if err != nil {
		return err
	}
	hash, err := s.o.HashPassword(pw)
	if err != nil {
		return err
	}
	again, err := s.ask(ctx, "the same again: ")
	if err != nil {
		return err
	}
	if again != pw {
		return errors.New("the two passwords differ; the password was not changed")
	}
	if err := s.o.Backend.SetPasswordHash(hash); err != nil {
		return fmt.Errorf("the password was not changed: %w", err)
	}
	fmt.Fprintln(s.t, "ok: the admin password is set; log in on the web page with it")
	return nil
}

// maxImport is the largest file import takes.
const maxImport = 64 << 10

func (s *session) importFile(ctx context.Context, args []string) error {
	if len(args) != 1 || args[0] != "google-client" && args[0] != "google-service-account" {
		return errors.New("say import google-client (the OAuth client's JSON) or import google-service-account (the key's JSON)")
	}
	fmt.Fprintln(s.t, "paste the file, then a line with a single dot (it is not shown: it holds a secret)")
	var b strings.Builder
	lines := 0
	for {
		line, err := s.read(ctx, true)
		if err != nil {
			return fmt.Errorf("import: %w; nothing was imported", err)
		}
		if line == "." {
			break
		}
		lines++
		if b.Len()+len(line) > maxImport {
			return fmt.Errorf("import: more than %d bytes: not a Google JSON file; nothing was imported", maxImport)
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	fmt.Fprintf(s.t, "%s read\n", plural(lines, "line"))
	if err := s.o.Backend.Import(args[0], []byte(b.String())); err != nil {
		return err
	}
	fmt.Fprintln(s.t, "ok: imported and saved")
	return nil
}

// plural is "1 change", "2 changes".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
