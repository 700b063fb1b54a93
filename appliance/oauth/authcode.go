package oauth

// Authorisation code grant with PKCE S256 and a random state: modes
// exchange, gmail, client-secret-post and private-key-jwt.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Pending is what must be kept between Start and Finish. Verifier is a
// secret of the box: keep it in memory only and never show it.
type Pending struct {
	// State is the random state sent to the provider, checked on return.
	State string
	// Verifier is the PKCE code verifier.
	Verifier string
	// RedirectURL is the redirect URI sent; the exchange repeats it.
	RedirectURL string
	// Created is when Start ran.
	Created time.Time
}

// MaxPending is how long a started authorisation can be finished.
const MaxPending = 30 * time.Minute

// Start begins an interactive authorisation: it returns the address to
// open in a browser and what Finish needs. The redirect URI is
// oauth2.redirect_url, else http.base_url + "/auth.htm".
//
// Microsoft and Google get x/oauth2's URL (client_id, redirect_uri,
// response_type=code, scope, state, code_challenge, login_hint; Gmail adds
// access_type=offline and prompt=consent); a parameter an oauth2.auth_url
// override already carries is sent once, with the override's value (state
// and code_challenge(_method) excepted). The generic modes keep
// oauth2.auth_url and its own query as written and append, in this order,
// response_type=code, prompt=consent, login_hint, redirect_uri, client_id,
// scope (only when oauth2.scopes is set), state, code_challenge and
// code_challenge_method=S256; a parameter the auth_url already carries is
// not repeated, except state and code_challenge(_method), which are always
// the agent's own (any in auth_url are dropped).
func (c *Client) Start() (authURL string, p Pending, err error) {
	if !c.mode.Interactive {
		return "", Pending{}, fmt.Errorf("start authorization: mode %s needs no sign-in", c.mode.Name)
	}
	if c.redirectURL == "" {
		return "", Pending{}, errors.New("start authorization: oauth2.redirect_url is not set (nor http.base_url): set it to the redirect URI registered at the provider")
	}
	p = Pending{State: rand.Text(), Verifier: oauth2.GenerateVerifier(), RedirectURL: c.redirectURL, Created: c.now()}
	switch c.mode.Name {
	case "client-secret-post", "private-key-jwt":
		authURL, err = c.genericAuthURL(p)
		if err != nil {
			return "", Pending{}, err
		}
	default:
		opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(p.Verifier)}
		if c.cfg.LoginHint != "" {
			opts = append(opts, oauth2.SetAuthURLParam("login_hint", c.cfg.LoginHint))
		}
		if c.mode.Name == "gmail" {
			opts = append(opts, oauth2.AccessTypeOffline, oauth2.ApprovalForce)
		}
		authURL, err = mergeAuthQuery(c.oauth2Config(p.RedirectURL).AuthCodeURL(p.State, opts...))
		if err != nil {
			return "", Pending{}, err
		}
	}
	return authURL, p, nil
}

