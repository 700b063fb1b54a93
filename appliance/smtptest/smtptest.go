// Package smtptest is a strict in-process submission server for tests,
// built on github.com/emersion/go-smtp.
//
// It listens on 127.0.0.1 with a certificate from a CA made for each server,
// offers STARTTLS (or implicit TLS), and implements PLAIN, LOGIN, XOAUTH2 and
// OAUTHBEARER on the server side. It records the mail it accepts and says no
// to what real submission servers refuse. Protocol violations fail the test
// through t.Errorf and are also kept in [Server.Violations]:
//
//   - AUTH before STARTTLS (answered 523 5.7.10);
//   - an XOAUTH2 or OAUTHBEARER initial response inline on the AUTH line
//     (answered 555 5.5.2, as Gmail does for long tokens; the client must
//     send it after the server's 334);
//   - malformed PLAIN, LOGIN, XOAUTH2 or OAUTHBEARER messages, and a wrong
//     reply to an XOAUTH2 or OAUTHBEARER error challenge;
//   - MAIL before AUTH when users or tokens are configured (answered 530 5.7.0).
//
// A refused password or token (unknown, or valid for another mailbox) is not
// a violation: it is answered 535 and kept in [Server.Auths].
//
// The stray "*" that go-smtp's client sends after a failed AUTH is tolerated.
//
// Import it from _test.go files only.
package smtptest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configures a Server. The zero value is a server offering STARTTLS
// and no authentication.
type Options struct {
	// Mechanisms are the SASL mechanisms advertised after TLS, for example
	// {"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"}. If nil, PLAIN and LOGIN
	// are offered when Users is set, XOAUTH2 and OAUTHBEARER when Tokens is.
	Mechanisms []string
	// Users maps user names to passwords (PLAIN, LOGIN).
	Users map[string]string
	// Tokens maps access tokens to the mailbox each is valid for (XOAUTH2
	// user=, OAUTHBEARER a=).
	Tokens map[string]string
	// TokenOwner, if set, is asked for the mailbox of a token not in
	// Tokens, as a server introspecting at the provider does (for example
	// oauthtest's Server.Owner); ok false refuses it.
	TokenOwner func(token string) (mailbox string, ok bool)
	// ImplicitTLS serves TLS from the first byte (port 465 style).
	ImplicitTLS bool
	// NoSTARTTLS offers no TLS at all and refuses AUTH (a misconfigured port).
	NoSTARTTLS bool
	// Plaintext offers no TLS and allows AUTH in the clear (tls = "none").
	Plaintext bool
	// GmailChallenge makes a refused XOAUTH2 token fail as Gmail does: a 334
	// with a base64 JSON challenge, then, after the client's empty reply,
	// 535 5.7.8. Otherwise a refused token gets Exchange Online's single
	// 535 5.7.3.
	GmailChallenge bool
	// Reject, if set, is asked after DATA whether to refuse the mail, for
	// example with 554 5.2.252 SendAsDenied. A nil result accepts it.
	Reject func(from string, to []string) *smtp.SMTPError
}

// Message is a mail the server accepted.
type Message struct {
	Conn      int // connection number, from 1
	From      string
	To        []string
	Data      []byte // as received, dot-unstuffed, CRLF line ends
	AuthUser  string // "" without AUTH
	Mechanism string
	QueueID   string // also in the 250 reply: "Ok: queued as <QueueID>"
}

// AuthAttempt is one AUTH exchange that reached a verdict. It never holds
// the password or token.
type AuthAttempt struct {
	Conn      int
	Mechanism string
	User      string
	OK        bool
	Reason    string // why it was refused
}

// Server is a running submission server. It stops when the test ends.
type Server struct {
	tb    testing.TB
	o     Options
	mechs []string
	srv   *smtp.Server
	host  string
	port  int
	caPEM []byte
	pool  *x509.CertPool
	done  chan struct{}

	mu         sync.Mutex
	closed     bool
	conns      int
	queued     int
	messages   []Message
	accepted   chan struct{} // closed, and replaced, when a mail is accepted
	auths      []AuthAttempt
	violations []string
	cleartext  []string
}

