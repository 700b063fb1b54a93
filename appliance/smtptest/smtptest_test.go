package smtptest_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"mailagent/appliance/smtptest"
)

const (
	mailbox  = "alarm@example.test"
	password = "s3cret"
)

var token = "eyJ0eXAiOiJKV1QifQ." + strings.Repeat("dG9rZW4", 370) + ".sig" // about 2.5 KB

// recorder stands in for t so that the server's t.Errorf on a violation,
// which these tests provoke on purpose, is recorded instead of failing.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, format)
}

func (r *recorder) reported() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errs)
}

// client is a raw SMTP conversation.
type client struct {
	t    *testing.T
	s    *smtptest.Server
	conn net.Conn
	tp   *textproto.Conn
}

func dial(t *testing.T, s *smtptest.Server) *client {
	t.Helper()
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, s: s, conn: conn, tp: textproto.NewConn(conn)}
	if code, msg := c.read(); code != 220 {
		t.Fatalf("greeting %d %s", code, msg)
	}
	return c
}

func (c *client) read() (int, string) {
	c.t.Helper()
	code, msg, err := c.tp.ReadResponse(0)
	if err != nil {
		c.t.Fatalf("read reply: %v", err)
	}
	return code, msg
}

// cmd sends a line and returns the reply.
func (c *client) cmd(line string) (int, string) {
	c.t.Helper()
	if err := c.tp.PrintfLine("%s", line); err != nil {
		c.t.Fatalf("send: %v", err)
	}
	return c.read()
}

func (c *client) want(line string, code int) string {
	c.t.Helper()
	got, msg := c.cmd(line)
	if got != code {
		shown, _, _ := strings.Cut(line, " ")
		c.t.Fatalf("%s: reply %d %s, want %d", shown, got, msg, code)
	}
	return msg
}

func (c *client) startTLS() {
	c.t.Helper()
	c.want("EHLO box.example.test", 250)
	c.want("STARTTLS", 220)
	tc := tls.Client(c.conn, &tls.Config{RootCAs: c.s.CAPool(), ServerName: c.s.Host()})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("handshake: %v", err)
	}
	c.conn, c.tp = tc, textproto.NewConn(tc)
	c.want("EHLO box.example.test", 250)
}

// login authenticates as mailbox with LOGIN.
func (c *client) login() {
	c.t.Helper()
	c.want("AUTH LOGIN", 334)
	c.want(b64(mailbox), 334)
	c.want(b64(password), 235)
}

// mail sends a message from from and returns the reply to its end, which
// must have code.
func (c *client) mail(from string, code int) string {
	c.t.Helper()
	c.want("MAIL FROM:<"+from+">", 250)
	c.want("RCPT TO:<ops@example.test>", 250)
	c.want("DATA", 354)
	return c.want("Subject: hi\r\n\r\n..dot\r\n.", code)
}

// onlyFromMailbox refuses mail from anyone but mailbox, as Exchange refuses
// a sender the account may not send as.
func onlyFromMailbox(from string, to []string) *smtp.SMTPError {
	if from == mailbox {
		return nil
	}
	return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 2, 252}, Message: "SendAsDenied"}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func xoauth2(user, tok string) string {
	return b64("user=" + user + "\x01auth=Bearer " + tok + "\x01\x01")
}

func bearer(authz, tok string) string {
	return b64("n," + authz + ",\x01host=127.0.0.1\x01auth=Bearer " + tok + "\x01\x01")
}

func newServer(t *testing.T, o smtptest.Options) (*smtptest.Server, *recorder) {
	if o.Users == nil {
		o.Users = map[string]string{mailbox: password}
	}
	if o.Tokens == nil {
		o.Tokens = map[string]string{token: mailbox, "other-token": "other@example.test"}
	}
	if o.Mechanisms == nil {
		o.Mechanisms = []string{"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"}
	}
	rec := &recorder{TB: t}
	return smtptest.New(rec, o), rec
}

func checkViolations(t *testing.T, s *smtptest.Server, rec *recorder, want ...string) {
	t.Helper()
	got := s.Violations()
	if len(got) != len(want) || rec.reported() != len(want) {
		t.Fatalf("violations %q (%d reported), want %d: %q", got, rec.reported(), len(want), want)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("violation %q, want it to contain %q", got[i], want[i])
		}
	}
}

