package oauth

// Resource-owner password credentials (RFC 6749 §4.3): mode microsoft365.
// Legacy: RFC 9700 forbids it and multi-factor authentication blocks it;
// microsoft-app is the way forward.

import (
	"context"

	"golang.org/x/oauth2"
)

// passwordGrant gets a token with oauth2.username and oauth2.password
// (and oauth2.client_secret, when set, in the body). NewClient has already
// refused tenant common and consumers, which Microsoft refuses for this
// grant (AADSTS9001023).
func (c *Client) passwordGrant(ctx context.Context) (*oauth2.Token, error) {
	cl, ctx, err := c.begin(ctx, "password grant")
	if err != nil {
		return nil, err
	}
	tok, err := c.oauth2Config(c.redirectURL).PasswordCredentialsToken(ctx, c.cfg.Username, c.cfg.Password.Reveal())
	return cl.done(tok, err)
}