// New starts a server on 127.0.0.1 with a port chosen by the system. It is
// closed by t.Cleanup.
func New(tb testing.TB, o Options) *Server {
	tb.Helper()
	s := &Server{tb: tb, o: o, done: make(chan struct{}), accepted: make(chan struct{})}
	s.mechs = slices.Clone(o.Mechanisms)
	if s.mechs == nil {
		if len(o.Users) > 0 {
			s.mechs = append(s.mechs, sasl.Plain, sasl.Login)
		}
		if len(o.Tokens) > 0 || o.TokenOwner != nil {
			s.mechs = append(s.mechs, mechXOAuth2, sasl.OAuthBearer)
		}
	}
	for i, m := range s.mechs {
		s.mechs[i] = strings.ToUpper(m)
	}

	cert, caPEM, pool, err := newCertificates()
	if err != nil {
		tb.Fatalf("smtptest: %v", err)
	}
	s.caPEM, s.pool = caPEM, pool

	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("smtptest: listen: %v", err)
	}
	addr := raw.Addr().(*net.TCPAddr)
	s.host, s.port = addr.IP.String(), addr.Port

	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "smtptest"
	// Room for 2.5 KB tokens (3.4 KB in base64) on a continuation line, and
	// for an inline one, so that it is refused by the rules above rather
	// than by go-smtp's 2000-byte default.
	srv.MaxLineLength = 16 << 10
	srv.MaxMessageBytes = 10 << 20
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.ErrorLog = logger{s}

	// Cleartext commands are watched until STARTTLS; implicit TLS has none,
	// and a plaintext server would need DATA parsing to follow the session.
	l := &listener{Listener: raw, s: s, sniff: !o.Plaintext && !o.ImplicitTLS}
	var ln net.Listener = l
	switch {
	case o.Plaintext:
		srv.AllowInsecureAuth = true
	case o.ImplicitTLS:
		srv.TLSConfig = tlsConfig
		ln = tls.NewListener(l, tlsConfig)
	case o.NoSTARTTLS:
	default:
		srv.TLSConfig = tlsConfig
	}
	s.srv = srv

	go func() {
		defer close(s.done)
		srv.Serve(ln)
	}()
	tb.Cleanup(s.close)
	return s
}

func (s *Server) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.srv.Close()
	<-s.done
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return net.JoinHostPort(s.host, fmt.Sprint(s.port)) }

// Host is the address the server listens on, "127.0.0.1". Its certificate
// is valid for this IP address only.
func (s *Server) Host() string { return s.host }

// Port is the port the server listens on.
func (s *Server) Port() int { return s.port }

// CAPool holds the CA that signed the server's certificate.
func (s *Server) CAPool() *x509.CertPool { return s.pool.Clone() }

// CAPEM is the CA that signed the server's certificate, PEM-encoded.
func (s *Server) CAPEM() []byte { return bytes.Clone(s.caPEM) }

// Messages returns the mails accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.messages)
}

// WaitMessages waits until the server has accepted at least n mails and
// returns the mails accepted so far. When ctx ends first, it returns those
// and ctx's error.
func (s *Server) WaitMessages(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		msgs, accepted := slices.Clone(s.messages), s.accepted
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-accepted:
		case <-ctx.Done():
			return msgs, ctx.Err()
		}
	}
}

// Auths returns the AUTH exchanges so far, accepted and refused.
func (s *Server) Auths() []AuthAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.auths)
}

// Violations returns the protocol violations seen so far; each was also
// reported with t.Errorf.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

// Cleartext returns the commands received before TLS, on every connection,
// as the command word (and the mechanism for AUTH); arguments are not kept.
// Recording on a connection stops at TLS or DATA. It is empty for
// ImplicitTLS and Plaintext servers.
func (s *Server) Cleartext() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cleartext)
}

// violation records a protocol violation and fails the test.
func (s *Server) violation(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, msg)
	if !s.closed {
		s.tb.Errorf("smtptest: protocol violation: %s", msg)
	}
}

func (s *Server) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.tb.Logf("smtptest: "+format, args...)
	}
}

func (s *Server) addAuth(a AuthAttempt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auths = append(s.auths, a)
}

func (s *Server) authRequired() bool {
	return len(s.o.Users) > 0 || len(s.o.Tokens) > 0 || s.o.TokenOwner != nil
}

type logger struct{ s *Server }