func TestRefusesAuthBeforeSTARTTLS(t *testing.T) {
	s, rec := newServer(t, smtptest.Options{})
	c := dial(t, s)
	ehlo := c.want("EHLO box.example.test", 250)
	if !strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Errorf("EHLO before TLS:\n%s\nwant STARTTLS and no AUTH", ehlo)
	}
	c.want("AUTH PLAIN "+b64("\x00"+mailbox+"\x00"+password), 523)
	c.want("MAIL FROM:<"+mailbox+">", 530)
	checkViolations(t, s, rec, "AUTH PLAIN before STARTTLS", "MAIL FROM before AUTH")
	if want := []string{"EHLO", "AUTH PLAIN", "MAIL"}; !slices.Equal(s.Cleartext(), want) {
		t.Errorf("cleartext %q, want %q", s.Cleartext(), want)
	}
	if len(s.Auths()) != 0 {
		t.Errorf("auths %+v", s.Auths())
	}
}

func TestNoSTARTTLSRefusesAuth(t *testing.T) {
	s, rec := newServer(t, smtptest.Options{NoSTARTTLS: true})
	c := dial(t, s)
	if ehlo := c.want("EHLO box.example.test", 250); strings.Contains(ehlo, "STARTTLS") || strings.Contains(ehlo, "AUTH") {
		t.Errorf("EHLO:\n%s\nwant neither STARTTLS nor AUTH", ehlo)
	}
	c.want("STARTTLS", 502)
	c.want("AUTH XOAUTH2", 523)
	checkViolations(t, s, rec, "AUTH XOAUTH2 before STARTTLS")
}

func TestRefusesInlineInitialResponse(t *testing.T) {
	tests := []struct{ mech, blob string }{
		{"XOAUTH2", xoauth2(mailbox, token)},
		{"OAUTHBEARER", bearer("a="+mailbox, token)},
	}
	for _, tt := range tests {
		t.Run(tt.mech, func(t *testing.T) {
			s, rec := newServer(t, smtptest.Options{})
			c := dial(t, s)
			c.startTLS()
			msg := c.want("AUTH "+tt.mech+" "+tt.blob, 555)
			if !strings.HasPrefix(msg, "5.5.2 ") {
				t.Errorf("reply %q, want 555 5.5.2", msg)
			}
			checkViolations(t, s, rec, tt.mech+" initial response")
			// The two-step form works on the same connection, with the
			// 2.5 KB blob on its own line.
			c.want("AUTH "+tt.mech, 334)
			c.want(tt.blob, 235)
			c.want("MAIL FROM:<"+mailbox+">", 250)
			a := s.Auths()
			if len(a) != 2 || a[0].OK || a[0].Reason != "initial response inline" || !a[1].OK || a[1].User != mailbox {
				t.Errorf("auths %+v", a)
			}
		})
	}
}

func TestRefusesMalformed(t *testing.T) {
	tests := []struct {
		name      string
		lines     []string // all but the last answered 334
		code      int
		violation string
	}{
		{"PLAIN with one field", []string{"AUTH PLAIN " + b64("alarm")}, 501, "malformed PLAIN"},
		{"XOAUTH2 without user=", []string{"AUTH XOAUTH2", b64("auth=Bearer x\x01\x01")}, 501, "malformed XOAUTH2"},
		{"XOAUTH2 Basic", []string{"AUTH XOAUTH2", b64("user=" + mailbox + "\x01auth=Basic x\x01\x01")}, 501, "no auth=Bearer"},
		{"XOAUTH2 without final ^A", []string{"AUTH XOAUTH2", b64("user=" + mailbox + "\x01auth=Bearer " + token + "\x01")}, 501, "malformed XOAUTH2"},
		{"OAUTHBEARER without a=", []string{"AUTH OAUTHBEARER", bearer("", token)}, 501, "no a="},
		{"OAUTHBEARER channel binding p", []string{"AUTH OAUTHBEARER", b64("p=tls-unique,a=" + mailbox + ",\x01auth=Bearer " + token + "\x01\x01")}, 501, "gs2 header"},
		{"OAUTHBEARER bad escape", []string{"AUTH OAUTHBEARER", bearer("a=al=arm", token)}, 501, "bad escape"},
		{"OAUTHBEARER wrong port", []string{"AUTH OAUTHBEARER", b64("n,a=" + mailbox + ",\x01port=1\x01auth=Bearer " + token + "\x01\x01")}, 501, "port=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rec := newServer(t, smtptest.Options{})
			c := dial(t, s)
			c.startTLS()
			for _, l := range tt.lines[:len(tt.lines)-1] {
				c.want(l, 334)
			}
			c.want(tt.lines[len(tt.lines)-1], tt.code)
			checkViolations(t, s, rec, tt.violation)
		})
	}
}

