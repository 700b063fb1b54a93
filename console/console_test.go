package console

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"mailagent/appliance/agent"
	"mailagent/appliance/config"
	"mailagent/appliance/limit"
	"mailagent/board"
	"mailagent/console/ptytest"
)

// backend is the real agent's WebUI on a scratch data directory, with the
// status the banner reads replaceable.
type backend struct {
	*agent.Admin
	mu     sync.Mutex
	status *agent.Status
}

func (b *backend) Status(ctx context.Context) agent.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.status != nil {
		return *b.status
	}
	return b.Admin.Status(ctx)
}

func (b *backend) setStatus(st *agent.Status) {
	b.mu.Lock()
	b.status = st
	b.mu.Unlock()
}

type fixture struct {
	dir  string
	b    *backend
	o    Options
	mu   sync.Mutex
	runs [][]string // what Command was asked to run
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	p, err := board.Lookup("host")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a, err := agent.New(agent.Options{Board: p, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, b: &backend{Admin: agent.NewAdmin(a)}}
	f.b.setStatus(&agent.Status{Running: true}) // nothing in the way unless a test says so
	f.o = Options{
		Backend: f.b,
		Command: func(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
			f.mu.Lock()
			f.runs = append(f.runs, args)
			f.mu.Unlock()
			if args[0] == "authorize" { // reads the pasted address, as the real one does
				line, _ := io.ReadAll(io.LimitReader(in, 1))
				io.WriteString(out, "read "+string(line)+"\n")
			}
			io.WriteString(out, "ran "+strings.Join(args, " ")+"\n")
			return nil
		},
		HashPassword: func(pw string) (string, error) {
			if len(pw) < 10 {
				return "", errors.New("the password must be at least 10 characters long")
			}
			h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
			return string(h), err
		},
		CheckPassword: func(hash, pw string) bool { return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil },
		Version:       "test",
		Where:         "a test",
	}
	return f
}

// talk runs one session on input and returns what the console wrote.
func (f *fixture) talk(t *testing.T, input string, raw bool) string {
	t.Helper()
	var out bytes.Buffer
	if err := Run(context.Background(), NewTerm(strings.NewReader(input), &out, raw), f.o); err != nil {
		t.Fatalf("session: %v\n%s", err, out.String())
	}
	return out.String()
}

func (f *fixture) saved(t *testing.T) (*config.File, bool) {
	t.Helper()
	file, err := config.Load(filepath.Join(f.dir, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return file, !file.Missing
}

func wantIn(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("the console did not say %q:\n%s", w, out)
		}
	}
}

func TestSetShowCommit(t *testing.T) {
	f := newFixture(t)
	out := f.talk(t, strings.Join([]string{
		"set mail.from alarm@example.test",
		"set smtp.port eighty",
		"set no.such x",
		"set admin.password_hash x",
		"unset smtp.port",
		"show mail",
		"commit",
		"show mail",
	}, "\n")+"\n", false)
	wantIn(t, out,
		"ok: mail.from = alarm@example.test; commit saves it",
		"error: smtp.port", "eighty",
		"error: ", "no.such",
		"the admin password changes with passwd",
		`from = "alarm@example.test"`,
		"# not committed: mail.from, smtp.port",
		"ok: 2 changes saved",
	)
	if strings.Count(out, "# not committed") != 1 {
		t.Errorf("show after commit still lists changes:\n%s", out)
	}
	file, ok := f.saved(t)
	if !ok || file.Config.Mail.From != "alarm@example.test" {
		t.Fatalf("mail.from not saved: %+v", file.Config.Mail)
	}
}

func TestNothingSavedWithoutCommit(t *testing.T) {
	for _, tc := range []struct{ name, input, says string }{
		{"revert", "set mail.from a@example.test\nrevert\ncommit\n", "ok: 1 change dropped"},
		{"end of input", "set mail.from a@example.test\n", "1 change dropped, not committed"},
		{"exit twice", "set mail.from a@example.test\nexit\nexit\n", "exit again to drop them"},
		{"interrupted line", "set mail.from a@example.test\x03commit\n", "nothing to commit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			out := f.talk(t, tc.input, tc.name == "interrupted line")
			wantIn(t, out, tc.says)
			if _, ok := f.saved(t); ok {
				t.Errorf("mailagent.toml was written:\n%s", out)
			}
		})
	}
}

