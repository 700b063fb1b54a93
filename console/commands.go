package console

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"mailagent/appliance/config"
)

// command is one console command: what help shows of it, and what runs
// it. run gets the whole line, and its words after the command's name.
type command struct {
	name, args, short string
	alias             string // another name, "" for none
	run               func(s *session, ctx context.Context, line string, args []string) error
}

// errExit ends the session.
var errExit = errors.New("console: exit")

// commands is every command, in the order help lists them: help and the
// dispatch are both read from it. It is filled in init because help, one
// of its commands, reads it.
var commands []command

func init() {
	shared := func(s *session, ctx context.Context, line string, args []string) error {
		return s.shared(ctx, strings.Fields(line)...)
	}
	commands = []command{
		{"help", "", "this list", "?", func(s *session, _ context.Context, _ string, _ []string) error { s.help(); return nil }},
		{"status", "", "token, queue and delivery state", "", shared},
		{"show", "[SECTION]", "the configuration, with changes not yet committed", "",
			func(s *session, _ context.Context, _ string, args []string) error { return s.show(args) }},
		{"set", "KEY VALUE", "change a key (then commit)", "",
			func(s *session, _ context.Context, line string, _ []string) error { return s.set(line) }},
		{"unset", "KEY", "return a key to its default (then commit)", "",
			func(s *session, _ context.Context, _ string, args []string) error { return s.unset(args) }},
		{"secret", "KEY", "set a secret: asked for, not shown (then commit)", "",
			func(s *session, ctx context.Context, _ string, args []string) error { return s.secret(ctx, args) }},
		{"commit", "", "check the changes and save them all, or none", "",
			func(s *session, _ context.Context, _ string, _ []string) error { return s.commit() }},
		{"revert", "", "drop the changes not yet committed", "", func(s *session, _ context.Context, _ string, _ []string) error {
			fmt.Fprintf(s.t, "ok: %s dropped\n", plural(len(s.pending), "change"))
			clear(s.pending)
			return nil
		}},
		{"authorize", "[paste|device]", "authorise the box at the OAuth2 provider", "",
			func(s *session, ctx context.Context, _ string, args []string) error { return s.authorize(ctx, args) }},
		{"test", "", "send a test mail now and show each step", "", shared},
		{"alarm", "SEVERITY CODE TEXT | clear CODE", "raise or clear an alarm", "",
			func(s *session, ctx context.Context, line string, args []string) error {
				return s.alarm(ctx, line, args)
			}},
		{"queue", "[flush]", "alarms waiting on flash; flush: try delivery now", "", shared},
		{"log", "[N]", "the agent's last N log lines (default 20)", "",
			func(s *session, _ context.Context, _ string, args []string) error { return s.log(args) }},
		{"passwd", "", "set the admin password (page and console)", "",
			func(s *session, ctx context.Context, _ string, _ []string) error { return s.passwd(ctx) }},
		{"import", "google-client | google-service-account", "paste a file downloaded from Google", "",
			func(s *session, ctx context.Context, _ string, args []string) error { return s.importFile(ctx, args) }},
		{"export", "", "the saved configuration without secrets", "",
			func(s *session, _ context.Context, _ string, _ []string) error { return s.export() }},
		{"exit", "", "end the session", "quit", func(s *session, _ context.Context, _ string, _ []string) error {
			if len(s.pending) > 0 && !s.exitAsked {
				s.exitAsked = true
				fmt.Fprintf(s.t, "%s not committed: commit saves, revert drops; exit again to drop them\n", plural(len(s.pending), "change"))
				return nil
			}
			return errExit
		}},
	}
}

// lookup finds the command called name, or by its alias.
func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name || c.alias != "" && c.alias == name {
			return c, true
		}
	}
	return command{}, false
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