func TestRefusals(t *testing.T) {
	// Refused credentials are answered 535 and are not violations; the
	// stray "*" go-smtp sends afterwards is tolerated and AUTH works again.
	tests := []struct {
		name    string
		o       smtptest.Options
		lines   []string // all but the last answered 334
		wantEnh string
		reason  string
	}{
		{"PLAIN wrong password", smtptest.Options{}, []string{"AUTH PLAIN " + b64("\x00"+mailbox+"\x00nope")}, "5.7.8", "wrong password"},
		{"LOGIN unknown user", smtptest.Options{}, []string{"AUTH LOGIN", b64("nobody"), b64("pw")}, "5.7.8", "unknown user"},
		{"XOAUTH2 unknown token", smtptest.Options{}, []string{"AUTH XOAUTH2", xoauth2(mailbox, "nope")}, "5.7.3", "unknown token"},
		{"XOAUTH2 token of another mailbox", smtptest.Options{}, []string{"AUTH XOAUTH2", xoauth2(mailbox, "other-token")}, "5.7.3",
			"token is for other@example.test, not alarm@example.test"},
		{"XOAUTH2 Gmail challenge", smtptest.Options{GmailChallenge: true}, []string{"AUTH XOAUTH2", xoauth2(mailbox, "nope"), ""}, "5.7.8", "unknown token"},
		{"OAUTHBEARER challenge", smtptest.Options{}, []string{"AUTH OAUTHBEARER", bearer("a="+mailbox, "nope"), "AQ=="}, "5.7.8", "unknown token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, rec := newServer(t, tt.o)
			c := dial(t, s)
			c.startTLS()
			for _, l := range tt.lines[:len(tt.lines)-1] {
				c.want(l, 334)
			}
			msg := c.want(tt.lines[len(tt.lines)-1], 535)
			if !strings.HasPrefix(msg, tt.wantEnh+" ") {
				t.Errorf("reply 535 %q, want enhanced code %s", msg, tt.wantEnh)
			}
			if code, _ := c.cmd("*"); code < 500 {
				t.Errorf("reply to a stray * %d, want an error", code)
			}
			c.want("AUTH PLAIN "+b64("\x00"+mailbox+"\x00"+password), 235)
			checkViolations(t, s, rec)
			if a := s.Auths(); len(a) != 2 || a[0].OK || a[0].Reason != tt.reason {
				t.Errorf("auths %+v, want first refused: %s", a, tt.reason)
			}
		})
	}
}

func TestGmailChallenge(t *testing.T) {
	s, rec := newServer(t, smtptest.Options{GmailChallenge: true})
	c := dial(t, s)
	c.startTLS()
	c.want("AUTH XOAUTH2", 334)
	ch := c.want(xoauth2(mailbox, "expired"), 334)
	raw, err := base64.StdEncoding.DecodeString(ch)
	if err != nil {
		t.Fatalf("challenge %q: %v", ch, err)
	}
	var j struct{ Status, Schemes, Scope string }
	if err := json.Unmarshal(raw, &j); err != nil || j.Status != "400" || j.Scope != "https://mail.google.com/" {
		t.Errorf("challenge %s (%v)", raw, err)
	}
	// Gmail repeats the enhanced code on each line of its 535.
	msg := c.want("AQ==", 535)
	if want := "5.7.8 Username and Password not accepted. Learn more at\n5.7.8 https://"; !strings.HasPrefix(msg, want) {
		t.Errorf("535 text %q, want prefix %q", msg, want)
	}
	checkViolations(t, s, rec, "reply to the error challenge must be empty")
}

func TestMailBeforeAuth(t *testing.T) {
	s, rec := newServer(t, smtptest.Options{})
	c := dial(t, s)
	c.startTLS()
	c.want("MAIL FROM:<"+mailbox+">", 530)
	checkViolations(t, s, rec, "MAIL FROM before AUTH")
}

func TestDelivery(t *testing.T) {
	s, rec := newServer(t, smtptest.Options{Reject: onlyFromMailbox})
	c := dial(t, s)
	c.startTLS()
	c.login()
	// EHLO again (go-smtp's client does so after RSET) keeps the session
	// authenticated.
	c.want("EHLO box.example.test", 250)
	if msg := c.mail("boss@example.test", 554); msg != "5.2.252 SendAsDenied" {
		t.Errorf("refused with %q", msg)
	}
	msg := c.mail(mailbox, 250)
	checkViolations(t, s, rec)
	m := s.Messages()
	if len(m) != 1 {
		t.Fatalf("messages %+v", m)
	}
	want := smtptest.Message{Conn: 1, From: mailbox, To: []string{"ops@example.test"}, Data: []byte("Subject: hi\r\n\r\n.dot\r\n"),
		AuthUser: mailbox, Mechanism: "LOGIN", QueueID: m[0].QueueID}
	if m[0].Conn != want.Conn || m[0].From != want.From || !slices.Equal(m[0].To, want.To) || string(m[0].Data) != string(want.Data) ||
		m[0].AuthUser != want.AuthUser || m[0].Mechanism != want.Mechanism {
		t.Errorf("message %+v, want %+v", m[0], want)
	}
	if msg != "2.0.0 Ok: queued as "+m[0].QueueID {
		t.Errorf("reply %q, queue id %q", msg, m[0].QueueID)
	}
}