func TestCommitRefusesAProblemItBrings(t *testing.T) {
	f := newFixture(t)
	out := f.talk(t, "set mail.from alarm@example.test\ncommit\nset smtp.port 70000\ncommit\n", false)
	wantIn(t, out, "ok: 1 change saved", "error: smtp.port:", "nothing was saved")
	file, _ := f.saved(t)
	if file.Config.SMTP.Port != 0 || file.Config.Mail.From != "alarm@example.test" {
		t.Errorf("the refused commit changed the file: %+v %+v", file.Config.SMTP, file.Config.Mail)
	}
}

// TestCommitRefusesTenantCommon shows commit judging the tenant as config
// check does: common or consumers, in any case, cannot go with
// microsoft365, whether the change sets the tenant or the mode.
func TestCommitRefusesTenantCommon(t *testing.T) {
	for _, tenant := range []string{"common", "Common", "COMMON", "Consumers"} {
		t.Run(tenant, func(t *testing.T) {
			f := newFixture(t)
			out := f.talk(t, "set oauth2.mode microsoft365\nset oauth2.tenant "+tenant+"\ncommit\n", false)
			wantIn(t, out, `error: oauth2.tenant: mode microsoft365 (password grant) cannot use tenant "`+tenant+`"`, "nothing was saved")
			if _, ok := f.saved(t); ok {
				t.Fatalf("the refused commit wrote mailagent.toml:\n%s", out)
			}
			out = f.talk(t, "set oauth2.tenant "+tenant+"\ncommit\nset oauth2.mode microsoft365\ncommit\n", false)
			wantIn(t, out, "ok: 1 change saved", "error: oauth2.tenant: ", "nothing was saved")
			if file, _ := f.saved(t); file.Config.OAuth2.Mode != "" || file.Config.OAuth2.Tenant != tenant {
				t.Errorf("after the refused commit the file has mode %q, tenant %q; want no mode, tenant %s", file.Config.OAuth2.Mode, file.Config.OAuth2.Tenant, tenant)
			}
		})
	}
}

func TestLineEditingOnARawLine(t *testing.T) {
	f := newFixture(t)
	// Backspace, Delete, Ctrl-U, a cursor key and CR LF, as a terminal sends them.
	out := f.talk(t, "sex\x7ft mail.from b\x08a@example.test\x1b[D\r\ngarbage\x15commit\r", true)
	wantIn(t, out, "sex\b \bt mail.from b\b \ba@example.test\r\n", "ok: 1 change saved; ")
	if strings.Contains(strings.ReplaceAll(out, "\r\n", ""), "\n") {
		t.Errorf("a raw line got a bare LF:\n%q", out)
	}
	file, _ := f.saved(t)
	if file.Config.Mail.From != "a@example.test" {
		t.Errorf("mail.from = %q", file.Config.Mail.From)
	}
}

