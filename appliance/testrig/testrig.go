// Package testrig runs a real Postfix with Dovecot SASL for tests.
//
// [Start] starts a private Postfix + Dovecot pair (scripts/testrig.sh) in
// a temporary directory, on free ports of 127.0.0.1, together with an
// [oauthtest.Server] that Dovecot asks, by RFC 7662 introspection, whether
// an OAuth2 access token is live. Every recipient in [Rig.Domain] lands in
// [Rig.Maildir], where [Rig.WaitMail] finds it. Each call gets its own
// rig, so parallel tests and packages do not share state.
//
// The ports:
//   - SubmissionPort: STARTTLS required; after it AUTH PLAIN LOGIN XOAUTH2
//     OAUTHBEARER; mail needs AUTH.
//   - SMTPSPort: implicit TLS, the same AUTH.
//   - BearerPort: STARTTLS required; AUTH offers OAUTHBEARER only.
//   - PlainPort: no STARTTLS at all. AUTH is offered and works in plain
//     text and mail for the domain is accepted without AUTH, so a client
//     that should have refused the port is caught by what arrives.
//
// Recipients outside the domain are refused at RCPT on every port.
//
// The rig needs root and the Debian packages scripts/install-deps.sh
// installs. It never skips: a rig that cannot start fails the test with
// the daemons' logs. Tests that use it carry the build tag "rig".
package testrig

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailagent/appliance/oauthtest"
)

// Rig is a running Postfix + Dovecot pair. Its fields are read-only.
type Rig struct {
	Host                                             string // "127.0.0.1"
	SubmissionPort, SMTPSPort, BearerPort, PlainPort int

	CAFile string         // PEM of the rig's CA, which signed the server certificate
	CAPool *x509.CertPool // holds that CA only

	User, Password string // the password account, User is an address in Domain
	Domain         string // "example.test": any recipient there is delivered to Maildir, but refused@ (550) and busy@ (450)

	Dir     string // everything of this rig: configuration, queue, logs, CA
	Maildir string // Dir/Maildir

	Tokens *oauthtest.Server // the token server Dovecot introspects against

	script string
}

const (
	domain = "example.test"
	user   = "alarm@" + domain

	// How long the script may take to start or stop the daemons.
	scriptTimeout = 60 * time.Second
	// Attempts to start when another process took a port in the meantime.
	attempts = 3
)

// Start starts a rig and stops it, removing its directory, when the test
// ends. On any failure it calls t.Fatalf with the daemons' log tail.
func Start(t testing.TB) *Rig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("testrig: Postfix and Dovecot need root; run the rig tests as root (scripts/install-deps.sh installs the packages)")
	}
	script, err := findScript()
	if err != nil {
		t.Fatalf("testrig: %v", err)
	}
	pass := make([]byte, 12)
	rand.Read(pass) // never returns an error
	r := &Rig{
		Host:     "127.0.0.1",
		User:     user,
		Password: hex.EncodeToString(pass),
		Domain:   domain,
		Tokens:   oauthtest.New(t),
		script:   script,
	}

	var out []byte
	for range attempts {
		if err := r.pickPorts(); err != nil {
			t.Fatalf("testrig: %v", err)
		}
		// A short directory: Unix socket paths are limited to 108 bytes.
		dir, err := os.MkdirTemp("", "rig")
		if err != nil {
			t.Fatalf("testrig: %v", err)
		}
		r.Dir = dir
		r.Maildir = filepath.Join(dir, "Maildir")
		r.CAFile = filepath.Join(dir, "ca.pem")
		out, err = r.run("start")
		if err == nil {
			break
		}
		os.RemoveAll(dir)
		r.Dir = ""
		if !bytes.Contains(out, []byte("ddress already in use")) {
			t.Fatalf("testrig: start: %v\n%s", err, out)
		}
	}
	if r.Dir == "" {
		t.Fatalf("testrig: start: ports kept being taken\n%s", out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testrig: logs of the rig in %s:\n%s", r.Dir, r.Logs())
		}
		r.Stop(t)
		os.RemoveAll(r.Dir)
	})

	pem, err := os.ReadFile(r.CAFile)
	if err != nil {
		t.Fatalf("testrig: %v", err)
	}
	r.CAPool = x509.NewCertPool()
	if !r.CAPool.AppendCertsFromPEM(pem) {
		t.Fatalf("testrig: no certificate in %s", r.CAFile)
	}
	return r
}

// Stop stops the daemons; the test's cleanup does this anyway. Calling it
// again does nothing.
func (r *Rig) Stop(t testing.TB) {
	t.Helper()
	if out, err := r.run("stop"); err != nil {
		t.Errorf("testrig: stop: %v\n%s", err, out)
	}
}

// Addr is "127.0.0.1:port", for dialing one of the rig's ports.
func (r *Rig) Addr(port int) string {
	return net.JoinHostPort(r.Host, strconv.Itoa(port))
}