// TestWaitMessages: a waiter started before the mail is woken by it, a
// refused mail wakes nobody, and a wait that ends first says so.
func TestWaitMessages(t *testing.T) {
	s, rec := newServer(t, smtptest.Options{Reject: onlyFromMailbox})
	short, cancel := context.WithCancel(context.Background())
	cancel()
	if m, err := s.WaitMessages(short, 1); len(m) != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("WaitMessages(cancelled) = %d mails, %v; want none and context.Canceled", len(m), err)
	}
	type result struct {
		m   []smtptest.Message
		err error
	}
	waited := make(chan result, 1)
	go func() {
		m, err := s.WaitMessages(context.Background(), 1)
		waited <- result{m, err}
	}()
	c := dial(t, s)
	c.startTLS()
	c.login()
	c.mail("boss@example.test", 554)
	select {
	case r := <-waited:
		t.Fatalf("a refused mail ended the wait: %d mails, %v", len(r.m), r.err)
	default:
	}
	c.mail(mailbox, 250)
	select {
	case r := <-waited:
		if len(r.m) != 1 || r.err != nil || r.m[0].From != mailbox {
			t.Errorf("WaitMessages = %+v, %v; want the one mail", r.m, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitMessages did not return once the mail was accepted")
	}
	if m, err := s.WaitMessages(context.Background(), 1); len(m) != 1 || err != nil {
		t.Errorf("WaitMessages for a mail already there = %d mails, %v", len(m), err)
	}
	checkViolations(t, s, rec)
}

func TestImplicitTLS(t *testing.T) {
	s, rec := newServer(t, smtptest.Options{ImplicitTLS: true})
	conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: s.CAPool(), ServerName: s.Host()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, s: s, conn: conn, tp: textproto.NewConn(conn)}
	c.read()
	if ehlo := c.want("EHLO box.example.test", 250); strings.Contains(ehlo, "STARTTLS") || !strings.Contains(ehlo, "AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER") {
		t.Errorf("EHLO:\n%s", ehlo)
	}
	c.want("AUTH OAUTHBEARER", 334)
	c.want(bearer("a="+mailbox, token), 235)
	checkViolations(t, s, rec)
}

func TestDefaultMechanisms(t *testing.T) {
	s := smtptest.New(t, smtptest.Options{Tokens: map[string]string{token: mailbox}})
	c := dial(t, s)
	c.startTLS()
	c.want("AUTH PLAIN "+b64("\x00"+mailbox+"\x00"+password), 504)
	ehlo := c.want("EHLO box.example.test", 250)
	if !strings.Contains(ehlo, "AUTH XOAUTH2 OAUTHBEARER\n") {
		t.Errorf("EHLO:\n%s", ehlo)
	}
}

func TestTokenOwner(t *testing.T) {
	// Tokens not in the map are asked of TokenOwner, as introspection.
	owners := map[string]string{"introspected": mailbox, "elsewhere": "other@example.test"}
	s := smtptest.New(t, smtptest.Options{TokenOwner: func(tok string) (string, bool) {
		m, ok := owners[tok]
		return m, ok
	}})
	c := dial(t, s)
	c.startTLS()
	ehlo := c.want("EHLO box.example.test", 250)
	if !strings.Contains(ehlo, "AUTH XOAUTH2 OAUTHBEARER\n") {
		t.Errorf("EHLO with only TokenOwner:\n%s", ehlo)
	}
	c.want("AUTH XOAUTH2", 334)
	c.want(xoauth2(mailbox, "unknown"), 535)
	c.want("AUTH XOAUTH2", 334)
	c.want(xoauth2(mailbox, "elsewhere"), 535)
	c.want("AUTH XOAUTH2", 334)
	c.want(xoauth2(mailbox, "introspected"), 235)
	a := s.Auths()
	if len(a) != 3 || a[0].Reason != "unknown token" || a[1].Reason != "token is for other@example.test, not "+mailbox || !a[2].OK {
		t.Errorf("auths %+v", a)
	}
}
