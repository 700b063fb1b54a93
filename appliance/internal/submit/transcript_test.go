package submit

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// fakeConn plays a server transcript and records what the client writes,
// as go-smtp's own client tests do.
type fakeConn struct {
	r *strings.Reader
	w bytes.Buffer
}

func (f *fakeConn) Read(b []byte) (int, error)       { return f.r.Read(b) }
func (f *fakeConn) Write(b []byte) (int, error)      { return f.w.Write(b) }
func (f *fakeConn) Close() error                     { return nil }
func (f *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (f *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (f *fakeConn) SetDeadline(time.Time) error      { return nil }
func (f *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

const (
	greeting = "220 mx.example.test ESMTP\r\n"
	ehloLine = "EHLO box.example.test\r\n"
	mailbox  = "alarm@example.test"
)

func ehloReply(mechs string) string {
	s := "250-mx.example.test\r\n"
	if mechs != "" {
		s += "250-AUTH " + mechs + "\r\n"
	}
	return s + "250 8BITMIME\r\n"
}

// bigToken is the size of a real Entra access token, too long for an
// AUTH line.
var bigToken = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + strings.Repeat("QWxhcm0", 360) + ".sig"

type staticTokens string

func (s staticTokens) Token(context.Context) (string, error) { return string(s), nil }

// refreshingTokens gives stale first and fresh after Refresh.
type refreshingTokens struct {
	stale, fresh string
	refreshed    []string
}

func (r *refreshingTokens) Token(context.Context) (string, error) { return r.stale, nil }
func (r *refreshingTokens) Refresh(_ context.Context, refused string) (string, error) {
	r.refreshed = append(r.refreshed, refused)
	return r.fresh, nil
}

func xoauth2Blob(user, token string) string {
	return b64("user=" + user + "\x01auth=Bearer " + token + "\x01\x01")
}

func bearerBlob(authzid, token string) string {
	return b64("n,a=" + authzid + ",\x01host=mx.example.test\x01port=587\x01auth=Bearer " + token + "\x01\x01")
}

var (
	gmailJSON = `{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`
	gmail535  = "535-5.7.8 Username and Password not accepted. Learn more at\r\n" +
		"535 5.7.8 https://support.google.com/mail/?p=BadCredentials a1b2c3 - gsmtp\r\n"
	starReply = "501 5.5.2 Unrecognized command\r\n"
)

func TestAuthTranscripts(t *testing.T) {
	tests := []struct {
		name     string
		auth     string
		user     string
		tokens   TokenSource
		server   string
		want     string // everything the client wrote
		wantCode int    // 0: success
		wantEnh  smtp.EnhancedCode
		wantErr  []string // substrings of err.Error()
	}{{
		name:   "XOAUTH2 success with a 2.5 KB token",
		auth:   "oauth2",
		tokens: staticTokens(bigToken),
		server: greeting + ehloReply("LOGIN PLAIN XOAUTH2 OAUTHBEARER") + "334 \r\n" + "235 2.7.0 Accepted\r\n",
		want:   ehloLine + "AUTH XOAUTH2\r\n" + xoauth2Blob(mailbox, bigToken) + "\r\n",
	}, {
		name:   "XOAUTH2 Gmail JSON challenge, empty reply, then 535",
		auth:   "oauth2",
		tokens: staticTokens(bigToken),
		server: greeting + ehloReply("LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH") +
			"334 \r\n" + "334 " + b64(gmailJSON) + "\r\n" + gmail535 + starReply,
		// go-smtp writes a stray "*" after any failure.
		want:     ehloLine + "AUTH XOAUTH2\r\n" + xoauth2Blob(mailbox, bigToken) + "\r\n" + "\r\n" + "*\r\n",
		wantCode: 535, wantEnh: smtp.EnhancedCode{5, 7, 8},
		wantErr: []string{"auth XOAUTH2 as alarm@example.test: 535 5.7.8 Username and Password not accepted",
			`status "400"`, `scope "https://mail.google.com/"`},
	}, {
		name:     "XOAUTH2 Exchange 535 5.7.3 without challenge",
		auth:     "oauth2",
		tokens:   staticTokens("tok"),
		server:   greeting + ehloReply("LOGIN XOAUTH2") + "334 \r\n" + "535 5.7.3 Authentication unsuccessful [AM0PR01CA0001]\r\n" + starReply,
		want:     ehloLine + "AUTH XOAUTH2\r\n" + xoauth2Blob(mailbox, "tok") + "\r\n" + "*\r\n",
		wantCode: 535, wantEnh: smtp.EnhancedCode{5, 7, 3},
		wantErr: []string{"535 5.7.3 Authentication unsuccessful"},
	}, {
		name:   "XOAUTH2 refused, one refresh, accepted",
		auth:   "oauth2",
		tokens: &refreshingTokens{stale: "old-token", fresh: "new-token"},
		server: greeting + ehloReply("LOGIN XOAUTH2") + "334 \r\n" + "535 5.7.3 Authentication unsuccessful\r\n" + starReply +
			"334 \r\n" + "235 2.7.0 Authentication successful\r\n",
		want: ehloLine + "AUTH XOAUTH2\r\n" + xoauth2Blob(mailbox, "old-token") + "\r\n" + "*\r\n" +
			"AUTH XOAUTH2\r\n" + xoauth2Blob(mailbox, "new-token") + "\r\n",
	}, {
		name:   "OAUTHBEARER success with a 2.5 KB token",
		auth:   "oauth2",
		tokens: staticTokens(bigToken),
		server: greeting + ehloReply("PLAIN OAUTHBEARER") + "334 \r\n" + "235 2.7.0 Accepted\r\n",
		want:   ehloLine + "AUTH OAUTHBEARER\r\n" + bearerBlob(mailbox, bigToken) + "\r\n",
	}, {
		name:   "OAUTHBEARER escapes , and = in a=",
		auth:   "oauth2",
		user:   "a,b=c@example.test",
		tokens: staticTokens("tok"),
		server: greeting + ehloReply("OAUTHBEARER") + "334 \r\n" + "235 2.7.0 Accepted\r\n",
		want:   ehloLine + "AUTH OAUTHBEARER\r\n" + bearerBlob("a=2Cb=3Dc@example.test", "tok") + "\r\n",
	}, {
		name:   "OAUTHBEARER failure answered with ^A",
		auth:   "oauth2",
		tokens: staticTokens("tok"),
		server: greeting + ehloReply("OAUTHBEARER") + "334 \r\n" +
			"334 " + b64(`{"status":"invalid_token","schemes":"bearer","scope":"https://mail.google.com/"}`) + "\r\n" +
			"535 5.7.8 Authentication failed\r\n" + starReply,
		want:     ehloLine + "AUTH OAUTHBEARER\r\n" + bearerBlob(mailbox, "tok") + "\r\n" + "AQ==\r\n" + "*\r\n",
		wantCode: 535, wantEnh: smtp.EnhancedCode{5, 7, 8},
		wantErr: []string{"auth OAUTHBEARER", `status "invalid_token"`},
	}, {
		name:   "PLAIN",
		auth:   "password",
		server: greeting + ehloReply("LOGIN PLAIN XOAUTH2") + "235 2.7.0 Accepted\r\n",
		want:   ehloLine + "AUTH PLAIN " + b64("\x00"+mailbox+"\x00s3cret") + "\r\n",
	}, {
		name:     "PLAIN refused",
		auth:     "password",
		server:   greeting + ehloReply("PLAIN") + "535 5.7.8 Username and Password not accepted\r\n" + starReply,
		want:     ehloLine + "AUTH PLAIN " + b64("\x00"+mailbox+"\x00s3cret") + "\r\n" + "*\r\n",
		wantCode: 535, wantEnh: smtp.EnhancedCode{5, 7, 8},
		wantErr: []string{"auth PLAIN as alarm@example.test: 535 5.7.8"},
	}, {
		name:   "LOGIN when PLAIN is not offered",
		auth:   "password",
		server: greeting + ehloReply("LOGIN XOAUTH2") + "334 " + b64("Password:") + "\r\n" + "235 2.7.0 Accepted\r\n",
		want:   ehloLine + "AUTH LOGIN " + b64(mailbox) + "\r\n" + b64("s3cret") + "\r\n",
	}, {
		name:    "oauth2 but only passwords offered",
		auth:    "oauth2",
		tokens:  staticTokens("tok"),
		server:  greeting + ehloReply("PLAIN LOGIN"),
		want:    ehloLine,
		wantErr: []string{"server offers PLAIN LOGIN, none usable for oauth2 auth"},
	}, {
		name:    "password but no AUTH offered",
		auth:    "password",
		server:  greeting + ehloReply(""),
		want:    ehloLine,
		wantErr: []string{"offers no AUTH mechanism"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := tt.user
			if user == "" {
				user = mailbox
			}
			o := Options{Host: "mx.example.test", TLS: "none", HELO: "box.example.test",
				Auth: tt.auth, User: user, Password: "s3cret", Tokens: tt.tokens}
			if err := o.normalize(); err != nil {
				t.Fatal(err)
			}
			fc := &fakeConn{r: strings.NewReader(tt.server)}
			_, err := start(t.Context(), fc, o)
			if got := fc.w.String(); got != tt.want {
				t.Errorf("client wrote\n%q\nwant\n%q", got, tt.want)
			}
			if tt.wantErr == nil && tt.wantCode == 0 {
				if err != nil {
					t.Fatalf("start: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("start succeeded, want an error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			for _, secret := range []string{"s3cret", bigToken, "tok\x01"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q reveals a secret", err)
				}
			}
			if Hint(err) == "" {
				t.Errorf("Hint(%q) is empty", err)
			}
			if tt.wantCode == 0 {
				return
			}
			var se *smtp.SMTPError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not an *smtp.SMTPError", err)
			}
			if se.Code != tt.wantCode || se.EnhancedCode != tt.wantEnh {
				t.Errorf("SMTPError %d %v, want %d %v", se.Code, se.EnhancedCode, tt.wantCode, tt.wantEnh)
			}
		})
	}
}

func TestRefreshGetsRefusedToken(t *testing.T) {
	tokens := &refreshingTokens{stale: "old-token", fresh: "old-token"}
	o := Options{Host: "mx.example.test", TLS: "none", Auth: "oauth2", User: mailbox, Tokens: tokens}
	if err := o.normalize(); err != nil {
		t.Fatal(err)
	}
	fc := &fakeConn{r: strings.NewReader(greeting + ehloReply("XOAUTH2") + "334 \r\n" + "535 5.7.3 Authentication unsuccessful\r\n" + starReply)}
	_, err := start(t.Context(), fc, o)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 535 {
		t.Fatalf("start: %v, want 535", err)
	}
	if len(tokens.refreshed) != 1 || tokens.refreshed[0] != "old-token" {
		t.Errorf("Refresh called with %q, want once with the refused token", tokens.refreshed)
	}
	// The same token again is not tried twice.
	if n := strings.Count(fc.w.String(), "AUTH XOAUTH2"); n != 1 {
		t.Errorf("AUTH sent %d times, want 1", n)
	}
}

func TestSendTranscript(t *testing.T) {
	server := greeting + ehloReply("") +
		"250 2.1.0 Ok\r\n" + "550 5.1.1 <nobody@example.test>: Recipient address rejected\r\n" +
		"250 2.0.0 Ok\r\n" + ehloReply("") +
		"250 2.1.0 Ok\r\n" + "250 2.1.5 Ok\r\n" + "354 End data with <CR><LF>.<CR><LF>\r\n" +
		"250 2.0.0 Ok: queued as 4ZxY1k0Q2Gz9B\r\n"
	msg := "Subject: test\r\n\r\n.leading dot\r\n"
	want := ehloLine +
		"MAIL FROM:<alarm@example.test> BODY=8BITMIME\r\n" + "RCPT TO:<nobody@example.test>\r\n" +
		// The half-done transaction is reset first; go-smtp says EHLO again.
		"RSET\r\n" + ehloLine +
		"MAIL FROM:<alarm@example.test> BODY=8BITMIME\r\n" + "RCPT TO:<ops@example.test>\r\n" + "DATA\r\n" +
		"Subject: test\r\n\r\n..leading dot\r\n.\r\n"

	var trace []string
	o := Options{Host: "mx.example.test", TLS: "none", HELO: "box.example.test",
		Trace: func(step, detail string) { trace = append(trace, step+": "+detail) }}
	if err := o.normalize(); err != nil {
		t.Fatal(err)
	}
	fc := &fakeConn{r: strings.NewReader(server)}
	c, err := start(t.Context(), fc, o)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(t.Context(), mailbox, []string{"nobody@example.test"}, []byte(msg))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 {
		t.Fatalf("Send to nobody: %v, want 550", err)
	}
	if want := "rcpt to <nobody@example.test>: 550 5.1.1 <nobody@example.test>: Recipient address rejected"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	r, err := c.Send(t.Context(), mailbox, []string{"ops@example.test"}, []byte(msg))
	if err != nil {
		t.Fatalf("second Send: %v", err)
	}
	if got := fc.w.String(); got != want {
		t.Errorf("client wrote\n%q\nwant\n%q", got, want)
	}
	wantReply := Reply{Code: 250, Enhanced: "2.0.0", Text: "Ok: queued as 4ZxY1k0Q2Gz9B", QueueID: "4ZxY1k0Q2Gz9B"}
	if r != wantReply {
		t.Errorf("reply %+v, want %+v", r, wantReply)
	}
	if last := trace[len(trace)-1]; last != "sent: 250 2.0.0 Ok: queued as 4ZxY1k0Q2Gz9B" {
		t.Errorf("last trace line %q", last)
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		text string
		want Reply
	}{
		{"2.0.0 Ok: queued as 4ZxY1k0Q2Gz9B", Reply{250, "2.0.0", "Ok: queued as 4ZxY1k0Q2Gz9B", "4ZxY1k0Q2Gz9B"}},
		{"Ok: queued as ABC123", Reply{250, "", "Ok: queued as ABC123", "ABC123"}},
		{"2.0.0 OK <a@b> [Hostname=AM0PR01MB0001.eurprd01.prod.exchangelabs.com]",
			Reply{250, "2.0.0", "OK <a@b> [Hostname=AM0PR01MB0001.eurprd01.prod.exchangelabs.com]", ""}},
		{"2.0.0 OK  1700000000 d2e1a72fcca58-6c2d - gsmtp", Reply{250, "2.0.0", "OK 1700000000 d2e1a72fcca58-6c2d - gsmtp", ""}},
		{"", Reply{Code: 250}},
		{"2.0.0", Reply{250, "2.0.0", "", ""}},
		{"9.9.9 text", Reply{250, "", "9.9.9 text", ""}},
		{"queued as", Reply{250, "", "queued as", ""}},
		{"\x80queued as 0", Reply{250, "", "\x80queued as 0", "0"}},
		{"Queued As X", Reply{250, "", "Queued As X", ""}},
		{"2.0.0 Ok: queued as X1.\nsecond line", Reply{250, "2.0.0", "Ok: queued as X1. second line", "X1"}},
	}
	for _, tt := range tests {
		if got := parseReply(tt.text); got != tt.want {
			t.Errorf("parseReply(%q) = %+v, want %+v", tt.text, got, tt.want)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"2.0.0 Ok: queued as 4ZxY1k0Q2Gz9B", "Ok: queued as ", "2.0.0", "queued as x y", "5.0.0.0 x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		r := parseReply(text)
		if r.Code != 250 {
			t.Errorf("code %d", r.Code)
		}
		if r.QueueID != "" && !strings.Contains(r.Text, r.QueueID) {
			t.Errorf("queue id %q not in %q", r.QueueID, r.Text)
		}
		if r.Enhanced != "" && !isEnhancedCode(r.Enhanced) {
			t.Errorf("enhanced %q", r.Enhanced)
		}
		if strings.ContainsAny(r.Text, "\r\n\t") {
			t.Errorf("text %q has line breaks or tabs", r.Text)
		}
	})
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"defaults", Options{Host: "mx.example.test"}, true},
		{"no host", Options{}, false},
		{"host with space", Options{Host: "mx example"}, false},
		{"helo with CRLF", Options{Host: "mx", HELO: "a\r\nMAIL"}, false},
		{"bad tls", Options{Host: "mx", TLS: "ssl"}, false},
		{"bad auth", Options{Host: "mx", Auth: "cram-md5"}, false},
		{"password without password", Options{Host: "mx", Auth: "password", User: "u"}, false},
		{"oauth2 without tokens", Options{Host: "mx", Auth: "oauth2", User: "u"}, false},
		{"port out of range", Options{Host: "mx", Port: 70000}, false},
		{"negative timeout", Options{Host: "mx", Timeout: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.normalize()
			if (err == nil) != tt.ok {
				t.Errorf("normalize() = %v, want ok %v", err, tt.ok)
			}
		})
	}
	o := Options{Host: "mx", TLS: "tls"}
	if err := o.normalize(); err != nil || o.Port != 465 || o.HELO != "localhost" || o.Auth != "none" || o.Timeout != DefaultTimeout {
		t.Errorf("defaults for tls: %+v, %v", o, err)
	}
	o = Options{Host: "mx"}
	if err := o.normalize(); err != nil || o.Port != 587 || o.TLS != "starttls" {
		t.Errorf("defaults: %+v, %v", o, err)
	}
}

func TestEHLOWithoutSTARTTLS(t *testing.T) {
	tests := []struct {
		read string
		want bool
	}{
		{greeting + "250-mx\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n", true},
		{greeting + "250-mx\r\n250-STARTTLS\r\n250 8BITMIME\r\n", false},
		{greeting + "250-mx\r\n250 starttls\r\n", false},
		{greeting + "250-mx\r\n250-STARTTLSX\r\n250 SIZE\r\n", true},
		{greeting + "500 5.5.1 EHLO unknown\r\n250 mx\r\n", true}, // HELO fallback: no extensions
		{greeting + "250-mx\r\n250-AUTH PLAIN\r\n", false},        // cut short: a broken connection
		{greeting, false},
		{"", false},
		{greeting + "554 5.7.1 no\r\n", false},
	}
	for _, tt := range tests {
		c := &timeoutConn{read: []byte(tt.read)}
		if got := c.ehloWithoutSTARTTLS(); got != tt.want {
			t.Errorf("ehloWithoutSTARTTLS(%q) = %v, want %v", tt.read, got, tt.want)
		}
	}
}

func TestSendRefusesBadAddressesLocally(t *testing.T) {
	o := Options{Host: "mx.example.test", TLS: "none", HELO: "box.example.test"}
	if err := o.normalize(); err != nil {
		t.Fatal(err)
	}
	fc := &fakeConn{r: strings.NewReader(greeting + ehloReply(""))}
	c, err := start(t.Context(), fc, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"a@b\r\nRCPT TO:<evil@x>", "ops@b>", "öps@example.test"} {
		if _, err := c.Send(t.Context(), mailbox, []string{to}, []byte("x\r\n")); err == nil {
			t.Errorf("Send to %q succeeded", to)
		}
	}
	if got := fc.w.String(); got != ehloLine {
		t.Errorf("client wrote %q, want only EHLO", got)
	}
	if c.broken != nil {
		t.Errorf("client broken by a local refusal: %v", c.broken)
	}
}
