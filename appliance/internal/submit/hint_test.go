package submit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/emersion/go-smtp"
)

func reply(code int, e1, e2, e3 int, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{e1, e2, e3}, Message: msg}
}

func authErr(mech string, err error) error {
	return &AuthError{Mechanism: mech, User: "alarm@example.test", Err: err}
}

func TestHint(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string // substring; "" means no hint
	}{
		{"nil", nil, ""},
		{"unknown", errors.New("something odd"), ""},
		{"wrong password PLAIN", authErr("PLAIN", reply(535, 5, 7, 8, "Username and Password not accepted")), "smtp.password"},
		{"wrong password LOGIN at Exchange", authErr("LOGIN", reply(535, 5, 7, 3, "Authentication unsuccessful")), "smtp.password"},
		{"token refused XOAUTH2 at Gmail", authErr("XOAUTH2", reply(535, 5, 7, 8, "Username and Password not accepted")), "access token"},
		{"token refused OAUTHBEARER", authErr("OAUTHBEARER", reply(535, 5, 7, 8, "Authentication failed")), "https://mail.google.com/"},
		{"Exchange token wrong mailbox or scope", authErr("XOAUTH2", reply(535, 5, 7, 3, "Authentication unsuccessful")), "https://outlook.office.com/SMTP.Send first"},
		{"SMTP AUTH disabled in tenant", authErr("XOAUTH2", reply(535, 5, 7, 139, "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.")), "Set-CASMailbox"},
		{"SMTP AUTH disabled, password", authErr("LOGIN", reply(535, 5, 7, 139, "Authentication unsuccessful")), "Set-TransportConfig -SmtpClientAuthenticationDisabled $false"},
		{"SendAsDenied after DATA", opError{"data", reply(554, 5, 2, 252, "SendAsDenied; alarm@example.test not allowed to send as boss@example.test")}, "SendAs rights"},
		{"too many connections", opError{"auth", reply(432, 4, 3, 2, "STOREDRV.ClientSubmit; sender thread limit exceeded")}, "retried later"},
		{"basic auth retired", authErr("LOGIN", reply(550, 5, 7, 30, "Basic authentication is not supported for Client Submission.")), `smtp.auth = "oauth2"`},
		{"line too long", opError{"mail from", reply(555, 5, 5, 2, "Syntax error, command line too long")}, "too long"},
		{"authentication required", opError{"mail from <a@b>", reply(530, 5, 7, 0, "Authentication Required")}, "set smtp.auth"},
		{"other temporary", opError{"rcpt to", reply(451, 4, 3, 0, "try later")}, "temporary"},
		{"other permanent", opError{"rcpt to", reply(550, 5, 1, 1, "no such user")}, ""},
		{"no STARTTLS", ErrNoSTARTTLS, `tls = "tls" on port 465`},
		{"untrusted certificate", fmt.Errorf("tls handshake with mx: %w",
			&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), "set smtp.ca_file to the CA that signed the server certificate"},
		{"name mismatch", fmt.Errorf("tls handshake with 10.0.0.5: %w", &tls.CertificateVerificationError{Err: x509.HostnameError{
			Certificate: &x509.Certificate{DNSNames: []string{"mail.example.com"}}, Host: "10.0.0.5"}}), "for mail.example.com, not 10.0.0.5"},
		{"name mismatch without certificate", x509.HostnameError{Host: "mx"}, "not valid for mx"},
		{"expired certificate", x509.CertificateInvalidError{Reason: x509.Expired}, "clock"},
		{"plaintext on a TLS port", fmt.Errorf("tls handshake: %w", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), `port 465 uses tls = "tls"`},
		{"connection refused", fmt.Errorf("connect: %w", &net.OpError{Op: "dial", Net: "tcp",
			Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}), "refuses connections"},
		{"no route", &net.OpError{Op: "dial", Err: &os.SyscallError{Syscall: "connect", Err: syscall.EHOSTUNREACH}}, "no route"},
		{"DNS name not found", fmt.Errorf("connect: %w", &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "smtp.exampel.com", IsNotFound: true}}), "does not exist"},
		{"DNS server failure", &net.DNSError{Err: "server misbehaving", Name: "smtp.example.com"}, "DNS server"},
		{"dial timeout", fmt.Errorf("connect: %w", context.DeadlineExceeded), "did not answer in time"},
		{"command timeout", opError{"ehlo", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}}, "did not answer in time"},
		{"oauth2 not offered", &mechError{"oauth2", []string{"PLAIN", "LOGIN"}}, "does not accept OAuth2 tokens (it offers PLAIN LOGIN)"},
		{"password not offered", &mechError{"password", []string{"XOAUTH2"}}, "does not accept passwords"},
		{"no AUTH at all", &mechError{"password", nil}, "offers no authentication"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Hint(tt.err)
			if tt.want == "" {
				if got != "" {
					t.Errorf("Hint(%v) = %q, want none", tt.err, got)
				}
				return
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("Hint(%v) = %q, want it to contain %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{authErr("XOAUTH2", reply(535, 5, 7, 3, "Authentication unsuccessful [AM0PR]")),
			"auth XOAUTH2 as alarm@example.test: 535 5.7.3 Authentication unsuccessful [AM0PR]"},
		{&AuthError{Mechanism: "XOAUTH2", User: "u", Challenge: `status "400"`, Err: reply(535, 5, 7, 8, "Username and\nPassword")},
			`auth XOAUTH2 as u: 535 5.7.8 Username and Password (server challenge: status "400")`},
		{opError{"data", &smtp.SMTPError{Code: 554, Message: "no"}}, "data: 554 no"},
		{opError{"data", &smtp.SMTPError{Code: 554, EnhancedCode: smtp.NoEnhancedCode, Message: "no"}}, "data: 554 no"},
		{opError{"ehlo", errors.New("EOF")}, "ehlo: EOF"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestSummarizeChallenge(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{`{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`, `status "400", scope "https://mail.google.com/"`},
		{`{"status":"401","schemes":"bearer","scope":"mail"}`, `status "401", scope "mail"`},
		{`{"status":"invalid_token"}`, `status "invalid_token"`},
		{"not json\x01", `"not json\x01"`},
		{strings.Repeat("x", 300), `"` + strings.Repeat("x", 200) + `"`},
	}
	for _, tt := range tests {
		if got := summarizeChallenge([]byte(tt.in)); got != tt.want {
			t.Errorf("summarizeChallenge(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