func (l logger) Printf(format string, v ...any) { l.s.logf(format, v...) }
func (l logger) Println(v ...any)               { l.s.logf("%s", strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

// listener numbers connections and wraps them to watch the cleartext phase.
type listener struct {
	net.Listener
	s     *Server
	sniff bool
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.mu.Lock()
	l.s.conns++
	id := l.s.conns
	l.s.mu.Unlock()
	return &conn{Conn: c, s: l.s, id: id, sniff: l.sniff}, nil
}

// connID finds our conn below go-smtp's, and below TLS.
func (s *Server) connID(c *smtp.Conn) int {
	nc := c.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if cc, ok := nc.(*conn); ok {
		return cc.id
	}
	return 0
}

// conn reads the client's cleartext commands as they pass, below go-smtp,
// because go-smtp answers AUTH before TLS itself without asking the backend.
type conn struct {
	net.Conn
	s          *Server
	id         int
	sniff      bool
	tlsPending bool // STARTTLS seen, its reply not yet
	line       []byte
}

const maxSniffLine = 16 << 10

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	for i := 0; i < n && c.sniff; i++ {
		if b[i] != '\n' {
			if len(c.line) < maxSniffLine {
				c.line = append(c.line, b[i])
			}
			continue
		}
		c.command(strings.TrimRight(string(c.line), "\r"))
		c.line = c.line[:0]
	}
	return n, err
}

// Write resumes watching when the server refuses STARTTLS. go-smtp reads
// and writes a connection from one goroutine, so no lock is needed.
func (c *conn) Write(b []byte) (int, error) {
	if c.tlsPending {
		c.tlsPending = false
		c.sniff = !bytes.HasPrefix(b, []byte("220"))
	}
	return c.Conn.Write(b)
}

func (c *conn) command(line string) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return
	}
	verb := strings.ToUpper(fields[0])
	rec := verb
	switch verb {
	case "STARTTLS":
		// What follows a 220 is TLS.
		c.sniff, c.tlsPending = false, true
	case "DATA", "BDAT":
		// What follows is message data.
		c.sniff = false
	case "AUTH":
		if len(fields) > 1 {
			rec += " " + strings.ToUpper(fields[1])
		}
		c.s.violation("%s before STARTTLS (conn %d)", rec, c.id)
	}
	c.s.mu.Lock()
	c.s.cleartext = append(c.s.cleartext, rec)
	c.s.mu.Unlock()
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, conn: b.s.connID(c)}, nil
}

// session is one go-smtp session: go-smtp makes a new one after STARTTLS,
// which drops authentication, and keeps it across a later EHLO or RSET.
type session struct {
	s    *Server
	conn int
	user string
	mech string
	from string
	to   []string
}

var (
	errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errLineTooLong  = &smtp.SMTPError{Code: 555, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Syntax error, command line too long: send the initial response after the 334"}
	errMalformed    = &smtp.SMTPError{Code: 501, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Malformed authentication response"}
	errBadPassword  = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Username and Password not accepted"}
	errTokenRefused = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 3}, Message: "Authentication unsuccessful [smtptest]"}
	errAuthFailed   = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication failed"}
	// Gmail's two-line reply, its enhanced code on each line.
	errGmailRefused = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.NoEnhancedCode,
		Message: "5.7.8 Username and Password not accepted. Learn more at\n5.7.8 https://support.google.com/mail/?p=BadCredentials smtptest - gsmtp"}
)

func (se *session) AuthMechanisms() []string { return se.s.mechs }

func (se *session) Auth(mech string) (sasl.Server, error) {
	if !slices.Contains(se.s.mechs, mech) {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	switch mech {
	case sasl.Plain:
		return &plainServer{se: se}, nil
	case sasl.Login:
		return &loginServer{se: se}, nil
	case mechXOAuth2:
		return &xoauth2Server{se: se}, nil
	case sasl.OAuthBearer:
		return &oauthBearerServer{se: se}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// verdict records an AUTH outcome and, on success, authenticates the session.
func (se *session) verdict(mech, user, reason string) {
	ok := reason == ""
	se.s.addAuth(AuthAttempt{Conn: se.conn, Mechanism: mech, User: user, OK: ok, Reason: reason})
	if ok {
		se.user, se.mech = user, mech
	}
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.authRequired() && se.user == "" {
		se.s.violation("MAIL FROM before AUTH (conn %d)", se.conn)
		return errAuthRequired
	}
	se.from, se.to = from, nil
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if se.s.o.Reject != nil {
		if rerr := se.s.o.Reject(se.from, slices.Clone(se.to)); rerr != nil {
			return rerr
		}
	}
	s := se.s
	s.mu.Lock()
	s.queued++
	id := fmt.Sprintf("%X", 0x4B1D0000+s.queued)
	s.messages = append(s.messages, Message{
		Conn: se.conn, From: se.from, To: slices.Clone(se.to), Data: data,
		AuthUser: se.user, Mechanism: se.mech, QueueID: id,
	})
	close(s.accepted)
	s.accepted = make(chan struct{})
	s.mu.Unlock()
	// go-smtp writes an *SMTPError from Data as the reply, so a 250 one
	// carries the Postfix-style queue id.
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: "Ok: queued as " + id}
}

func (se *session) Reset() { se.from, se.to = "", nil }

func (se *session) Logout() error { return nil }