func TestSecretIsNeverShown(t *testing.T) {
	const canary = "Canary-Secret-7f3a"
	f := newFixture(t)
	out := f.talk(t, "set smtp.password "+canary+"\rset smtp.user alarm@example.test\rshow smtp\rcommit\rshow smtp\r", true)
	if strings.Contains(out, canary) {
		t.Fatalf("the secret was shown:\n%s", out)
	}
	wantIn(t, out, "set smtp.password "+strings.Repeat("*", len(canary))+"\r\n", "ok: smtp.password is set (not shown)", `password = "(set)"`, "ok: 2 changes saved")
	file, _ := f.saved(t)
	if file.Config.SMTP.Password.Reveal() != canary {
		t.Errorf("the secret was not saved")
	}
	// secret asks without echo; an empty answer keeps the stored secret.
	out = f.talk(t, "secret smtp.password\r"+canary+"x\rexport\rcommit\rsecret smtp.password\r\rcommit\r", true)
	if strings.Contains(out, canary) {
		t.Fatalf("the secret was shown:\n%s", out)
	}
	wantIn(t, out, "ok: smtp.password is set (not shown)", "ok: 1 change saved", "smtp.password not changed", "nothing to commit")
	if file, _ := f.saved(t); file.Config.SMTP.Password.Reveal() != canary+"x" {
		t.Errorf("the secret was not saved")
	}
}

func TestPasswd(t *testing.T) {
	f := newFixture(t)
	out := f.talk(t, "passwd\nshort\npasswd\nlong-enough-1\nlong-enough-2\n", false)
	wantIn(t, out, "at least 10 characters", "the two passwords differ")
	if f.b.PasswordHash() != "" {
		t.Fatal("a refused password was stored")
	}
	out = f.talk(t, "passwd\nlong-enough-1\nlong-enough-1\n", false)
	wantIn(t, out, "ok: the admin password is set")
	if strings.Contains(out, "long-enough-1") {
		t.Errorf("the password was shown:\n%s", out)
	}
	if !f.o.CheckPassword(f.b.PasswordHash(), "long-enough-1") {
		t.Error("the stored hash does not match the password")
	}
}

