// Package submit hands mail to a submission server (RFC 6409) over one
// connection, with github.com/emersion/go-smtp.
//
// It owns the TLS policy (STARTTLS required, implicit TLS, or plaintext only
// when configured; certificates always verified against the system roots,
// a built-in fallback set and a configured CA file), the SASL choice (PLAIN
// or LOGIN for passwords; XOAUTH2 or OAUTHBEARER for OAuth2 tokens, always
// sent after the server's 334, never inline on the AUTH line), one refresh
// and retry when a token is refused, and bursts of mails on one connection.
//
// go-smtp's Client.Auth puts any non-nil initial response on the AUTH line
// and ends the exchange as a success when a mechanism returns a nil
// response; the mechanisms here are written around both (xoauth2.go,
// oauthbearer.go).
package submit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"mailagent/appliance/internal/roots"
)

// DefaultTimeout bounds the dial and each command when Options.Timeout is 0.
const DefaultTimeout = 30 * time.Second

// ErrNoSTARTTLS is returned when tls = "starttls" and the server does not
// offer STARTTLS. Nothing but EHLO has been sent then.
var ErrNoSTARTTLS = errors.New("submit: server does not offer STARTTLS")

// TokenSource gives OAuth2 access tokens.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// Refresher may be implemented by a TokenSource. When the server refuses a
// token with 535, Dial calls Refresh once with the refused token and, if it
// returns another one, authenticates once more with it. Refresh should get
// a new token from the provider unless the one it holds already differs
// from refused (another sender refreshed it meanwhile).
type Refresher interface {
	Refresh(ctx context.Context, refused string) (string, error)
}

// Options says where and how to submit. Zero values mean the defaults given.
type Options struct {
	// Host is the server name; it is also the name the certificate must have.
	Host string
	// Port is the server port; 0 means 465 for TLS "tls", else 587.
	Port int
	// TLS is "starttls" (the default: STARTTLS is required and its absence
	// is ErrNoSTARTTLS, never a fall back to plaintext), "tls" (implicit
	// TLS, port 465) or "none" (plaintext, only when configured).
	TLS string
	// CAFile names a PEM file of extra roots, added to RootCAs.
	CAFile string
	// RootCAs are the trusted roots. If nil: the system roots plus the
	// fallback roots of golang.org/x/crypto/x509roots (boxes often have
	// none of their own).
	RootCAs *x509.CertPool
	// HELO is the name given in EHLO after TLS; "" means "localhost".
	// (go-smtp always says "localhost" in the EHLO before STARTTLS.)
	HELO string
	// Auth is "none" (the default), "password" or "oauth2".
	Auth string
	// User is the SASL user for password auth, and the mailbox for
	// XOAUTH2 (user=) and OAUTHBEARER (a=).
	User string
	// Password is the password for Auth "password".
	Password string
	// Tokens gives access tokens for Auth "oauth2".
	Tokens TokenSource
	// Timeout bounds the dial, the TLS handshake and each command;
	// 0 means DefaultTimeout.
	Timeout time.Duration
	// Trace, if set, is told each step: "connect", "tls", "mechanisms",
	// "auth" and, per mail, "sent". Details never hold a secret.
	Trace func(step, detail string)
}

func (o *Options) normalize() error {
	o.TLS = strings.ToLower(o.TLS)
	o.Auth = strings.ToLower(o.Auth)
	if o.TLS == "" {
		o.TLS = "starttls"
	}
	if o.Auth == "" {
		o.Auth = "none"
	}
	if o.HELO == "" {
		o.HELO = "localhost"
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Port == 0 {
		o.Port = 587
		if o.TLS == "tls" {
			o.Port = 465
		}
	}
	var errs []error
	if o.Host == "" || strings.ContainsFunc(o.Host, badNameRune) {
		errs = append(errs, fmt.Errorf("host %q is empty or has spaces or control characters", o.Host))
	}
	if strings.ContainsFunc(o.HELO, badNameRune) {
		errs = append(errs, fmt.Errorf("helo %q has spaces or control characters", o.HELO))
	}
	if o.Port < 1 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d out of range", o.Port))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("negative timeout %v", o.Timeout))
	}
	switch o.TLS {
	case "starttls", "tls", "none":
	default:
		errs = append(errs, fmt.Errorf("tls %q is not starttls, tls or none", o.TLS))
	}
	switch o.Auth {
	case "none":
	case "password":
		if o.User == "" || o.Password == "" {
			errs = append(errs, errors.New("password auth needs a user and a password"))
		}
	case "oauth2":
		if o.User == "" || o.Tokens == nil {
			errs = append(errs, errors.New("oauth2 auth needs a user (the mailbox) and a token source"))
		}
	default:
		errs = append(errs, fmt.Errorf("auth %q is not none, password or oauth2", o.Auth))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("submit options: %w", err)
	}
	return nil
}

func badNameRune(r rune) bool { return r <= ' ' || r == 0x7f }

func (o *Options) trace(step, detail string) {
	if o.Trace != nil {
		o.Trace(step, detail)
	}
}

// Client is one connection to the server, authenticated. It is not safe for
// concurrent use.
type Client struct {
	o      Options
	raw    net.Conn
	sc     *smtp.Client
	dirty  bool  // a transaction failed half-way: RSET before the next
	broken error // the connection is unusable
	closed bool
}

