package oauth

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"mailagent/appliance/config"
	"mailagent/appliance/internal/roots"
)

// ClientOptions configures a Client.
type ClientOptions struct {
	// Config is the configuration with its defaults filled in
	// (cfg.WithDefaults(board)): the mode, endpoints, scopes and secrets
	// come from its [oauth2] section and, for the redirect address,
	// http.base_url.
	Config *config.Config
	// HTTP makes the requests; nil means a client with a 10 s dial and
	// TLS handshake timeout, 30 s per request, and the system roots plus
	// a built-in fallback set. Its Transport and Timeout are used; its
	// redirect policy and cookie jar are not (redirects are never
	// followed).
	HTTP *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// NotBefore is the build date: a clock reading before it means the
	// system clock is not set, and every request fails with ErrClockUnset
	// before anything is signed or sent. Zero turns the check off.
	NotBefore time.Time
}

// Client gets OAuth2 tokens from the provider in the configured mode. It
// holds no token: the token lifecycle (Source) calls it. A Client is safe
// for concurrent use.
type Client struct {
	cfg         config.OAuth2
	mode        config.Mode
	scopes      []string
	redirectURL string
	tokenURL    *url.URL
	now         func() time.Time
	notBefore   time.Time
	base        http.RoundTripper
	timeout     time.Duration
	signer      *assertionSigner // client assertions (private-key-jwt, microsoft-app with a certificate)
	credExpires time.Time        // certificate's NotAfter, if any
	secrets     []string         // configured secrets, kept out of every error
}

// Per-request limits of the default HTTP client.
const (
	dialTimeout    = 10 * time.Second
	requestTimeout = 30 * time.Second
)

