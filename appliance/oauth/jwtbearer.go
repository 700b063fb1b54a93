package oauth

// JWT bearer grant (RFC 7523 §2.1): mode google-service-account, a
// service account with domain-wide delegation sending as oauth2.subject.
// x/oauth2/jwt, not x/oauth2/google, which pulls in the GCE metadata
// client.

import (
	"context"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"
)

// jwtBearer gets a token for oauth2.subject with an RS256 assertion signed
// by oauth2.private_key (kid = oauth2.private_key_id, iss =
// oauth2.client_email, lifetime one hour). x/oauth2/jwt leaves the error
// code of a refusal in the body only; classify reads it from there.
func (c *Client) jwtBearer(ctx context.Context) (*oauth2.Token, error) {
	cl, ctx, err := c.begin(ctx, "jwt bearer")
	if err != nil {
		return nil, err
	}
	jc := &jwt.Config{
		Email:        c.cfg.ClientEmail,
		PrivateKey:   []byte(c.cfg.PrivateKey.Reveal()),
		PrivateKeyID: c.cfg.PrivateKeyID,
		Subject:      c.cfg.Subject,
		Scopes:       c.Scopes(),
		TokenURL:     c.cfg.TokenURL,
	}
	tok, err := jc.TokenSource(ctx).Token()
	return cl.done(tok, err)
}