// Dial connects, sets up TLS, says EHLO and authenticates.
func Dial(ctx context.Context, o Options) (*Client, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
	o.trace("connect", addr+" ("+o.TLS+")")
	d := net.Dialer{Timeout: o.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return start(ctx, conn, o)
}

// start runs the session on an open connection; o is normalized. It closes
// conn on failure.
func start(ctx context.Context, conn net.Conn, o Options) (*Client, error) {
	tc := &timeoutConn{Conn: conn, timeout: o.Timeout}
	c := &Client{o: o, raw: conn}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	err := c.open(ctx, tc)
	if !stop() && err == nil {
		// The context ended as the session was set up: conn is closed.
		err = errors.New("session setup interrupted")
	}
	if err != nil {
		conn.Close()
		return nil, ctxErr(ctx, err)
	}
	return c, nil
}

func (c *Client) open(ctx context.Context, conn *timeoutConn) error {
	o := &c.o
	var cfg *tls.Config
	if o.TLS != "none" {
		var err error
		if cfg, err = tlsConfig(o); err != nil {
			return err
		}
	}
	switch o.TLS {
	case "tls":
		tc := tls.Client(conn, cfg)
		hctx, cancel := context.WithTimeout(ctx, o.Timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			return fmt.Errorf("tls handshake with %s: %w", o.Host, err)
		}
		c.sc = smtp.NewClient(tc)
	case "starttls":
		conn.record = true
		sc, err := smtp.NewClientStartTLS(conn, cfg)
		conn.record = false
		if err != nil {
			var se *smtp.SMTPError
			if !errors.As(err, &se) && conn.ehloWithoutSTARTTLS() {
				return ErrNoSTARTTLS
			}
			return opError{"starttls", err}
		}
		c.sc = sc
	default:
		c.sc = smtp.NewClient(conn)
	}
	c.sc.CommandTimeout = o.Timeout
	c.sc.SubmissionTimeout = o.Timeout

	// After STARTTLS the handshake happens on this first write.
	if err := c.sc.Hello(o.HELO); err != nil {
		if st, ok := c.sc.TLSConnectionState(); ok && !st.HandshakeComplete {
			return fmt.Errorf("tls handshake with %s: %w", o.Host, err)
		}
		return opError{"ehlo", err}
	}
	if st, ok := c.sc.TLSConnectionState(); ok {
		o.trace("tls", describeTLS(st))
	} else {
		o.trace("tls", "none: plaintext, as configured")
	}

	_, mechs := c.sc.Extension("AUTH")
	offered := strings.Fields(strings.ToUpper(mechs))
	if len(offered) == 0 {
		o.trace("mechanisms", "none offered")
	} else {
		o.trace("mechanisms", strings.Join(offered, " "))
	}
	if o.Auth == "none" {
		return nil
	}
	return c.authenticate(ctx, offered)
}

func describeTLS(st tls.ConnectionState) string {
	s := tls.VersionName(st.Version) + ", " + tls.CipherSuiteName(st.CipherSuite)
	if len(st.PeerCertificates) > 0 {
		leaf := st.PeerCertificates[0]
		s += ", certificate " + leaf.Subject.String() + " issued by " + leaf.Issuer.String()
	}
	return s
}

// ctxErr puts the context's error first when it caused err (the connection
// is closed when the context ends).
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// tlsConfig verifies the server certificate for o.Host, always.
func tlsConfig(o *Options) (*tls.Config, error) {
	var pool *x509.CertPool
	if o.RootCAs != nil {
		pool = o.RootCAs.Clone()
	} else {
		pool = roots.Pool().Clone()
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("read ca_file %s: no PEM certificate in it", o.CAFile)
		}
	}
	return &tls.Config{ServerName: o.Host, RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// timeoutConn caps the deadlines go-smtp sets (its CommandTimeout can only
// be set after NewClientStartTLS has already greeted, said EHLO and started
// TLS), and keeps what the server said before TLS to tell a missing
// STARTTLS from a broken connection.
type timeoutConn struct {
	net.Conn
	timeout time.Duration
	record  bool
	read    []byte
}

const maxRecord = 64 << 10

func (c *timeoutConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.record && len(c.read) < maxRecord {
		c.read = append(c.read, b[:min(n, maxRecord-len(c.read))]...)
	}
	return n, err
}

func (c *timeoutConn) cap(t time.Time) time.Time {
	if limit := time.Now().Add(c.timeout); !t.IsZero() && t.After(limit) {
		return limit
	}
	return t
}

func (c *timeoutConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.cap(t)) }
func (c *timeoutConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.cap(t)) }
func (c *timeoutConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.cap(t)) }

// ehloWithoutSTARTTLS reports whether the last complete reply the server
// sent before TLS is a 250 (the EHLO or HELO reply) without STARTTLS.
func (c *timeoutConn) ehloWithoutSTARTTLS() bool {
	var last []string // lines of the last complete reply
	var cur []string
	for _, line := range strings.Split(string(c.read), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if len(line) < 3 {
			continue
		}
		cur = append(cur, line)
		if len(line) == 3 || line[3] == ' ' {
			last, cur = cur, nil
		}
	}
	if len(last) == 0 || !strings.HasPrefix(last[0], "250") {
		return false
	}
	for _, line := range last[1:] {
		if kw, _, _ := strings.Cut(line[min(4, len(line)):], " "); strings.EqualFold(kw, "STARTTLS") {
			return false
		}
	}
	return true
}

// Close says QUIT and closes the connection.
func (c *Client) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if c.broken != nil {
		return c.sc.Close()
	}
	if err := c.sc.Quit(); err != nil {
		c.sc.Close()
		return opError{"quit", err}
	}
	return nil
}