// NewClient checks the configuration with config.ValidateOAuth2 (every
// missing or wrong key is named, as config.Problems) and parses the private
// key and certificate once; what does not parse is named the same way.
func NewClient(o ClientOptions) (*Client, error) {
	if o.Config == nil {
		return nil, errors.New("oauth: no configuration")
	}
	oc := o.Config.OAuth2
	probs := config.ValidateOAuth2(o.Config)
	mode, ok := config.LookupMode(oc.Mode)
	if !ok {
		return nil, probs // no mode, or not one: ValidateOAuth2 says which
	}
	c := &Client{
		cfg:       oc,
		mode:      mode,
		scopes:    slices.Clone(oc.Scopes),
		now:       o.Now,
		notBefore: o.NotBefore,
		base:      http.DefaultTransport,
		timeout:   requestTimeout,
	}
	if c.now == nil {
		c.now = time.Now
	}
	if o.HTTP != nil {
		c.timeout = o.HTTP.Timeout
		if o.HTTP.Transport != nil {
			c.base = o.HTTP.Transport
		}
	} else {
		c.base = sharedTransport()
	}
	if mode.Microsoft {
		c.scopes = smtpScopeFirst(c.scopes)
	}
	if tu, err := url.Parse(oc.TokenURL); err == nil && oc.TokenURL != "" {
		c.tokenURL = tu
	}
	c.redirectURL = oc.RedirectURL
	if c.redirectURL == "" && o.Config.HTTP.BaseURL != "" {
		c.redirectURL = strings.TrimSuffix(o.Config.HTTP.BaseURL, "/") + "/auth.htm"
	}
	for _, s := range []config.Secret{oc.ClientSecret, oc.Password, oc.PrivateKey} {
		if s.IsSet() {
			c.secrets = append(c.secrets, s.Reveal())
		}
	}

	if oc.PrivateKey.IsSet() {
		switch mode.Name {
		case "private-key-jwt", "microsoft-app":
			s, kerr := newAssertionSigner(oc, c.now)
			if kerr != nil {
				probs = append(probs, kerr)
				break
			}
			c.signer = s
			if s.cert != nil {
				c.credExpires = s.cert.NotAfter
			}
		case "google-service-account":
			if _, err := parsePrivateKey(oc.PrivateKey.Reveal()); err != nil {
				probs = append(probs, &config.KeyError{Key: "oauth2.private_key", Err: err})
			}
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return c, nil
}

// Mode returns the configured mode.
func (c *Client) Mode() config.Mode { return c.mode }

// Scopes returns the scopes requested, in the order sent (Microsoft: the
// SMTP scope first, as the token is for the first scope's resource).
func (c *Client) Scopes() []string { return slices.Clone(c.scopes) }

// UsesRefreshToken reports whether the mode keeps a refresh token
// (interactive modes and microsoft365). The others obtain each token from
// their credentials.
func (c *Client) UsesRefreshToken() bool {
	return c.mode.Name != "microsoft-app" && c.mode.Name != "google-service-account"
}

// SupportsDeviceCode reports whether DeviceAuth can be used: in mode
// exchange, and in the generic modes when oauth2.device_auth_url is set.
// Google refuses Gmail scopes in the device flow, so gmail never offers it.
func (c *Client) SupportsDeviceCode() bool {
	switch c.mode.Name {
	case "exchange", "client-secret-post", "private-key-jwt":
		return c.cfg.DeviceAuthURL != ""
	}
	return false
}

// CredentialExpires is when the client certificate stops being valid
// (microsoft-app or private-key-jwt with oauth2.certificate); zero when
// there is none. Watch it like oauth2.secret_expires.
func (c *Client) CredentialExpires() time.Time { return c.credExpires }

// Obtain gets a token without a person: the password grant (microsoft365),
// client credentials (microsoft-app) or the JWT bearer grant
// (google-service-account). Interactive modes get their first token from
// Finish or DevicePoll.
func (c *Client) Obtain(ctx context.Context) (*oauth2.Token, error) {
	switch c.mode.Name {
	case "microsoft365":
		return c.passwordGrant(ctx)
	case "microsoft-app":
		return c.clientCredentials(ctx)
	case "google-service-account":
		return c.jwtBearer(ctx)
	}
	return nil, fmt.Errorf("obtain: mode %s needs a person to sign in once (mailagent authorize)", c.mode.Name)
}

// Refresh gets a new access token with refreshToken. The returned token
// carries the refresh token to keep from now on: a new one when the
// provider rotated it (Microsoft does on every refresh), else the one
// given. In modes without refresh tokens (microsoft-app,
// google-service-account) it obtains a new token, ignoring refreshToken;
// in microsoft365 without a refresh token it uses the password again.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	return c.RefreshGrant(ctx, refreshToken, "")
}

// RefreshGrant is Refresh for a grant obtained the way grant says
// (Tokens.Grant; "" for unknown). At Microsoft a device-code grant is a
// public client's: its refreshes carry neither client secret nor
// assertion, as Entra refuses them (AADSTS700025) even for an app that has
// a secret.
func (c *Client) RefreshGrant(ctx context.Context, refreshToken, grant string) (*oauth2.Token, error) {
	if !c.UsesRefreshToken() || (c.mode.Name == "microsoft365" && refreshToken == "") {
		return c.Obtain(ctx)
	}
	if refreshToken == "" {
		return nil, &ProviderError{Op: "refresh", Reauth: true, err: ErrNoRefreshToken,
			Fix: "there is no refresh token: authorise the box (mailagent authorize)"}
	}
	cl, ctx, err := c.begin(ctx, "refresh")
	if err != nil {
		return nil, err
	}
	cl.scrub.add(refreshToken)
	cl.public = c.publicGrant(grant)
	tok, err := cl.oauth2Config(c.redirectURL).TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	return cl.done(tok, err)
}

// publicGrant reports whether a grant obtained the way grant says is a
// public client's, which presents no client credentials: the device code
// grant at Microsoft (canonical/authd#1881, email-oauth2-proxy#363).
func (c *Client) publicGrant(grant string) bool {
	return c.mode.Microsoft && grant == GrantDeviceCode
}

// ObtainGrant is how Obtain gets its grant in this mode (Tokens.Grant);
// "" for the interactive modes.
func (c *Client) ObtainGrant() string {
	switch c.mode.Name {
	case "microsoft365":
		return GrantPassword
	case "microsoft-app":
		return GrantClientCredentials
	case "google-service-account":
		return GrantJWTBearer
	}
	return ""
}

// oauth2Config is the call's x/oauth2 configuration: a public call sends
// only client_id.
func (cl *tokenCall) oauth2Config(redirectURL string) *oauth2.Config {
	oc := cl.c.oauth2Config(redirectURL)
	if cl.public {
		oc.ClientSecret = ""
	}
	return oc
}

// oauth2Config is the x/oauth2 configuration of this client. The auth
// style is always explicit: auto-detection sends every failing request
// twice. With client assertions no secret travels, only client_id.
func (c *Client) oauth2Config(redirectURL string) *oauth2.Config {
	secret := c.cfg.ClientSecret.Reveal()
	if c.signer != nil {
		secret = ""
	}
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: secret,
		Endpoint: oauth2.Endpoint{
			AuthURL:       c.cfg.AuthURL,
			TokenURL:      c.cfg.TokenURL,
			DeviceAuthURL: c.cfg.DeviceAuthURL,
			AuthStyle:     oauth2.AuthStyleInParams,
		},
		RedirectURL: redirectURL,
		Scopes:      slices.Clone(c.scopes),
	}
}

