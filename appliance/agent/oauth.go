package agent

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"mailagent/appliance/alarm"
	"mailagent/appliance/config"
	"mailagent/appliance/oauth"
)

// tokenState is the OAuth2 client and token source for one configuration.
type tokenState struct {
	mode, clientID string
	client         *oauth.Client
	source         *oauth.Source
}

// oauthFor returns the client and token source for c, making them anew
// when the mode or client changed. The caller must not hold a.mu.
func (a *Agent) oauthFor(c *config.Config) (*oauth.Client, *oauth.Source, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ts := a.oauth; ts != nil && ts.mode == c.OAuth2.Mode && ts.clientID == c.OAuth2.ClientID {
		return ts.client, ts.source, nil
	}
	cl, err := oauth.NewClient(oauth.ClientOptions{Config: c, HTTP: a.httpClient, Now: a.now, NotBefore: a.buildDate})
	if err != nil {
		return nil, nil, err
	}
	src, err := oauth.NewSource(oauth.SourceOptions{Path: a.TokensPath(), FS: a.fs, Grant: cl, Config: c, Now: a.now, Log: a.log})
	if err != nil {
		return nil, nil, err
	}
	a.oauth = &tokenState{mode: c.OAuth2.Mode, clientID: c.OAuth2.ClientID, client: cl, source: src}
	return cl, src, nil
}

// Interactive reports whether the configured mode needs a person to sign in.
func (a *Agent) Interactive() (config.Mode, error) {
	c := a.Config()
	m, ok := config.LookupMode(c.OAuth2.Mode)
	if p := config.ValidateOAuth2(&c).For("oauth2.mode"); !ok && len(p) > 0 {
		return m, p[0] // not set, or not a mode: the validator's words
	}
	return m, nil
}

// Grant is an authorisation-code grant begun by StartAuthorize: the
// address a person opens to sign in, and the redirect URI the provider
// sends the browser back to. FinishAuthorize completes it.
type Grant struct {
	URL, RedirectURL string
	pending          oauth.Pending // state and PKCE verifier
}

// StartAuthorize begins an authorisation-code grant.
func (a *Agent) StartAuthorize() (Grant, error) {
	c := a.Config()
	cl, _, err := a.oauthFor(&c)
	if err != nil {
		return Grant{}, err
	}
	u, p, err := cl.Start()
	if err != nil {
		return Grant{}, err
	}
	return Grant{URL: u, RedirectURL: p.RedirectURL, pending: p}, nil
}

// FinishAuthorize completes g from the address the browser was sent to
// (or its query), and stores the tokens.
func (a *Agent) FinishAuthorize(ctx context.Context, g Grant, redirected string) (string, error) {
	c := a.Config()
	cl, src, err := a.oauthFor(&c)
	if err != nil {
		return "", err
	}
	tok, err := cl.Finish(ctx, g.pending, redirected)
	if err != nil {
		src.AuthorizationFailed(ctx, err)
		return "", err
	}
	return a.authorized(ctx, src, &c, tok, oauth.GrantAuthorizationCode)
}

// DevicePrompt is what a person needs for a device-code sign-in: the
// address to open on any device, the code to enter there, and until when
// it works (zero when the provider did not say).
type DevicePrompt struct {
	URL, Code string
	Expiry    time.Time
}

// DeviceAuthorize runs the device-code grant; show is told the prompt.
func (a *Agent) DeviceAuthorize(ctx context.Context, show func(DevicePrompt)) (string, error) {
	c := a.Config()
	cl, src, err := a.oauthFor(&c)
	if err != nil {
		return "", err
	}
	da, err := cl.DeviceAuth(ctx)
	if err != nil {
		return "", err
	}
	show(DevicePrompt{URL: da.VerificationURI, Code: da.UserCode, Expiry: da.Expiry})
	tok, err := cl.DevicePoll(ctx, da)
	if err != nil {
		src.AuthorizationFailed(ctx, err)
		return "", err
	}
	return a.authorized(ctx, src, &c, tok, oauth.GrantDeviceCode)
}

// ObtainNow gets tokens at once for a mode that needs no person.
func (a *Agent) ObtainNow(ctx context.Context) (string, error) {
	c := a.Config()
	cl, src, err := a.oauthFor(&c)
	if err != nil {
		return "", err
	}
	tok, err := cl.Obtain(ctx)
	if err != nil {
		return "", err
	}
	return a.authorized(ctx, src, &c, tok, cl.ObtainGrant())
}

