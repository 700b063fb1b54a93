package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// ErrClockUnset is wrapped by the error of every request made while the
// system clock reads a time before the build date: signed assertions and TLS
// certificates would fail with riddles, so nothing is sent.
var ErrClockUnset = errors.New("system clock not set")

// ErrClockSkew is matched (errors.Is) by the error of a token request
// refused because the system clock is off: the provider said the signed
// assertion is outside its time window (Google's "Invalid JWT: Token must
// be a short-lived token…", Microsoft's AADSTS700024), or the token
// server's Date header is minutes away from the system clock. Such an
// error is Transient: once the clock is right (NTP), the next try works.
var ErrClockSkew = errors.New("system clock off")

// maxClockSkew is how far the system clock may be from the token server's
// Date header before a refusal is put down to the clock.
const maxClockSkew = 2 * time.Minute

// ErrNoRefreshToken is wrapped by the error of an interactive grant that
// returned no refresh token (such a grant dies with its access token, so it
// is never a success), and of Refresh called without a refresh token.
var ErrNoRefreshToken = errors.New("the provider returned no refresh token")

// ErrDeviceCodeUnsupported is wrapped by the error of DeviceAuth in a mode
// whose provider refuses the device flow for the mail scope (Google).
var ErrDeviceCodeUnsupported = errors.New("device code not offered for this mode")

// ProviderError is the error of every Client method that talks to the
// authorization server (and of Finish, which reads its redirect): what
// failed, what the provider said, and whether and how to retry.
//
// Exactly one of three cases holds: Reauth (the grant is dead: a person must
// authorise again, or the credentials in the configuration must be fixed;
// never retry), Transient (network, timeout, 5xx, 429, unset clock: retry
// later with backoff and keep every token), or neither (the configuration
// or the registration at the provider is wrong: retrying with the same
// configuration gives the same answer). No secret, token, code or assertion
// is ever part of the message.
type ProviderError struct {
	// Op is what was being done: "exchange", "refresh", "device authorization",
	// "device poll", "password grant", "client credentials", "jwt bearer",
	// "authorization".
	Op string
	// Code and Description are RFC 6749's error and error_description as the
	// provider sent them (Microsoft puts its AADSTS code first in
	// Description). Description is cut to one line of at most 400 characters.
	Code, Description string
	// Codes are Microsoft's error_codes (the AADSTS numbers).
	Codes []int
	// Status is the HTTP status, 0 when no answer came.
	Status int
	// Reauth means the grant is dead: a person must authorise again (or fix
	// the password or key); never retry it automatically.
	Reauth bool
	// Transient means a retry later may succeed: keep every token.
	Transient bool
	// Fix says in plain words what to do.
	Fix string
	// ClockSkew is how far the system clock is ahead of the token
	// server's (negative: behind), by its Date header, when that is more
	// than two minutes; 0 otherwise.
	ClockSkew time.Duration

	err   error
	clock bool // refused for the clock (ErrClockSkew)
}

// Error says what failed and what the provider answered.
func (e *ProviderError) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	switch {
	case e.Code != "":
		b.WriteString(e.Code)
		if e.Description != "" {
			b.WriteString(": ")
			b.WriteString(e.Description)
		}
		if e.Status != 0 {
			fmt.Fprintf(&b, " (HTTP %d)", e.Status)
		}
	case e.Status != 0:
		fmt.Fprintf(&b, "the token endpoint answered HTTP %d %s", e.Status, http.StatusText(e.Status))
		if e.Description != "" {
			b.WriteString(": ")
			b.WriteString(e.Description)
		}
	case e.err != nil:
		b.WriteString(oneLine(e.err.Error(), 400))
	default:
		b.WriteString("failed")
	}
	if e.ClockSkew != 0 {
		fmt.Fprintf(&b, "; the system clock is %s", skewWords(e.ClockSkew))
	}
	return b.String()
}

// Is matches ErrClockSkew for a refusal put down to the clock.
func (e *ProviderError) Is(target error) bool { return target == ErrClockSkew && e.clock }

// skewWords says how the clock is off: "10m0s ahead of the token server's".
func skewWords(d time.Duration) string {
	if d < 0 {
		return (-d).Round(time.Second).String() + " behind the token server's"
	}
	return d.Round(time.Second).String() + " ahead of the token server's"
}

// clockRefusal reports whether the provider refused a signed assertion
// for its time: Google's JWT time window (invalid_grant, "Invalid JWT:
// Token must be a short-lived token (60 minutes) and in a reasonable
// timeframe. Check your iat and exp values…"), Microsoft's AADSTS700024
// (client assertion not within its valid time range).
func (e *ProviderError) clockRefusal() bool {
	if e.aadsts() == 700024 {
		return true
	}
	d := strings.ToLower(e.Description)
	return e.Code == "invalid_grant" && (strings.Contains(d, "reasonable timeframe") || strings.Contains(d, "iat and exp"))
}