// tokenCall is one operation: its HTTP client, what it sent (to keep out of
// errors) and the network error its transport saw.
type tokenCall struct {
	c      *Client
	op     string
	ctx    context.Context
	mu     sync.Mutex
	scrub  scrubber
	netErr error
	public bool          // a public client's request: no client secret or assertion
	skew   time.Duration // system clock minus the last answer's Date header
}

// begin checks the clock and returns a context whose HTTP client (the one
// x/oauth2 uses for every request) goes through this call's transport.
func (c *Client) begin(ctx context.Context, op string) (*tokenCall, context.Context, error) {
	cl := &tokenCall{c: c, op: op, ctx: ctx}
	cl.scrub.add(c.secrets...)
	if now := c.now(); !c.notBefore.IsZero() && now.Before(c.notBefore) {
		return nil, nil, &ProviderError{Op: op, Transient: true, err: ErrClockUnset,
			Fix: fmt.Sprintf("the system clock reads %s, before this build was made (%s): set the clock or check NTP, then try again",
				now.UTC().Format(time.DateOnly), c.notBefore.UTC().Format(time.DateOnly))}
	}
	hc := &http.Client{
		Transport: &tokenTransport{call: cl},
		Timeout:   c.timeout,
		// Never follow a redirect off the token endpoint: the form
		// carries secrets.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return cl, context.WithValue(ctx, oauth2.HTTPClient, hc), nil
}

// done turns the result of a token request into the call's answer.
func (cl *tokenCall) done(tok *oauth2.Token, err error) (*oauth2.Token, error) {
	if err != nil {
		return nil, cl.clockCheck(cl.c.classify(cl.op, err, cl.takeNetErr(), &cl.scrub))
	}
	if tok == nil || tok.AccessToken == "" {
		return nil, cl.c.classify(cl.op, errors.New("the answer has no access_token"), nil, &cl.scrub)
	}
	return tok, nil
}

// clockCheck puts a refusal of the grant or the client down to the clock
// when the token server's Date header is more than maxClockSkew from the
// system clock: signed assertions and token lifetimes cannot work then, and
// the clock is the fix to name first. Network trouble, 5xx and the like
// keep their own hint.
func (cl *tokenCall) clockCheck(e *ProviderError) *ProviderError {
	cl.mu.Lock()
	skew := cl.skew
	cl.mu.Unlock()
	if (skew > maxClockSkew || skew < -maxClockSkew) && (e.clock || e.Reauth || e.Code == "invalid_client") {
		e.ClockSkew = skew.Round(time.Second)
		e.forClock()
	}
	return e
}

// fail classifies err for this call.
func (cl *tokenCall) fail(err error) error {
	_, err = cl.done(nil, err)
	return err
}

// sensitiveForm are the form fields whose values never appear in errors.
var sensitiveForm = []string{"client_secret", "password", "refresh_token", "code", "code_verifier",
	"device_code", "assertion", "client_assertion"}

// tokenTransport is the RoundTripper of every request a Client makes. For a POST
// form it records the sensitive values (to keep them out of errors) and,
// when the client authenticates with assertions, adds a freshly signed
// client_assertion to every POST to the token endpoint — code exchange,
// refresh, device poll and client credentials alike — so no call site can
// forget it. It also gives requests made without a context (x/oauth2/jwt)
// the call's context, and records network errors, whose type x/oauth2/jwt
// loses.
type tokenTransport struct{ call *tokenCall }

func (t *tokenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	cl := t.call
	c := cl.c
	if req.Context().Done() == nil && cl.ctx.Done() != nil {
		req = req.WithContext(cl.ctx)
	}
	if req.Method == http.MethodPost && req.Body != nil && isForm(req.Header.Get("Content-Type")) {
		body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read request: %w", err)
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("parse request form: %w", err)
		}
		if cl.public {
			form.Del("client_secret")
			form.Del("client_assertion_type")
			form.Del("client_assertion")
			body = []byte(form.Encode())
		} else if c.signer != nil && c.isTokenURL(req.URL) {
			assertion, err := c.signer.sign()
			if err != nil {
				return nil, fmt.Errorf("sign client assertion: %w", err)
			}
			form.Del("client_secret")
			form.Set("client_assertion_type", assertionType)
			form.Set("client_assertion", assertion)
			body = []byte(form.Encode())
		}
		cl.mu.Lock()
		for _, k := range sensitiveForm {
			cl.scrub.add(form[k]...)
		}
		cl.mu.Unlock()
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	resp, err := c.base.RoundTrip(req)
	if err == nil {
		if d, derr := http.ParseTime(resp.Header.Get("Date")); derr == nil {
			cl.mu.Lock()
			cl.skew = c.now().Sub(d)
			cl.mu.Unlock()
		}
	}
	if err != nil {
		cl.mu.Lock()
		cl.netErr = &url.Error{Op: req.Method, URL: req.URL.Redacted(), Err: err}
		cl.mu.Unlock()
	}
	return resp, err
}

func isForm(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// isTokenURL reports whether u is the token endpoint.
func (c *Client) isTokenURL(u *url.URL) bool {
	t := c.tokenURL
	return t != nil && u.Scheme == t.Scheme && strings.EqualFold(u.Host, t.Host) && u.EscapedPath() == t.EscapedPath()
}

// smtpScopeFirst moves the Exchange Online scopes to the front: Microsoft
// issues the token for the first scope's resource, so a Graph scope ahead
// of SMTP.Send gives a token the SMTP server refuses.
func smtpScopeFirst(scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if isExchangeScope(s) {
			out = append(out, s)
		}
	}
	for _, s := range scopes {
		if !isExchangeScope(s) {
			out = append(out, s)
		}
	}
	return out
}

func isExchangeScope(s string) bool {
	s = strings.ToLower(s)
	return strings.HasPrefix(s, "https://outlook.office.com/") || strings.HasPrefix(s, "https://outlook.office365.com/")
}

// sharedTransport is the default transport, one for all clients so that
// they share idle connections: it dials with timeouts and trusts the system
// roots plus the fallback bundle (boxes often ship no roots).
var sharedTransport = sync.OnceValue(func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = dialTimeout
	t.ResponseHeaderTimeout = requestTimeout
	t.MaxIdleConns = 2
	t.IdleConnTimeout = 30 * time.Second
	t.TLSClientConfig = &tls.Config{RootCAs: roots.Pool(), MinVersion: tls.VersionTLS12}
	return t
})
