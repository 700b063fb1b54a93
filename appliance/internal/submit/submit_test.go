package submit_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"mailagent/appliance/internal/submit"
	"mailagent/appliance/smtptest"
)

const (
	mailbox  = "alarm@example.test"
	password = "s3cret-password"
)

var (
	msg = []byte("From: alarm@example.test\r\nTo: ops@example.test\r\nSubject: test\r\n\r\nhello\r\n")
	// bigToken has the size of a real Entra access token.
	bigToken = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + strings.Repeat("U01UUA", 420) + ".sig"
)

type staticTokens string

func (s staticTokens) Token(context.Context) (string, error) { return string(s), nil }

type refreshingTokens struct{ stale, fresh string }

func (r *refreshingTokens) Token(context.Context) (string, error)           { return r.stale, nil }
func (r *refreshingTokens) Refresh(context.Context, string) (string, error) { return r.fresh, nil }

// tracer keeps the Trace lines.
type tracer struct {
	mu    sync.Mutex
	lines []string
}

func (tr *tracer) trace(step, detail string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.lines = append(tr.lines, step+": "+detail)
}

func (tr *tracer) steps() []string {
	var s []string
	for _, l := range tr.lines {
		step, _, _ := strings.Cut(l, ":")
		s = append(s, step)
	}
	return s
}

func (tr *tracer) String() string { return strings.Join(tr.lines, "\n") }

func options(s *smtptest.Server, tr *tracer) submit.Options {
	return submit.Options{
		Host:    s.Host(),
		Port:    s.Port(),
		RootCAs: s.CAPool(),
		HELO:    "box.example.test",
		Timeout: 20 * time.Second,
		Trace:   tr.trace,
	}
}