func (a *Agent) authorized(ctx context.Context, src *oauth.Source, c *config.Config, tok *oauth2.Token, grant string) (string, error) {
	account := c.SMTP.User
	if err := src.AuthorizedBy(ctx, tok, account, grant); err != nil {
		return "", err
	}
	a.log.Info("authorised", "mode", c.OAuth2.Mode, "account", account)
	return account, nil
}

// KeepAlive refreshes the grant every keepalive_interval while the agent
// runs, checking hourly, and watches the client secret's expiry. A dead
// grant found this way is reported like failing mail (status, syslog,
// attention indicator) before an alarm needs it.
func (a *Agent) KeepAlive(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		c := a.Config()
		if c.SMTP.Auth == "oauth2" && c.OAuth2.Mode != "" {
			if _, src, err := a.oauthFor(&c); err == nil {
				err := src.KeepAlive(ctx, c.Alarms.KeepaliveInterval.Duration)
				var re *oauth.ReauthError
				switch {
				case errors.As(err, &re):
					a.deliveryChanged(err)
				case err != nil:
					a.log.Warn("keep-alive refresh failed", "err", err)
				}
				a.watchSecret(&c, src)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// secretLevels are the days before the client secret's expiry at which a
// warning mail goes out, with its severity.
var secretLevels = []struct {
	days int
	sev  alarm.Severity
}{{1, alarm.Critical}, {7, alarm.Major}, {30, alarm.Warning}}

// watchSecret raises an alarm once when the client secret is 30, 7 and 1
// days from its expiry (oauth2.secret_expires); tokens.toml remembers which
// warning was given, so a restart does not repeat it.
func (a *Agent) watchSecret(c *config.Config, src *oauth.Source) {
	exp := c.OAuth2.SecretExpires
	if exp.IsZero() {
		return
	}
	days := daysLeft(exp.Time, a.now())
	level := 0
	var sev alarm.Severity
	for _, l := range secretLevels {
		if days <= l.days {
			level, sev = l.days, l.sev
			break
		}
	}
	given := src.SecretWarning()
	if level == 0 {
		if given != 0 { // a new secret with a later date: start over
			src.SetSecretWarning(0)
		}
		return
	}
	if given != 0 && given <= level {
		return
	}
	text := fmt.Sprintf("The OAuth2 client secret of mode %s expires on %s (in %d days). Create a new secret at the provider, then set oauth2.client_secret and oauth2.secret_expires.",
		c.OAuth2.Mode, exp.Format("2006-01-02"), days)
	if days <= 0 {
		text = fmt.Sprintf("The OAuth2 client secret of mode %s expired on %s. Create a new secret at the provider, then set oauth2.client_secret and oauth2.secret_expires.",
			c.OAuth2.Mode, exp.Format("2006-01-02"))
	}
	al := alarm.Alarm{Time: a.now(), Severity: sev, Code: "SECRET-EXPIRES", Source: "mailagent", Text: text}
	if err := a.Accept(context.Background(), al); err != nil {
		a.log.Warn("secret expiry warning not queued", "err", err)
		return
	}
	if err := src.SetSecretWarning(level); err != nil {
		a.log.Warn("secret expiry warning not recorded", "err", err)
	}
}

// ImportKinds are the files Import reads.
var ImportKinds = []string{"google-client", "google-service-account"}

// Import reads a provider's downloaded file (Google's client JSON or
// service-account key) into mailagent.toml, in one config.Update.
func (a *Agent) Import(kind string, data []byte) error {
	return config.UpdateFS(context.Background(), a.fs, a.ConfigPath(), func(_ *config.File, c *config.Config) error {
		switch kind {
		case "google-client":
			return oauth.ImportGoogleClient(c, data)
		case "google-service-account":
			return oauth.ImportGoogleServiceAccount(c, data)
		}
		return fmt.Errorf("cannot import %q (known: google-client, google-service-account)", kind)
	})
}

// PastedParams reads the parameters of the address a browser was sent back
// to (pasted whole, or its query): state, code or error.
func PastedParams(pasted string) (url.Values, error) { return oauth.RedirectParams(pasted) }

// ClockUnset says whether the system clock reads a time before the build
// date, which means it was never set: tokens, signed assertions and
// certificates cannot work until it is.
func (a *Agent) ClockUnset() (now time.Time, unset bool) {
	now = a.now()
	return now, !a.buildDate.IsZero() && now.Before(a.buildDate)
}