// mergeAuthQuery makes every parameter of an authorisation address appear
// once. x/oauth2 appends its parameters to an oauth2.auth_url override's
// own query, so an override carrying access_type or prompt (or any other
// parameter mailagent sets) would send it twice, which the providers
// refuse (RFC 6749 §3.1: request parameters MUST NOT be included more than
// once; Google answers 400 invalid_request). As in the generic modes the
// override's value is kept, except for state and code_challenge(_method),
// which are always mailagent's own (x/oauth2 puts them after the
// override's query).
func mergeAuthQuery(authURL string) (string, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", fmt.Errorf("start authorization: oauth2.auth_url: %w", err)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", fmt.Errorf("start authorization: oauth2.auth_url has a query that does not parse: %w", err)
	}
	own := map[string]bool{"state": true, "code_challenge": true, "code_challenge_method": true}
	for k, vs := range q {
		switch {
		case len(vs) < 2:
		case own[k]:
			q[k] = vs[len(vs)-1:]
		default:
			q[k] = vs[:1]
		}
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// genericAuthURL appends the agent's parameters to oauth2.auth_url.
func (c *Client) genericAuthURL(p Pending) (string, error) {
	base, query, _ := strings.Cut(c.cfg.AuthURL, "?")
	base, frag, hasFrag := strings.Cut(base, "#")
	if hasFrag {
		// A fragment before the query makes no sense; keep the rule simple.
		return "", fmt.Errorf("start authorization: oauth2.auth_url %q has a fragment (#%s)", c.cfg.AuthURL, frag)
	}
	own := map[string]bool{"state": true, "code_challenge": true, "code_challenge_method": true}
	var kept []string
	has := map[string]bool{}
	for part := range strings.SplitSeq(query, "&") {
		if part == "" {
			continue
		}
		k, _, _ := strings.Cut(part, "=")
		if uk, err := url.QueryUnescape(k); err == nil {
			k = uk
		}
		if own[k] {
			continue
		}
		has[k] = true
		kept = append(kept, part)
	}
	add := func(k, v string) {
		if v == "" || (has[k] && !own[k]) {
			return
		}
		kept = append(kept, url.QueryEscape(k)+"="+url.QueryEscape(v))
	}
	add("response_type", "code")
	add("prompt", "consent")
	add("login_hint", c.cfg.LoginHint)
	add("redirect_uri", p.RedirectURL)
	add("client_id", c.cfg.ClientID)
	add("scope", strings.Join(c.scopes, " "))
	add("state", p.State)
	add("code_challenge", oauth2.S256ChallengeFromVerifier(p.Verifier))
	add("code_challenge_method", "S256")
	return base + "?" + strings.Join(kept, "&"), nil
}

// Finish completes an interactive authorisation from the address the
// browser was sent back to: the whole address from the browser bar, or
// only its query (what auth.htm received). It checks the state in
// constant time, turns an error answer (error=access_denied&…) into a
// *ProviderError with a hint, and exchanges the code with the PKCE
// verifier. A grant without a refresh token is an error wrapping
// ErrNoRefreshToken, never a success.
func (c *Client) Finish(ctx context.Context, p Pending, redirected string) (*oauth2.Token, error) {
	const op = "authorization"
	params, err := RedirectParams(redirected)
	if err != nil {
		return nil, &ProviderError{Op: op, err: err,
			Fix: "paste the whole address from the browser's address bar after signing in"}
	}
	state := params.Get("state")
	switch {
	case p.State == "" || p.Verifier == "":
		return nil, &ProviderError{Op: op, err: errors.New("no authorization was started"),
			Fix: "start the authorization again (mailagent authorize, or Authorise on the page)"}
	case state == "" && params.Get("error") == "":
		return nil, &ProviderError{Op: op, err: errors.New("the address has no state parameter"),
			Fix: "paste the whole address from the browser's address bar after signing in"}
	case state != "" && subtle.ConstantTimeCompare([]byte(state), []byte(p.State)) != 1:
		return nil, &ProviderError{Op: op, err: errors.New("the state does not match the authorization that was started"),
			Fix: "the address belongs to another or an older attempt: start the authorization again and use only its address"}
	case c.now().Sub(p.Created) > MaxPending:
		return nil, &ProviderError{Op: op, err: fmt.Errorf("the authorization was started more than %v ago", MaxPending),
			Fix: "start the authorization again and finish it within 30 minutes"}
	}
	if code := params.Get("error"); code != "" {
		e := &ProviderError{Op: op, Code: oneLine(code, 100), Description: oneLine(params.Get("error_description"), 400),
			Reauth: reauthCodes[code], Transient: transientCodes[code]}
		e.Fix = c.fix(e)
		return nil, e
	}
	code := params.Get("code")
	if code == "" {
		return nil, &ProviderError{Op: op, err: errors.New("the address has no code parameter"),
			Fix: "paste the whole address from the browser's address bar after signing in"}
	}
	cl, ctx, err := c.begin(ctx, "exchange")
	if err != nil {
		return nil, err
	}
	cl.scrub.add(code, p.Verifier)
	tok, err := c.oauth2Config(p.RedirectURL).Exchange(ctx, code, oauth2.VerifierOption(p.Verifier))
	tok, err = cl.done(tok, err)
	if err != nil {
		return nil, err
	}
	if tok.RefreshToken == "" {
		return nil, c.noRefreshToken("exchange")
	}
	return tok, nil
}

// RedirectParams reads the parameters of a redirect address pasted back:
// a whole URL (query, or fragment when the query has neither code nor
// error), or a bare query string with or without its leading "?". Its
// errors never quote the address, which carries the code.
func RedirectParams(s string) (url.Values, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("the address is empty")
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return nil, errors.New("the address does not parse as a URL")
		}
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return nil, errors.New("the address's query does not parse")
		}
		if q.Get("code") == "" && q.Get("error") == "" && u.Fragment != "" {
			if fq, err := url.ParseQuery(u.Fragment); err == nil {
				q = fq
			}
		}
		return q, nil
	}
	q, err := url.ParseQuery(strings.TrimLeft(s, "?#"))
	if err != nil {
		return nil, errors.New("the query does not parse")
	}
	return q, nil
}

// noRefreshToken is the error of an interactive grant without a refresh
// token, with the provider's fix.
func (c *Client) noRefreshToken(op string) error {
	fix := "the provider sent no refresh token: allow refresh tokens for the client and request offline access (often the scope offline_access in oauth2.scopes or oauth2.auth_url), then authorise again"
	switch {
	case c.mode.Name == "gmail":
		fix = "Google sends a refresh token only with access_type=offline and prompt=consent (mailagent sends both unless oauth2.auth_url was changed): remove the app's access at https://myaccount.google.com/permissions, then authorise again"
	case c.mode.Microsoft:
		fix = "Microsoft sends a refresh token only with the scope offline_access: add it to oauth2.scopes (or unset oauth2.scopes for the default), then authorise again"
	}
	return &ProviderError{Op: op, err: ErrNoRefreshToken, Fix: fix}
}