// forClock makes e a refusal for the clock: not permanent (no person
// can fix it by signing in; it works again once the clock is right), with
// the clock as the fix.
func (e *ProviderError) forClock() {
	e.clock, e.Reauth, e.Transient = true, false, true
	switch {
	case e.ClockSkew != 0:
		e.Fix = fmt.Sprintf("the system clock is %s (its Date header): set the clock or check NTP; mailagent tries again by itself", skewWords(e.ClockSkew))
	default:
		e.Fix = "the provider refused the signed request for its time: check the system clock (NTP); mailagent tries again by itself"
	}
}

// Hint says what the administrator should do, or "" when there is nothing
// better than trying again.
func (e *ProviderError) Hint() string { return e.Fix }

// Temporary reports whether a later retry may succeed (Transient).
func (e *ProviderError) Temporary() bool { return e.Transient }

// Unwrap returns the cause: ErrClockUnset, ErrNoRefreshToken,
// ErrDeviceCodeUnsupported, a context or network error, or an
// *oauth2.RetrieveError whose body and description have been cleaned of
// anything the request sent.
func (e *ProviderError) Unwrap() error { return e.err }

// reauthCodes are the RFC 6749 / RFC 8628 / Microsoft error codes after
// which the grant (or this authorisation attempt) is dead.
var reauthCodes = map[string]bool{
	"invalid_grant":          true,
	"interaction_required":   true,
	"consent_required":       true,
	"login_required":         true,
	"access_denied":          true,
	"authorization_declined": true,
	"expired_token":          true,
	"bad_verification_code":  true,
}

// transientCodes are error codes that mean "try again later".
var transientCodes = map[string]bool{
	"temporarily_unavailable": true,
	"server_error":            true,
	"slow_down":               true,
	"authorization_pending":   true,
}

// errorBody is an RFC 6749 §5.2 error response, with Microsoft's additions.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
}

// parseErrorBody reads an error response in JSON or form encoding; fields
// it cannot read stay empty.
func parseErrorBody(body []byte) errorBody {
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		return eb
	}
	// The whole body may be JSON with an unexpected type in error_codes.
	var loose struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if json.Unmarshal(body, &loose) == nil {
		return errorBody{Error: loose.Error, ErrorDescription: loose.ErrorDescription}
	}
	if v, err := url.ParseQuery(string(body)); err == nil && v.Get("error") != "" {
		return errorBody{Error: v.Get("error"), ErrorDescription: v.Get("error_description")}
	}
	return errorBody{}
}

var aadstsPrefix = regexp.MustCompile(`^AADSTS(\d+)`)

// aadsts returns Microsoft's error number: the first of Codes, else the
// AADSTSnnnn prefix of the description; 0 for none.
func (e *ProviderError) aadsts() int {
	if len(e.Codes) > 0 {
		return e.Codes[0]
	}
	if m := aadstsPrefix.FindStringSubmatch(e.Description); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// classify turns err from x/oauth2 (or the transport) into a *ProviderError
// for op, deciding Reauth and Transient on types and error codes only.
// netErr is the error the transport saw, if any: x/oauth2/jwt formats it
// with %v, losing its type.
func (c *Client) classify(op string, err error, netErr error, s *scrubber) *ProviderError {
	if pe, ok := errors.AsType[*ProviderError](err); ok {
		return pe
	}
	e := &ProviderError{Op: op}
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		eb := parseErrorBody(re.Body)
		e.Code, e.Description = re.ErrorCode, re.ErrorDescription
		if e.Code == "" {
			e.Code, e.Description = eb.Error, eb.ErrorDescription
		}
		e.Codes = eb.ErrorCodes
		if re.Response != nil {
			e.Status = re.Response.StatusCode
		}
		e.err = s.retrieveError(re)
	case netErr != nil:
		e.err = netErr
		e.Transient = true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		e.err = err
		e.Transient = true
	default:
		// Not an OAuth2 error: an answer that is no token (HTML from a
		// proxy or captive portal, no access_token) or a failed read.
		e.err = errors.New(s.clean(err.Error()))
		e.Transient = true
		if ne, ok := errors.AsType[net.Error](err); ok {
			e.err = ne
		}
		e.Fix = "the token endpoint did not answer with a token: check oauth2.token_url and any proxy in between"
	}
	e.Code = oneLine(s.clean(e.Code), 100)
	e.Description = oneLine(s.clean(e.Description), 400)
	switch {
	case reauthCodes[e.Code]:
		e.Reauth = true
	case transientCodes[e.Code], e.Status >= 500, e.Status == http.StatusTooManyRequests, e.Status == http.StatusRequestTimeout:
		e.Transient = true
	}
	if f := c.fix(e); f != "" {
		e.Fix = f
	}
	if e.clockRefusal() {
		e.forClock()
	}
	if c.mode.Name == "exchange" && e.Op == "refresh" && e.aadsts() == 700025 {
		// A device-code grant from before tokens.toml recorded grants,
		// refreshed with the secret: only a new sign-in (which records
		// the grant) helps, and status must say so.
		e.Reauth, e.Transient = true, false
	}
	return e
}

