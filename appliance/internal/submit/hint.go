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

	"github.com/emersion/go-smtp"
)

// Hint says in plain words what the administrator can do about an error
// from Dial or Send, or returns "" when it knows nothing useful. It decides
// on error types and SMTP codes only.
func Hint(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, ErrNoSTARTTLS) {
		return `the server offers no STARTTLS on this port; use tls = "tls" on port 465, ` +
			`or the server's submission port (587) with tls = "starttls"`
	}
	var me *mechError
	if errors.As(err, &me) {
		return mechHint(me)
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		var ae *AuthError
		oauth2 := errors.As(err, &ae) && ae.oauth2()
		if h := replyHint(se, oauth2); h != "" {
			return h
		}
	}
	if h := certHint(err); h != "" {
		return h
	}
	return netHint(err)
}

func mechHint(e *mechError) string {
	offered := strings.Join(e.offered, " ")
	switch {
	case len(e.offered) == 0:
		return "the server offers no authentication on this connection; check smtp.host and smtp.port " +
			`(submission is 587 with starttls or 465 with tls), or set smtp.auth = "none" if it relays without`
	case e.auth == "oauth2":
		return "the server does not accept OAuth2 tokens (it offers " + offered + `); use smtp.auth = "password" or another server`
	default:
		return "the server does not accept passwords (it offers " + offered + `); use smtp.auth = "oauth2"`
	}
}

type enh = smtp.EnhancedCode

func replyHint(se *smtp.SMTPError, oauth2 bool) string {
	ec := se.EnhancedCode
	switch {
	case se.Code == 535 && ec == enh{5, 7, 139}:
		return "SMTP AUTH is disabled for the Microsoft 365 tenant or mailbox (or blocked by security defaults); " +
			"an Exchange admin enables it with Set-TransportConfig -SmtpClientAuthenticationDisabled $false " +
			"or, for the mailbox, Set-CASMailbox <mailbox> -SmtpClientAuthenticationDisabled $false"
	case se.Code == 535 && oauth2 && ec == enh{5, 7, 3}:
		return "Exchange Online refused the token: it is for another mailbox than smtp.user, or for the wrong scope; " +
			"the scope must be https://outlook.office.com/SMTP.Send first (app-only: https://outlook.office365.com/.default " +
			"with SMTP.SendAsApp and the app's service principal registered in Exchange)"
	case se.Code == 535 && oauth2:
		return "the server refused the OAuth2 access token: it has expired, lacks the mail scope " +
			"(Gmail: https://mail.google.com/; Microsoft: https://outlook.office.com/SMTP.Send), " +
			"or is for another mailbox than smtp.user; authorise again"
	case se.Code == 535:
		return "the server refused the user name or password; check smtp.user and smtp.password " +
			"(accounts with two-step verification need an app password; Microsoft 365 and Gmail prefer oauth2)"
	case se.Code == 554 && ec == enh{5, 2, 252}:
		return "Exchange refused to send as mail.from (SendAsDenied): mail.from must be the authenticated mailbox, " +
			"or that mailbox needs SendAs rights on it (Add-RecipientPermission)"
	case se.Code == 432 && ec == enh{4, 3, 2}:
		return "too many connections to this mailbox at once (Exchange Online allows 3); the mail is retried later"
	case se.Code == 550 && ec == enh{5, 7, 30}:
		return `the server no longer accepts passwords (basic authentication is retired); use smtp.auth = "oauth2"`
	case se.Code == 555:
		return "the server refused a command line as too long or malformed (555); " +
			"check mail.from and mail.to for stray characters"
	case se.Code == 530:
		return `the server requires authentication before accepting mail; set smtp.auth to "password" or "oauth2"`
	case se.Code/100 == 4:
		return "the server reported a temporary failure; the mail is retried later"
	}
	return ""
}

func certHint(err error) string {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return "the server certificate is not signed by a CA this box trusts; set smtp.ca_file to the CA " +
			"that signed the server certificate (a PEM file), and check that nothing intercepts the connection"
	}
	var he x509.HostnameError
	if errors.As(err, &he) {
		if he.Certificate == nil {
			return fmt.Sprintf("the server certificate is not valid for %s; set smtp.host to a name the certificate lists", he.Host)
		}
		names := append([]string(nil), he.Certificate.DNSNames...)
		for _, ip := range he.Certificate.IPAddresses {
			names = append(names, ip.String())
		}
		return fmt.Sprintf("the server certificate is for %s, not %s; set smtp.host to one of those names",
			strings.Join(names, ", "), he.Host)
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) && ci.Reason == x509.Expired {
		return "the server certificate has expired or is not yet valid, or this box's clock is wrong; check the date and time"
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return `the server did not answer with TLS; ports 587 and 25 use tls = "starttls", port 465 uses tls = "tls"`
	}
	return ""
}

func netHint(err error) string {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "the name in smtp.host does not exist; check its spelling"
		}
		return "the name in smtp.host cannot be resolved; check the box's DNS server settings"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "the server refuses connections on this port; check smtp.host and smtp.port (587 with starttls, 465 with tls) and firewalls"
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return "there is no route to the server; check the box's network settings (address, gateway)"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return `the server did not answer in time; check that no firewall blocks the port, and that smtp.tls matches it (465 needs tls = "tls")`
	}
	return ""
}
