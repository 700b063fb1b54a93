//go:build rig

package testrig_test

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"mailagent/appliance/testrig"
)

// xoauth2 is the XOAUTH2 client mechanism in its two-step form: AUTH
// XOAUTH2 alone, the blob after the server's 334, and an empty reply to
// the JSON error challenge so the server sends its final 535.
type xoauth2 struct {
	user, token string
	sent        bool
}

func (a *xoauth2) Start() (string, []byte, error) { return "XOAUTH2", nil, nil }

func (a *xoauth2) Next(challenge []byte) ([]byte, error) {
	if a.sent {
		return []byte{}, nil
	}
	a.sent = true
	return []byte("user=" + a.user + "\x01auth=Bearer " + a.token + "\x01\x01"), nil
}

const wait = 30 * time.Second

func TestRig(t *testing.T) {
	// Two rigs at once, as parallel test packages would start them.
	for _, name := range []string{"first", "second"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			r := testrig.Start(t)
			t.Logf("rig in %s started in %v", r.Dir, time.Since(start).Round(time.Millisecond))
			testDelivery(t, r)
			testRefusals(t, r)
			testListeners(t, r)
		})
	}
}

type dialer func(t *testing.T, r *testrig.Rig) *smtp.Client

func starttls(port func(*testrig.Rig) int) dialer {
	return func(t *testing.T, r *testrig.Rig) *smtp.Client {
		t.Helper()
		c, err := smtp.DialStartTLS(r.Addr(port(r)), r.TLSConfig())
		if err != nil {
			t.Fatalf("DialStartTLS: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}

func implicitTLS(t *testing.T, r *testrig.Rig) *smtp.Client {
	t.Helper()
	c, err := smtp.DialTLS(r.Addr(r.SMTPSPort), r.TLSConfig())
	if err != nil {
		t.Fatalf("DialTLS: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func plain(t *testing.T, r *testrig.Rig) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(r.Addr(r.PlainPort))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var (
	submission = starttls(func(r *testrig.Rig) int { return r.SubmissionPort })
	bearer     = starttls(func(r *testrig.Rig) int { return r.BearerPort })
)

// send sends a message with a unique Subject to rcpt and returns the
// Subject; with auth nil it sends without AUTH.
func send(c *smtp.Client, auth sasl.Client, from, rcpt string) (string, error) {
	if auth != nil {
		if err := c.Auth(auth); err != nil {
			return "", fmt.Errorf("auth: %w", err)
		}
	}
	b := make([]byte, 8)
	rand.Read(b)
	subject := "rig " + hex.EncodeToString(b)
	msg := "From: <" + from + ">\r\nTo: <" + rcpt + ">\r\nSubject: " + subject + "\r\n\r\nbody\r\n"
	if err := c.SendMail(from, []string{rcpt}, strings.NewReader(msg)); err != nil {
		return "", err
	}
	return subject, c.Quit()
}

func bySubject(subject string) func(*mail.Message, []byte) bool {
	return func(m *mail.Message, _ []byte) bool { return m.Header.Get("Subject") == subject }
}

func testDelivery(t *testing.T, r *testrig.Rig) {
	tests := []struct {
		name  string
		dial  dialer
		auth  func(r *testrig.Rig) sasl.Client
		token bool // the auth asked the token server
	}{
		{"starttls plain", submission, func(r *testrig.Rig) sasl.Client {
			return sasl.NewPlainClient("", r.User, r.Password)
		}, false},
		{"starttls login", submission, func(r *testrig.Rig) sasl.Client {
			return sasl.NewLoginClient(r.User, r.Password)
		}, false},
		{"implicit tls plain", implicitTLS, func(r *testrig.Rig) sasl.Client {
			return sasl.NewPlainClient("", r.User, r.Password)
		}, false},
		{"starttls xoauth2", submission, func(r *testrig.Rig) sasl.Client {
			return &xoauth2{user: r.User, token: r.Tokens.Mint(r.User, time.Hour, "mail")}
		}, true},
		{"starttls xoauth2 2.5 KB token", submission, func(r *testrig.Rig) sasl.Client {
			return &xoauth2{user: r.User, token: r.Tokens.MintSize(r.User, 2500, time.Hour)}
		}, true},
		{"implicit tls xoauth2", implicitTLS, func(r *testrig.Rig) sasl.Client {
			return &xoauth2{user: r.User, token: r.Tokens.Mint(r.User, time.Hour)}
		}, true},
		{"bearer port oauthbearer", bearer, func(r *testrig.Rig) sasl.Client {
			return sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
				Username: r.User, Token: r.Tokens.Mint(r.User, time.Hour)})
		}, true},
		{"plain port without auth", plain, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var auth sasl.Client
			if tt.auth != nil {
				auth = tt.auth(r)
			}
			before := r.Tokens.Introspections()
			subject, err := send(tt.dial(t, r), auth, r.User, "ops@"+r.Domain)
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			raw := r.WaitMail(t, bySubject(subject), wait)
			if !bytes.Contains(raw, []byte("To: <ops@"+r.Domain+">")) {
				t.Errorf("delivered message lacks its To header:\n%s", raw)
			}
			// Postfix adds nothing the client left out.
			m, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range []string{"Date", "Message-Id"} {
				if v := m.Header.Get(h); v != "" {
					t.Errorf("delivered message has %s: %s, which the client did not send", h, v)
				}
			}
			// The Received header tells how the message came in.
			proto := "with ESMTP id"
			if tt.auth != nil {
				proto = "with ESMTPSA id"
				if !bytes.Contains(raw, []byte("(Authenticated sender: "+r.User+")")) {
					t.Errorf("Received header lacks the authenticated sender:\n%s", raw)
				}
			}
			if !bytes.Contains(raw, []byte(proto)) {
				t.Errorf("Received header lacks %q:\n%s", proto, raw)
			}
			if asked := r.Tokens.Introspections() > before; asked != tt.token {
				t.Errorf("token server asked: %v, want %v", asked, tt.token)
			}
		})
	}
}

func testRefusals(t *testing.T, r *testrig.Rig) {
	revoked := r.Tokens.Mint(r.User, time.Hour)
	r.Tokens.Revoke(revoked)
	tests := []struct {
		name string
		dial dialer
		auth func(r *testrig.Rig) sasl.Client
		rcpt string
		code int
	}{
		{"wrong password", submission, func(r *testrig.Rig) sasl.Client {
			return sasl.NewPlainClient("", r.User, r.Password+"x")
		}, "ops@" + r.Domain, 535},
		{"revoked token", submission, func(r *testrig.Rig) sasl.Client {
			return &xoauth2{user: r.User, token: revoked}
		}, "ops@" + r.Domain, 535},
		{"expired token", implicitTLS, func(r *testrig.Rig) sasl.Client {
			return &xoauth2{user: r.User, token: r.Tokens.Mint(r.User, -time.Second)}
		}, "ops@" + r.Domain, 535},
		{"unknown token", submission, func(r *testrig.Rig) sasl.Client {
			return &xoauth2{user: r.User, token: "not-a-token"}
		}, "ops@" + r.Domain, 535},
		{"token of another user", submission, func(r *testrig.Rig) sasl.Client {
			return &xoauth2{user: r.User, token: r.Tokens.Mint("other@"+r.Domain, time.Hour)}
		}, "ops@" + r.Domain, 535},
		{"no auth on submission", submission, nil, "ops@" + r.Domain, 554},
		{"relay", submission, func(r *testrig.Rig) sasl.Client {
			return sasl.NewPlainClient("", r.User, r.Password)
		}, "someone@elsewhere.invalid", 554},
		{"relay on plain port", plain, nil, "someone@elsewhere.invalid", 554},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var auth sasl.Client
			if tt.auth != nil {
				auth = tt.auth(r)
			}
			_, err := send(tt.dial(t, r), auth, r.User, tt.rcpt)
			var se *smtp.SMTPError
			if !errors.As(err, &se) || se.Code != tt.code {
				t.Fatalf("send: %v, want SMTP code %d", err, tt.code)
			}
		})
	}
}

func testListeners(t *testing.T, r *testrig.Rig) {
	t.Run("bearer port offers only oauthbearer", func(t *testing.T) {
		c := bearer(t, r)
		if err := c.Hello("client.example.test"); err != nil {
			t.Fatal(err)
		}
		_, mechs := c.Extension("AUTH")
		if got := strings.Fields(mechs); len(got) != 1 || got[0] != "OAUTHBEARER" {
			t.Errorf("AUTH %s, want OAUTHBEARER only", mechs)
		}
	})
	t.Run("submission offers everything after starttls", func(t *testing.T) {
		c := submission(t, r)
		if err := c.Hello("client.example.test"); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"} {
			if !c.SupportsAuth(m) {
				_, mechs := c.Extension("AUTH")
				t.Errorf("AUTH %s lacks %s", mechs, m)
			}
		}
	})
	t.Run("submission offers no auth before starttls", func(t *testing.T) {
		c, err := smtp.Dial(r.Addr(r.SubmissionPort))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Hello("client.example.test"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Extension("STARTTLS"); !ok {
			t.Error("no STARTTLS offered")
		}
		if ok, mechs := c.Extension("AUTH"); ok {
			t.Errorf("AUTH %s offered before STARTTLS", mechs)
		}
		err = c.Mail(r.User, nil)
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 530 {
			t.Errorf("MAIL before STARTTLS: %v, want 530", err)
		}
	})
	t.Run("plain port offers no starttls", func(t *testing.T) {
		c := plain(t, r)
		if err := c.Hello("client.example.test"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Extension("STARTTLS"); ok {
			t.Error("plain port offers STARTTLS")
		}
		if _, err := smtp.DialStartTLS(r.Addr(r.PlainPort), r.TLSConfig()); err == nil {
			t.Error("DialStartTLS to the plain port succeeded")
		}
	})
	t.Run("certificate needs the rig ca", func(t *testing.T) {
		c, err := smtp.DialTLS(r.Addr(r.SMTPSPort), &tls.Config{ServerName: "localhost"})
		if err == nil {
			c.Close()
			t.Fatal("server certificate verified without the rig's CA")
		}
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) {
			t.Errorf("DialTLS without the CA: %v, want unknown authority", err)
		}
		c, err = smtp.DialTLS(r.Addr(r.SMTPSPort), &tls.Config{RootCAs: r.CAPool, ServerName: "localhost"})
		if err != nil {
			t.Fatalf("DialTLS as localhost: %v", err)
		}
		c.Close()
	})
}

func TestStop(t *testing.T) {
	t.Parallel()
	r := testrig.Start(t)
	var groups []string
	for _, f := range []string{"spool/pid/master.pid", "dv/run/master.pid"} {
		b, err := os.ReadFile(filepath.Join(r.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, strings.TrimSpace(string(b)))
	}
	r.Stop(t)
	r.Stop(t) // twice is fine
	if left := running(t, groups); len(left) > 0 {
		t.Errorf("after Stop, processes of groups %v still run: %v", groups, left)
	}
}

// running lists the live (not zombie) processes in the process groups.
func running(t *testing.T, groups []string) []string {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // exited meanwhile
		}
		s := string(b)
		i := strings.LastIndex(s, ") ")
		if i < 0 {
			continue
		}
		// After "(comm) ": state ppid pgrp ...
		fields := strings.Fields(s[i+2:])
		if len(fields) < 3 || fields[0] == "Z" {
			continue
		}
		for _, g := range groups {
			if fields[2] == g {
				left = append(left, s[:i+1])
			}
		}
	}
	return left
}