// fix is the plain-language hint for e in this client's mode.
func (c *Client) fix(e *ProviderError) string {
	mode := c.mode.Name
	if c.mode.Microsoft {
		if f := microsoftFix(e.aadsts(), mode, e.Op); f != "" {
			return f
		}
	}
	switch e.Code {
	case "invalid_grant":
		switch {
		case mode == "gmail" && e.Op == "refresh":
			return `Google no longer accepts the refresh token (revoked, unused for 6 months, password changed, or the app is in "Testing", where refresh tokens last 7 days): publish the app on the OAuth consent screen, then authorise again`
		case mode == "google-service-account":
			return "Google refused the signed request: check that private_key, private_key_id and client_email come from the same current JSON key, that the key was not deleted, that oauth2.subject is a mailbox of the Workspace domain, and that the system clock is right"
		case e.Op == "exchange":
			return "the authorisation code was refused (used twice, too old, or the PKCE check failed): authorise again"
		case mode == "microsoft365":
			return "Microsoft refused the user name and password: check oauth2.username and oauth2.password; if the account uses multi-factor authentication use mode exchange or microsoft-app"
		}
		return "the grant is no longer valid (revoked, expired or the password changed): authorise again"
	case "interaction_required", "login_required":
		return "the provider wants a person to sign in again (for example multi-factor authentication or a sign-in policy): authorise again"
	case "consent_required":
		return "the permissions were not granted: an administrator must consent to the app's permissions, then authorise again"
	case "access_denied", "authorization_declined":
		return "the sign-in was cancelled or the permissions were refused: authorise again and accept the permissions"
	case "expired_token":
		return "the code expired before the sign-in was completed: start the authorisation again"
	case "bad_verification_code":
		return "the code was mistyped: start the authorisation again"
	case "invalid_client":
		switch {
		case c.signer != nil:
			return "the provider refused the signed client assertion: check oauth2.client_id, that the certificate or key registered at the provider matches oauth2.private_key (and oauth2.key_id), and the system clock"
		case strings.HasPrefix(mode, "google") || mode == "gmail":
			return "Google does not know this client or its secret: import the client JSON again (mailagent config import google-client FILE)"
		}
		return "the provider refused the client: check oauth2.client_id and oauth2.client_secret (the secret's value, not its ID)"
	case "unauthorized_client":
		if mode == "google-service-account" {
			id := c.cfg.ClientID
			if id == "" {
				id = "of the service account"
			}
			return "domain-wide delegation is missing: in the Google Admin console (Security > API controls > Domain-wide delegation) allow client ID " + id + " the scope https://mail.google.com/; it can take up to 24 hours to apply"
		}
		return "the app is not allowed to use this grant: check the app's registration at the provider (platform, allowed grant types)"
	case "invalid_scope":
		switch {
		case c.mode.Microsoft:
			return "Microsoft refused the scopes: check oauth2.scopes (the SMTP scope first; unset it for the mode's default)"
		case mode == "gmail" || mode == "google-service-account":
			return "Google refused the scope: the mail scope is https://mail.google.com/ (gmail.send does not work for SMTP); unset oauth2.scopes for the default"
		}
		return "the provider refused the scopes: check oauth2.scopes and the scope in oauth2.auth_url"
	case "invalid_request":
		return "the provider refused the request as malformed: check oauth2.token_url, oauth2.client_id and oauth2.redirect_url"
	case "unsupported_grant_type":
		return "the provider does not offer this grant to the app: check the app's registration and the mode"
	}
	switch {
	case e.Status >= 300 && e.Status < 400:
		return "the token endpoint redirects elsewhere, which is never followed: set oauth2.token_url to the final address"
	case e.Status == http.StatusTooManyRequests:
		return "the provider limits the request rate: mailagent retries later"
	case e.Status >= 500:
		return "the provider has trouble: mailagent retries later and keeps the tokens"
	case e.Status == http.StatusNotFound:
		return "the token endpoint does not exist: check oauth2.token_url (and oauth2.tenant, oauth2.authority)"
	}
	return ""
}