// TLSConfig trusts the rig's CA only.
func (r *Rig) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: r.CAPool, ServerName: r.Host}
}

// Logs returns the tail of the Postfix and Dovecot logs.
func (r *Rig) Logs() string {
	var b strings.Builder
	for _, name := range []string{"postfix.log", "dovecot.log", "start.log"} {
		data, err := os.ReadFile(filepath.Join(r.Dir, "log", name))
		if err != nil {
			fmt.Fprintf(&b, "--- %s: %v\n", name, err)
			continue
		}
		lines := strings.SplitAfter(string(data), "\n")
		fmt.Fprintf(&b, "--- %s\n%s", name, strings.Join(lines[max(0, len(lines)-40):], ""))
	}
	return b.String()
}

// WaitMail returns the first delivered message for which match is true,
// looking until timeout has passed; it calls t.Fatalf listing what did
// arrive if none matched. Messages stay in the Maildir, so match on
// something unique to the test, such as a Subject or Message-ID.
func (r *Rig) WaitMail(t testing.TB, match func(m *mail.Message, raw []byte) bool, timeout time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		raws, err := r.read()
		if err != nil {
			t.Fatalf("testrig: %v", err)
		}
		for _, raw := range raws {
			m, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				continue
			}
			if match(m, raw) {
				return raw
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("testrig: no matching mail within %v; %d arrived:\n%s\n%s",
				timeout, len(raws), summary(raws), r.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Mails returns every delivered message, oldest first.
func (r *Rig) Mails(t testing.TB) [][]byte {
	t.Helper()
	raws, err := r.read()
	if err != nil {
		t.Fatalf("testrig: %v", err)
	}
	return raws
}

// read returns the messages in Maildir/new and Maildir/cur, oldest first.
func (r *Rig) read() ([][]byte, error) {
	type file struct {
		path string
		mod  time.Time
	}
	var files []file
	for _, sub := range []string{"new", "cur"} {
		dir := filepath.Join(r.Maildir, sub)
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("read maildir: %w", err)
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				continue // moved between new and cur meanwhile
			}
			files = append(files, file{filepath.Join(dir, e.Name()), info.ModTime()})
		}
	}
	slices.SortFunc(files, func(a, b file) int {
		if c := a.mod.Compare(b.mod); c != 0 {
			return c
		}
		return strings.Compare(filepath.Base(a.path), filepath.Base(b.path))
	})
	raws := make([][]byte, 0, len(files))
	for _, f := range files {
		raw, err := os.ReadFile(f.path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read maildir: %w", err)
		}
		raws = append(raws, raw)
	}
	return raws, nil
}

func summary(raws [][]byte) string {
	var b strings.Builder
	for i, raw := range raws {
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			fmt.Fprintf(&b, "  %d: unparsable: %v\n", i, err)
			continue
		}
		fmt.Fprintf(&b, "  %d: To: %s, Subject: %s, Message-ID: %s\n",
			i, m.Header.Get("To"), m.Header.Get("Subject"), m.Header.Get("Message-ID"))
	}
	return b.String()
}

// pickPorts asks the kernel for four distinct free ports. Another process
// may take one before Postfix binds it; Start then tries again.
func (r *Rig) pickPorts() error {
	var ports [4]int
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("pick ports: %w", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	r.SubmissionPort, r.SMTPSPort, r.BearerPort, r.PlainPort = ports[0], ports[1], ports[2], ports[3]
	return nil
}

func (r *Rig) run(cmd string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, "sh", r.script, cmd, r.Dir)
	c.Env = append(os.Environ(),
		"RIG_SUBMISSION_PORT="+strconv.Itoa(r.SubmissionPort),
		"RIG_SMTPS_PORT="+strconv.Itoa(r.SMTPSPort),
		"RIG_BEARER_PORT="+strconv.Itoa(r.BearerPort),
		"RIG_PLAIN_PORT="+strconv.Itoa(r.PlainPort),
		"RIG_INTROSPECT_URL="+r.Tokens.IntrospectURL(),
		"RIG_DOMAIN="+r.Domain,
		"RIG_USER="+r.User,
		"RIG_PASSWORD="+r.Password,
		// The rig stops itself if this test binary dies without cleanup.
		"RIG_WATCH_PID="+strconv.Itoa(os.Getpid()),
	)
	c.WaitDelay = 5 * time.Second
	out, err := c.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w", filepath.Base(r.script), cmd, err)
	}
	return out, nil
}

// findScript walks up from the working directory, a test's package
// directory, to the module root and its scripts/testrig.sh.
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find scripts/testrig.sh: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			script := filepath.Join(dir, "scripts", "testrig.sh")
			if _, err := os.Stat(script); err != nil {
				return "", fmt.Errorf("find scripts/testrig.sh: %w", err)
			}
			return script, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find scripts/testrig.sh: no go.mod above the working directory")
		}
		dir = parent
	}
}