func dial(t *testing.T, o submit.Options) *submit.Client {
	t.Helper()
	c, err := submit.Dial(t.Context(), o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStartTLSPassword(t *testing.T) {
	s := smtptest.New(t, smtptest.Options{Users: map[string]string{mailbox: password}})
	tr := &tracer{}
	o := options(s, tr)
	o.Auth, o.User, o.Password = "password", mailbox, password
	c := dial(t, o)
	r, err := c.Send(t.Context(), mailbox, []string{"ops@example.test", "oncall@example.test"}, msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	got := s.Messages()
	if len(got) != 1 {
		t.Fatalf("server has %d messages, want 1", len(got))
	}
	m := got[0]
	if m.From != mailbox || !slices.Equal(m.To, []string{"ops@example.test", "oncall@example.test"}) ||
		!bytes.Equal(m.Data, msg) || m.AuthUser != mailbox || m.Mechanism != "PLAIN" {
		t.Errorf("server got %+v", m)
	}
	if r.QueueID == "" || r.QueueID != m.QueueID || r.Code != 250 || r.Enhanced != "2.0.0" {
		t.Errorf("reply %+v, server queued %s", r, m.QueueID)
	}
	if want := []string{"EHLO", "STARTTLS"}; !slices.Equal(s.Cleartext(), want) {
		t.Errorf("cleartext commands %q, want %q", s.Cleartext(), want)
	}

	if want := []string{"connect", "tls", "mechanisms", "auth", "sent"}; !slices.Equal(tr.steps(), want) {
		t.Errorf("trace steps %q, want %q\n%s", tr.steps(), want, tr)
	}
	for _, want := range []string{
		"connect: " + s.Addr() + " (starttls)",
		"tls: TLS 1.3, TLS_",
		"certificate CN=smtptest,O=mailagent tests issued by CN=smtptest CA,O=mailagent tests",
		"mechanisms: PLAIN LOGIN",
		"auth: PLAIN as " + mailbox,
		"sent: 250 2.0.0 Ok: queued as " + m.QueueID,
	} {
		if !strings.Contains(tr.String(), want) {
			t.Errorf("trace does not contain %q:\n%s", want, tr)
		}
	}
	if strings.Contains(tr.String(), password) {
		t.Errorf("trace reveals the password:\n%s", tr)
	}
}

func TestImplicitTLS(t *testing.T) {
	s := smtptest.New(t, smtptest.Options{ImplicitTLS: true, Tokens: map[string]string{bigToken: mailbox}})
	tr := &tracer{}
	o := options(s, tr)
	o.TLS, o.Auth, o.User, o.Tokens = "tls", "oauth2", mailbox, staticTokens(bigToken)
	c := dial(t, o)
	if _, err := c.Send(t.Context(), mailbox, []string{"ops@example.test"}, msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if m := s.Messages(); len(m) != 1 || m[0].Mechanism != "XOAUTH2" {
		t.Errorf("messages %+v, want one by XOAUTH2", m)
	}
	if len(s.Cleartext()) != 0 {
		t.Errorf("cleartext commands %q on implicit TLS", s.Cleartext())
	}
	if strings.Contains(tr.String(), bigToken[40:80]) {
		t.Errorf("trace reveals the token:\n%s", tr)
	}
}

func TestMechanismChoice(t *testing.T) {
	tests := []struct {
		offered []string
		auth    string
		want    string
	}{
		{[]string{"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"}, "oauth2", "XOAUTH2"},
		{[]string{"OAUTHBEARER", "XOAUTH2"}, "oauth2", "XOAUTH2"},
		{[]string{"PLAIN", "OAUTHBEARER"}, "oauth2", "OAUTHBEARER"},
		{[]string{"LOGIN", "XOAUTH2"}, "oauth2", "XOAUTH2"}, // Exchange Online
		{[]string{"LOGIN", "PLAIN", "XOAUTH2"}, "password", "PLAIN"},
		{[]string{"LOGIN", "XOAUTH2"}, "password", "LOGIN"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %v", tt.auth, tt.offered), func(t *testing.T) {
			s := smtptest.New(t, smtptest.Options{
				Mechanisms: tt.offered,
				Users:      map[string]string{mailbox: password},
				Tokens:     map[string]string{bigToken: mailbox},
			})
			o := options(s, &tracer{})
			o.Auth, o.User, o.Password, o.Tokens = tt.auth, mailbox, password, staticTokens(bigToken)
			c := dial(t, o)
			if _, err := c.Send(t.Context(), mailbox, []string{"ops@example.test"}, msg); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if m := s.Messages(); len(m) != 1 || m[0].Mechanism != tt.want || m[0].AuthUser != mailbox {
				t.Errorf("messages %+v, want one by %s as %s", m, tt.want, mailbox)
			}
		})
	}
}

func TestNoSTARTTLS(t *testing.T) {
	s := smtptest.New(t, smtptest.Options{NoSTARTTLS: true, Users: map[string]string{mailbox: password}})
	tr := &tracer{}
	o := options(s, tr)
	o.Auth, o.User, o.Password = "password", mailbox, password
	_, err := submit.Dial(t.Context(), o)
	if !errors.Is(err, submit.ErrNoSTARTTLS) {
		t.Fatalf("Dial: %v, want ErrNoSTARTTLS", err)
	}
	if want := []string{"EHLO"}; !slices.Equal(s.Cleartext(), want) {
		t.Errorf("sent in plaintext %q, want only %q", s.Cleartext(), want)
	}
	if len(s.Auths()) != 0 || len(s.Messages()) != 0 {
		t.Errorf("auths %+v, messages %+v: want none", s.Auths(), s.Messages())
	}
	if h := submit.Hint(err); !strings.Contains(h, `tls = "tls" on port 465`) {
		t.Errorf("Hint = %q", h)
	}
}

func TestUntrustedCertificate(t *testing.T) {
	for _, mode := range []string{"starttls", "tls"} {
		t.Run(mode, func(t *testing.T) {
			s := smtptest.New(t, smtptest.Options{ImplicitTLS: mode == "tls", Users: map[string]string{mailbox: password}})
			o := options(s, &tracer{})
			o.RootCAs = nil // system and fallback roots only
			o.TLS, o.Auth, o.User, o.Password = mode, "password", mailbox, password
			_, err := submit.Dial(t.Context(), o)
			var ua x509.UnknownAuthorityError
			if !errors.As(err, &ua) {
				t.Fatalf("Dial: %v, want x509.UnknownAuthorityError", err)
			}
			if h := submit.Hint(err); !strings.Contains(h, "set smtp.ca_file to the CA that signed the server certificate") {
				t.Errorf("Hint = %q", h)
			}
			if len(s.Auths()) != 0 {
				t.Errorf("auths %+v, want none", s.Auths())
			}
		})
	}
}

func TestCAFile(t *testing.T) {
	s := smtptest.New(t, smtptest.Options{})
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, s.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	o := options(s, &tracer{})
	o.RootCAs, o.CAFile = nil, ca
	c := dial(t, o)
	if _, err := c.Send(t.Context(), mailbox, []string{"ops@example.test"}, msg); err != nil {
		t.Fatalf("Send: %v", err)
	}

	for _, bad := range []string{filepath.Join(dir, "missing.pem"), filepath.Join(dir, "empty.pem")} {
		os.WriteFile(filepath.Join(dir, "empty.pem"), []byte("not a certificate\n"), 0o600)
		o.CAFile = bad
		if _, err := submit.Dial(t.Context(), o); err == nil || !strings.Contains(err.Error(), "ca_file") {
			t.Errorf("Dial with ca_file %s: %v, want a ca_file error", bad, err)
		}
	}
}

func TestTokenRefused(t *testing.T) {
	const other = "other@example.test"
	tests := []struct {
		name    string
		server  smtptest.Options
		token   string
		wantEnh smtp.EnhancedCode
		reason  string
	}{
		{"XOAUTH2 Exchange style", smtptest.Options{Mechanisms: []string{"XOAUTH2"}},
			"wrong-" + bigToken, smtp.EnhancedCode{5, 7, 3}, "unknown token"},
		{"XOAUTH2 Gmail challenge", smtptest.Options{Mechanisms: []string{"XOAUTH2"}, GmailChallenge: true},
			"wrong-" + bigToken, smtp.EnhancedCode{5, 7, 8}, "unknown token"},
		{"XOAUTH2 token of another mailbox", smtptest.Options{Mechanisms: []string{"XOAUTH2"}},
			"other-" + bigToken, smtp.EnhancedCode{5, 7, 3}, "token is for other@example.test, not alarm@example.test"},
		{"OAUTHBEARER", smtptest.Options{Mechanisms: []string{"OAUTHBEARER"}},
			"wrong-" + bigToken, smtp.EnhancedCode{5, 7, 8}, "unknown token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.server.Tokens = map[string]string{bigToken: mailbox, "other-" + bigToken: other}
			s := smtptest.New(t, tt.server)
			tr := &tracer{}
			o := options(s, tr)
			o.Auth, o.User, o.Tokens = "oauth2", mailbox, staticTokens(tt.token)
			_, err := submit.Dial(t.Context(), o)
			var se *smtp.SMTPError
			if !errors.As(err, &se) || se.Code != 535 || se.EnhancedCode != tt.wantEnh {
				t.Fatalf("Dial: %v, want 535 %v", err, tt.wantEnh)
			}
			var ae *submit.AuthError
			if !errors.As(err, &ae) || ae.User != mailbox {
				t.Errorf("error %v is not an AuthError for %s", err, mailbox)
			}
			for _, where := range []string{err.Error(), tr.String()} {
				if strings.Contains(where, tt.token[40:80]) {
					t.Errorf("token revealed in %q", where)
				}
			}
			if h := submit.Hint(err); !strings.Contains(h, "token") {
				t.Errorf("Hint = %q", h)
			}
			if a := s.Auths(); len(a) != 1 || a[0].OK || a[0].Reason != tt.reason {
				t.Errorf("server auths %+v, want one refused: %s", a, tt.reason)
			}
		})
	}
}

func TestRefreshAfterRefusal(t *testing.T) {
	s := smtptest.New(t, smtptest.Options{Tokens: map[string]string{"fresh-" + bigToken: mailbox}})
	tr := &tracer{}
	o := options(s, tr)
	o.Auth, o.User = "oauth2", mailbox
	o.Tokens = &refreshingTokens{stale: "stale-" + bigToken, fresh: "fresh-" + bigToken}
	c := dial(t, o)
	if _, err := c.Send(t.Context(), mailbox, []string{"ops@example.test"}, msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	a := s.Auths()
	if len(a) != 2 || a[0].OK || !a[1].OK || a[0].Conn != a[1].Conn {
		t.Errorf("server auths %+v, want a refusal then success on one connection", a)
	}
	if !strings.Contains(tr.String(), "again with a refreshed token") {
		t.Errorf("trace:\n%s", tr)
	}
}

func TestBurst(t *testing.T) {
	s := smtptest.New(t, smtptest.Options{Tokens: map[string]string{bigToken: mailbox}})
	o := options(s, &tracer{})
	o.Auth, o.User, o.Tokens = "oauth2", mailbox, staticTokens(bigToken)
	c := dial(t, o)
	ids := map[string]bool{}
	for i := range 5 {
		r, err := c.Send(t.Context(), mailbox, []string{"ops@example.test"}, fmt.Appendf(nil, "Subject: %d\r\n\r\nbody\r\n", i))
		if err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		ids[r.QueueID] = true
	}
	m := s.Messages()
	if len(m) != 5 || len(ids) != 5 {
		t.Fatalf("%d messages, %d queue ids; want 5 each", len(m), len(ids))
	}
	for i, mm := range m {
		if mm.Conn != m[0].Conn || !strings.HasPrefix(string(mm.Data), fmt.Sprintf("Subject: %d\r\n", i)) {
			t.Errorf("message %d: conn %d, data %q", i, mm.Conn, mm.Data)
		}
	}
	if a := s.Auths(); len(a) != 1 {
		t.Errorf("%d AUTH exchanges, want 1", len(a))
	}
}

func TestSendAsDenied(t *testing.T) {
	s := smtptest.New(t, smtptest.Options{
		Users: map[string]string{mailbox: password},
		Reject: func(from string, _ []string) *smtp.SMTPError {
			if from == mailbox {
				return nil
			}
			return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 2, 252},
				Message: "SendAsDenied; alarm@example.test not allowed to send as " + from + "; STOREDRV.Submission.Exception:SendAsDeniedException"}
		},
	})
	o := options(s, &tracer{})
	o.Auth, o.User, o.Password = "password", mailbox, password
	c := dial(t, o)
	_, err := c.Send(t.Context(), "boss@example.test", []string{"ops@example.test"}, msg)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 554 || se.EnhancedCode != (smtp.EnhancedCode{5, 2, 252}) {
		t.Fatalf("Send: %v, want 554 5.2.252", err)
	}
	if !strings.HasPrefix(err.Error(), "data: 554 5.2.252 SendAsDenied;") {
		t.Errorf("error %q", err)
	}
	if h := submit.Hint(err); !strings.Contains(h, "SendAs rights") {
		t.Errorf("Hint = %q", h)
	}
	// The connection stays usable for the next mail.
	if _, err := c.Send(t.Context(), mailbox, []string{"ops@example.test"}, msg); err != nil {
		t.Fatalf("Send after refusal: %v", err)
	}
	if m := s.Messages(); len(m) != 1 || m[0].From != mailbox {
		t.Errorf("messages %+v", m)
	}
}

func TestPlaintextWhenConfigured(t *testing.T) {
	s := smtptest.New(t, smtptest.Options{Plaintext: true, Users: map[string]string{mailbox: password}})
	tr := &tracer{}
	o := options(s, tr)
	o.TLS, o.Auth, o.User, o.Password = "none", "password", mailbox, password
	c := dial(t, o)
	if _, err := c.Send(t.Context(), mailbox, []string{"ops@example.test"}, msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if !strings.Contains(tr.String(), "tls: none") {
		t.Errorf("trace:\n%s", tr)
	}
}

func TestConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	_, err = submit.Dial(t.Context(), submit.Options{Host: "127.0.0.1", Port: port})
	if err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
	if h := submit.Hint(err); !strings.Contains(h, "refuses connections") {
		t.Errorf("Hint(%v) = %q", err, h)
	}
}

func TestContextCanceled(t *testing.T) {
	s := smtptest.New(t, smtptest.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := submit.Dial(ctx, options(s, &tracer{})); !errors.Is(err, context.Canceled) {
		t.Errorf("Dial: %v, want context.Canceled", err)
	}

	c := dial(t, options(s, &tracer{}))
	if _, err := c.Send(ctx, mailbox, []string{"ops@example.test"}, msg); !errors.Is(err, context.Canceled) {
		t.Errorf("Send: %v, want context.Canceled", err)
	}
}
