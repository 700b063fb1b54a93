package oauth

// Device authorization grant (RFC 8628): mode exchange, and the generic
// modes when oauth2.device_auth_url is set. Google refuses Gmail scopes at
// its device endpoint (invalid_scope), so gmail uses the pasted address.

import (
	"context"
	"errors"
	"time"

	"golang.org/x/oauth2"
)

// Device flow limits.
const (
	// deviceDefaultLifetime bounds the polling when the provider gave no
	// expires_in.
	deviceDefaultLifetime = 15 * time.Minute
	// deviceMaxInterval caps the interval after network trouble.
	deviceMaxInterval = 60
	// deviceMaxRetries bounds restarts after transient failures.
	deviceMaxRetries = 10
)

// DeviceAuth starts the device flow: the answer carries the user code and
// the address (VerificationURI) to show, and Expiry. Modes without it
// (gmail: Google refuses Gmail scopes; the non-interactive modes) get an
// error wrapping ErrDeviceCodeUnsupported, before any request.
func (c *Client) DeviceAuth(ctx context.Context) (*oauth2.DeviceAuthResponse, error) {
	const op = "device authorization"
	if !c.SupportsDeviceCode() {
		e := &ProviderError{Op: op, err: ErrDeviceCodeUnsupported}
		switch {
		case c.mode.Name == "gmail":
			e.Fix = "Google refuses Gmail scopes in the device flow: open the authorisation address in a browser and paste the final address back (mailagent authorize does this)"
		case c.mode.Interactive:
			e.Fix = "set oauth2.device_auth_url to use a device code, or open the authorisation address in a browser and paste the final address back"
		default:
			e.Fix = "mode " + c.mode.Name + " needs no sign-in: its token is obtained directly"
		}
		return nil, e
	}
	cl, ctx, err := c.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	cl.public = c.publicGrant(GrantDeviceCode)
	da, err := cl.oauth2Config(c.redirectURL).DeviceAuth(ctx)
	if err != nil {
		return nil, cl.fail(err)
	}
	if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
		return nil, cl.fail(errors.New("the answer lacks device_code, user_code or verification_uri"))
	}
	return da, nil
}

// DevicePoll waits until the person has signed in with the code of da and
// returns the token. It polls at the provider's interval (5 s when none
// was given), adds 5 s for every slow_down, and stops at da.Expiry with an
// expired_token error (15 minutes when the provider gave no expiry).
// Network trouble and 5xx answers do not end the flow: polling resumes with
// a doubled interval, up to 10 times. A grant without a refresh token is
// an error wrapping ErrNoRefreshToken. At Microsoft the device code grant
// is a public client's: the poll sends client_id alone (the app needs
// "Allow public client flows"), and so do the grant's refreshes
// (RefreshGrant with GrantDeviceCode).
func (c *Client) DevicePoll(ctx context.Context, da *oauth2.DeviceAuthResponse) (*oauth2.Token, error) {
	const op = "device poll"
	if da == nil || da.DeviceCode == "" {
		return nil, &ProviderError{Op: op, err: errors.New("no device authorization was started"),
			Fix: "start the authorization again"}
	}
	cur := *da
	if cur.Expiry.IsZero() {
		cur.Expiry = time.Now().Add(deviceDefaultLifetime)
	}
	cl, pctx, err := c.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	cl.scrub.add(cur.DeviceCode)
	cl.public = c.publicGrant(GrantDeviceCode)
	oc := cl.oauth2Config(c.redirectURL)
	for retry := 0; ; retry++ {
		cl.resetNetErr()
		tok, err := oc.DeviceAccessToken(pctx, &cur)
		if err == nil {
			tok, err = cl.done(tok, nil)
			if err != nil {
				return nil, err
			}
			if tok.RefreshToken == "" {
				return nil, c.noRefreshToken(op)
			}
			return tok, nil
		}
		if ctx.Err() == nil && !time.Now().Before(cur.Expiry) {
			e := &ProviderError{Op: op, Code: "expired_token", Description: "the code expired before the sign-in was completed", Reauth: true}
			e.Fix = c.fix(e)
			return nil, e
		}
		pe := cl.c.classify(op, err, cl.takeNetErr(), &cl.scrub)
		if !pe.Transient || ctx.Err() != nil || retry >= deviceMaxRetries {
			return nil, pe
		}
		cur.Interval = min(max(cur.Interval, 5)*2, deviceMaxInterval)
	}
}

// resetNetErr forgets the network error of an earlier attempt.
func (cl *tokenCall) resetNetErr() {
	cl.mu.Lock()
	cl.netErr = nil
	cl.mu.Unlock()
}

// takeNetErr returns the network error the transport saw, if any.
func (cl *tokenCall) takeNetErr() error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.netErr
}