func TestRequireLogin(t *testing.T) {
	loginDelay = 0
	f := newFixture(t)
	f.talk(t, "passwd\nlong-enough-1\nlong-enough-1\nset console.require_login true\ncommit\n", false)

	var out bytes.Buffer
	err := Run(context.Background(), NewTerm(strings.NewReader("one\ntwo\nthree\nshow\n"), &out, false), f.o)
	if !errors.Is(err, ErrNoLogin) {
		t.Fatalf("three wrong passwords: err = %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "[mail]") {
		t.Errorf("show ran without a login:\n%s", out.String())
	}
	got := f.talk(t, "wrong\nlong-enough-1\nshow console\n", false)
	wantIn(t, got, "wrong password", "require_login = true")
}

// TestLoginLimitAcrossSessions: a line is one client, so ending a session
// after three wrong passwords and starting another does not give more
// tries than the limiter's burst; the right password is refused too while
// the line waits, and works once its time has passed.
func TestLoginLimitAcrossSessions(t *testing.T) {
	loginDelay = 0
	f := newFixture(t)
	f.talk(t, "passwd\nlong-enough-1\nlong-enough-1\nset console.require_login true\ncommit\n", false)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	f.o.Logins = limit.NewAttempts(limit.AttemptOptions{Now: func() time.Time { return now }})
	session := func(input string) (string, error) {
		var out bytes.Buffer
		err := Run(context.Background(), NewTerm(strings.NewReader(input), &out, false), f.o)
		return out.String(), err
	}
	if _, err := session("one\ntwo\nthree\n"); !errors.Is(err, ErrNoLogin) {
		t.Fatalf("three wrong passwords: %v", err)
	}
	out, err := session("four\nfive\nlong-enough-1\nshow console\n")
	if !errors.Is(err, ErrNoLogin) || strings.Count(out, "wrong password\n") != 2 || !strings.Contains(out, "too many wrong passwords on this line: try again in 60 seconds") {
		t.Fatalf("a second session after 3 wrong tries: err %v\n%s", err, out)
	}
	if strings.Contains(out, "require_login = true") {
		t.Fatalf("the right password was let in while the line waits:\n%s", out)
	}
	now = now.Add(time.Minute)
	out, err = session("long-enough-1\nshow console\n")
	if err != nil || !strings.Contains(out, "require_login = true") {
		t.Fatalf("a minute later, the right password: err %v\n%s", err, out)
	}
}

func TestBanner(t *testing.T) {
	f := newFixture(t)
	next := time.Date(2026, 11, 24, 12, 0, 0, 0, time.Local)
	failing := &agent.Status{Running: true, Delivery: agent.DeliveryReport{Failing: "connecting to smtp.example.test:587: connection refused",
		Hint: "check smtp.host and smtp.port", NextTry: &next}, Queue: agent.QueueReport{Spooled: 3}, Problems: []agent.KeyProblem{{Message: "no configuration yet"}, {Key: "mail.to", Message: "not set"}}}
	f.b.setStatus(failing)
	// The banner shows at the start, not again while it stays the same,
	// and the console says when it is over.
	in, w := io.Pipe()
	var out ptytest.Screen
	done := make(chan error)
	go func() { done <- Run(context.Background(), NewTerm(in, &out, false), f.o) }()
	io.WriteString(w, "help\n")
	io.WriteString(w, "help\n")
	out.WaitFor(t, "mailagent> ", 3, 10*time.Second)
	f.b.setStatus(&agent.Status{Running: true})
	io.WriteString(w, "help\n")
	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := out.String()
	wantIn(t, got, "!! MAIL CANNOT BE DELIVERED: connecting to smtp.example.test:587: connection refused\n",
		"!!   check smtp.host and smtp.port\n", "!!   3 alarms wait; next try 2026-11-24 12:00:00\n",
		"!! mail cannot be sent yet: mail.to (set, then commit)\n", "ok: nothing stands in the way of mail any more")
	if n := strings.Count(got, "MAIL CANNOT BE DELIVERED"); n != 1 {
		t.Errorf("the banner showed %d times:\n%s", n, got)
	}
	if b := Banner(agent.Status{Running: true}); b != "" {
		t.Errorf("a banner with nothing in the way: %q", b)
	}
	if b := Banner(agent.Status{}); !strings.Contains(b, "the agent is not running") {
		t.Errorf("no banner for a stopped agent: %q", b)
	}
}

func TestSharedCommands(t *testing.T) {
	f := newFixture(t)
	out := f.talk(t, strings.Join([]string{
		"status", "test", "queue", "queue flush",
		"alarm major LINK-DOWN the  uplink is down",
		"alarm clear LINK-DOWN",
		"alarm major",
		"authorize paste", "http://localhost/auth.htm?code=x&state=y",
		"authorize sideways",
	}, "\n")+"\n", false)
	want := [][]string{
		{"status"}, {"test"}, {"queue"}, {"queue", "flush"},
		{"alarm", "--severity", "major", "--code", "LINK-DOWN", "--source", "console", "--", "the  uplink is down"},
		{"alarm", "--clear", "--code", "LINK-DOWN", "--source", "console"},
		{"authorize", "--paste"},
	}
	if !slices.EqualFunc(f.runs, want, slices.Equal) {
		t.Errorf("ran %q, want %q", f.runs, want)
	}
	wantIn(t, out, "error: say alarm SEVERITY CODE TEXT", "read h", "error: authorize takes nothing, paste or device")
}

func TestImportAndLog(t *testing.T) {
	f := newFixture(t)
	out := f.talk(t, "import google-client\n{\"web\": {\"client_id\": \"x\"\n.\nlog\n", false)
	wantIn(t, out, "1 line read", "error: import google client:", "no log")
	if _, ok := f.saved(t); ok {
		t.Error("a refused import wrote mailagent.toml")
	}
	const secret = "GOCSPX-canary-secret"
	f.o.Log = NewRing(3)
	for _, l := range []string{"one", "two", "three", "four"} {
		io.WriteString(f.o.Log, "level=INFO msg="+l+"\n")
	}
	out = f.talk(t, "import google-client\n"+`{"web":{"client_id":"123.apps.googleusercontent.com","client_secret":"`+secret+`",`+
		`"auth_uri":"https://accounts.google.com/o/oauth2/auth","token_uri":"https://oauth2.googleapis.com/token",`+
		`"redirect_uris":["https://box.example.test/auth.htm"]}}`+"\n.\nlog 2\nlog x\n", false)
	wantIn(t, out, "ok: imported and saved", "msg=three\nlevel=INFO msg=four\n", `log takes a number of lines, not "x"`)
	if strings.Contains(out, secret) || strings.Contains(out, "msg=two") {
		t.Errorf("the import showed its secret, or log showed too much:\n%s", out)
	}
	file, _ := f.saved(t)
	if file.Config.OAuth2.ClientID != "123.apps.googleusercontent.com" {
		t.Errorf("client_id = %q", file.Config.OAuth2.ClientID)
	}
}

func TestUnknownCommand(t *testing.T) {
	f := newFixture(t)
	out := f.talk(t, "frobnicate\n\nhelp\n", false)
	wantIn(t, out, `error: unknown command "frobnicate": type help`, "secret KEY", "commit")
}

func TestCtrlCStopsALongCommand(t *testing.T) {
	f := newFixture(t)
	started := make(chan struct{})
	f.o.Command = func(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
		close(started)
		io.WriteString(out, "On any device, open the address and enter the code\n")
		<-ctx.Done() // a device sign-in waits this long
		return ctx.Err()
	}
	in, w := io.Pipe()
	var out ptytest.Screen
	done := make(chan error)
	go func() { done <- Run(context.Background(), NewTerm(in, &out, true), f.o) }()
	io.WriteString(w, "authorize device\r")
	<-started
	io.WriteString(w, "\x03")
	out.WaitFor(t, "error: interrupted: the command was stopped\r\n", 1, 10*time.Second)
	io.WriteString(w, "help\r")
	out.WaitFor(t, "end the session", 1, 10*time.Second)
	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestInputEndsWhileACommandRuns(t *testing.T) {
	f := newFixture(t)
	in := &eofSignal{r: strings.NewReader("test\nqueue\nset mail.from a@example.test\ncommit\nstatus\n"), eof: make(chan struct{})}
	f.o.Command = func(ctx context.Context, args []string, _ io.Reader, out io.Writer) error {
		select { // the next lines and the end of the input come meanwhile
		case <-in.eof:
		case <-ctx.Done():
			return ctx.Err()
		}
		io.WriteString(out, "ran "+args[0]+"\n")
		return nil
	}
	// The lines that came while a command ran are the next commands, in order.
	var out bytes.Buffer
	if err := Run(context.Background(), NewTerm(in, &out, false), f.o); err != nil {
		t.Fatalf("session: %v\n%s", err, out.String())
	}
	wantIn(t, out.String(), "ran test\nmailagent> ran queue\nmailagent> ok: mail.from = a@example.test; commit saves it\nmailagent> ok: 1 change saved", "ran status")
}

// eofSignal closes eof once r has been read to its end.
type eofSignal struct {
	r    io.Reader
	once sync.Once
	eof  chan struct{}
}

func (e *eofSignal) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}

func TestInputEndsInsideAQuestion(t *testing.T) {
	for _, input := range []string{"passwd\n", "passwd\nlong-enough-1\n", "secret smtp.password\n", "import google-client\n{\n"} {
		f := newFixture(t)
		out := f.talk(t, input, false) // returns: the session ends, no hang
		wantIn(t, out, "error: ")
	}
}

func TestHelpFitsIn80Columns(t *testing.T) {
	f := newFixture(t)
	out := f.talk(t, "help\n", false)
	for _, c := range commands {
		if !strings.Contains(out, c.short) {
			t.Errorf("help does not list %s", c.name)
		}
	}
	for line := range strings.SplitSeq(out, "\n") {
		if len(line) > 80 {
			t.Errorf("help line of %d columns: %q", len(line), line)
		}
	}
}
