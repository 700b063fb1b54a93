package oauth

// Client credentials (RFC 6749 §4.4): mode microsoft-app, app-only
// SMTP.SendAsApp. No refresh token: each token comes from the credentials.

import (
	"context"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// clientCredentials gets an app-only token, authenticated by
// oauth2.client_secret in the body, or — when oauth2.private_key and
// oauth2.certificate are set — by a PS256 client assertion that the call
// transport adds.
func (c *Client) clientCredentials(ctx context.Context) (*oauth2.Token, error) {
	cl, ctx, err := c.begin(ctx, "client credentials")
	if err != nil {
		return nil, err
	}
	oc := c.oauth2Config("")
	cc := &clientcredentials.Config{
		ClientID:     oc.ClientID,
		ClientSecret: oc.ClientSecret,
		TokenURL:     oc.Endpoint.TokenURL,
		Scopes:       oc.Scopes,
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	tok, err := cc.Token(ctx)
	return cl.done(tok, err)
}