// microsoftFix is the hint for a Microsoft AADSTS error number.
func microsoftFix(code int, mode, op string) string {
	switch code {
	case 70008, 700082:
		if op == "exchange" {
			// At code redemption AADSTS70008 is the code's own expiry
			// (codes live about 10 minutes), not the refresh token's.
			return "the authorisation code expired before it was redeemed (it lasts about 10 minutes): authorise again and paste the address back at once"
		}
		return "the refresh token expired after 90 days without use: authorise again (the keep-alive refresh keeps it alive from then on)"
	case 700024:
		return "Microsoft refused the client assertion for its time (not within its valid time range): check the system clock (NTP); mailagent tries again by itself"
	case 500011:
		return "the scope's resource is not in this tenant (AADSTS500011: resource principal not found): check oauth2.scopes and oauth2.tenant; for SMTP the resource is Office 365 Exchange Online (https://outlook.office365.com/.default, or https://outlook.office.com/SMTP.Send when a person signs in), and the tenant needs Exchange Online"
	case 1002012:
		return "client credentials need a scope ending in /.default: unset oauth2.scopes for the default https://outlook.office365.com/.default"
	case 7000222:
		return "the client secret has expired: create a new secret for the app in Entra ID, then set oauth2.client_secret and oauth2.secret_expires"
	case 7000215:
		return "the client secret is wrong: copy the secret's Value (not its Secret ID) into oauth2.client_secret"
	case 50076, 50079:
		return "multi-factor authentication blocks the password grant: use mode exchange (a person signs in once) or microsoft-app"
	case 7000218:
		return `the device code sign-in (and the password grant) needs public client flows: enable "Allow public client flows" (App registrations → your app → Authentication → Advanced settings), then authorise again`
	case 700025:
		if mode == "exchange" {
			return `Microsoft treats this grant as a public client's (a device code sign-in) and refused the client secret sent with it: authorise again (mailagent authorize), which records the grant so that its refreshes send no secret`
		}
		return "the app is registered as a public client, so it must not send a secret: register a Web platform for the app, or leave oauth2.client_secret unset where the mode allows it"
	case 50126:
		return "wrong user name or password: check oauth2.username and oauth2.password"
	case 50034:
		return "the user does not exist in this tenant: check oauth2.username and oauth2.tenant"
	case 50053:
		return "the account is locked (too many failed sign-ins): wait, or ask the tenant administrator"
	case 50055:
		return "the account's password has expired: change it, then set oauth2.password"
	case 50057:
		return "the account is disabled: ask the tenant administrator"
	case 9001023, 50194:
		return "this grant needs a tenant: set oauth2.tenant to the tenant ID or domain (not common or consumers)"
	case 700016:
		return "the app is not known in this tenant: check oauth2.client_id and oauth2.tenant"
	case 700027, 50048:
		return "Microsoft refused the client assertion: upload oauth2.certificate to the app registration (Certificates & secrets) and check that it belongs to oauth2.private_key"
	case 65001:
		return "the app lacks consent: an administrator must grant consent to its permissions"
	case 50173, 70043:
		return "the grant was revoked or a sign-in policy requires a new sign-in: authorise again"
	case 53003, 530035:
		return "a Conditional Access policy or the tenant's security defaults block this sign-in: ask the tenant administrator, or use mode microsoft-app"
	case 700005, 54005:
		return "the authorisation code was already used or belongs to another tenant: authorise again"
	case 501481:
		return "the PKCE check failed: authorise again from the start"
	case 700084:
		return "the app is registered as a single-page application, whose refresh tokens last 24 hours: register a Web platform instead, then authorise again"
	}
	return ""
}

// scrubber removes what a request sent (secrets, tokens, codes,
// assertions) from text that came back, in case a server echoes them.
type scrubber struct {
	secrets []string
}

// add records s as not to be shown; very short values are ignored, as
// replacing them would garble text without protecting anything.
func (s *scrubber) add(vals ...string) {
	for _, v := range vals {
		if len(v) < 4 {
			continue
		}
		s.secrets = append(s.secrets, v)
		if q := url.QueryEscape(v); q != v {
			s.secrets = append(s.secrets, q)
		}
	}
}

// clean returns text with every recorded secret replaced.
func (s *scrubber) clean(text string) string {
	if s == nil {
		return text
	}
	for _, v := range s.secrets {
		text = strings.ReplaceAll(text, v, "[redacted]")
	}
	return text
}

// retrieveError returns a copy of re whose body and description are clean
// and whose response no longer leads back to the request that was sent.
func (s *scrubber) retrieveError(re *oauth2.RetrieveError) *oauth2.RetrieveError {
	c := *re
	c.Body = []byte(s.clean(string(re.Body)))
	c.ErrorDescription = s.clean(re.ErrorDescription)
	c.ErrorURI = s.clean(re.ErrorURI)
	if re.Response != nil {
		r := *re.Response
		r.Request = nil
		r.Body = http.NoBody
		c.Response = &r
	}
	return &c
}

// oneLine makes provider text fit for a status line: control characters
// become spaces, runs of spaces shrink to one, and it is cut to max runes.
func oneLine(s string, max int) string {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if n >= max {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
