package submit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// AuthError is a failed AUTH exchange. The server's reply, when there is
// one, is reachable with errors.As as a *smtp.SMTPError.
type AuthError struct {
	Mechanism string // PLAIN, LOGIN, XOAUTH2 or OAUTHBEARER
	User      string
	// Challenge is the server's decoded error challenge (XOAUTH2 at Gmail,
	// OAUTHBEARER), e.g. `status "400", scope "https://mail.google.com/"`.
	Challenge string
	Err       error
}

func (e *AuthError) Error() string {
	s := "auth " + e.Mechanism + " as " + e.User + ": " + describe(e.Err)
	if e.Challenge != "" {
		s += " (server challenge: " + e.Challenge + ")"
	}
	return s
}

func (e *AuthError) Unwrap() error { return e.Err }

// oauth2 reports whether the mechanism carries a token.
func (e *AuthError) oauth2() bool {
	return e.Mechanism == mechXOAuth2 || e.Mechanism == sasl.OAuthBearer
}

// mechError: the server offers no mechanism for the configured auth.
type mechError struct {
	auth    string
	offered []string
}

func (e *mechError) Error() string {
	if len(e.offered) == 0 {
		return fmt.Sprintf("auth: the server offers no AUTH mechanism; %s auth needs one", e.auth)
	}
	return fmt.Sprintf("auth: the server offers %s, none usable for %s auth", strings.Join(e.offered, " "), e.auth)
}

// opError names the step that failed and shows an SMTP reply with its codes.
type opError struct {
	op  string
	err error
}

func (e opError) Error() string { return e.op + ": " + describe(e.err) }
func (e opError) Unwrap() error { return e.err }

// describe shows a *smtp.SMTPError as the server said it: "535 5.7.8 text".
// go-smtp's own Error drops the enhanced code.
func describe(err error) string {
	se, ok := err.(*smtp.SMTPError)
	if !ok {
		return err.Error()
	}
	s := fmt.Sprint(se.Code)
	if ec := se.EnhancedCode; ec != smtp.EnhancedCodeNotSet && ec != smtp.NoEnhancedCode {
		s += fmt.Sprintf(" %d.%d.%d", ec[0], ec[1], ec[2])
	}
	if msg := strings.Join(strings.Fields(se.Message), " "); msg != "" {
		s += " " + msg
	}
	return s
}

func pick(offered []string, prefs ...string) string {
	for _, p := range prefs {
		if slices.Contains(offered, p) {
			return p
		}
	}
	return ""
}

func (c *Client) authenticate(ctx context.Context, offered []string) error {
	o := &c.o
	if o.Auth == "password" {
		mech := pick(offered, sasl.Plain, sasl.Login)
		if mech == "" {
			return &mechError{o.Auth, offered}
		}
		o.trace("auth", mech+" as "+o.User)
		var sc sasl.Client
		if mech == sasl.Plain {
			sc = sasl.NewPlainClient("", o.User, o.Password)
		} else {
			sc = sasl.NewLoginClient(o.User, o.Password)
		}
		if err := c.sc.Auth(sc); err != nil {
			return &AuthError{Mechanism: mech, User: o.User, Err: err}
		}
		return nil
	}

	mech := pick(offered, mechXOAuth2, sasl.OAuthBearer)
	if mech == "" {
		return &mechError{o.Auth, offered}
	}
	token, err := o.Tokens.Token(ctx)
	if err != nil {
		return fmt.Errorf("get oauth2 token: %w", err)
	}
	o.trace("auth", mech+" as "+o.User)
	err = c.authToken(mech, token)
	var se *smtp.SMTPError
	r, ok := o.Tokens.(Refresher)
	if err == nil || !ok || !errors.As(err, &se) || se.Code != 535 {
		return err
	}
	fresh, rerr := r.Refresh(ctx, token)
	if rerr != nil {
		return fmt.Errorf("%w; refresh after refusal: %w", err, rerr)
	}
	if fresh == "" || fresh == token {
		return err
	}
	o.trace("auth", mech+" as "+o.User+", again with a refreshed token")
	return c.authToken(mech, fresh)
}

func (c *Client) authToken(mech, token string) error {
	var sc sasl.Client
	if mech == mechXOAuth2 {
		sc = newXOAuth2(c.o.User, token)
	} else {
		sc = newOAuthBearer(c.o.User, token, c.o.Host, c.o.Port)
	}
	err := c.sc.Auth(sc)
	if err == nil {
		return nil
	}
	ae := &AuthError{Mechanism: mech, User: c.o.User, Err: err}
	if ch, ok := sc.(interface{ serverChallenge() []byte }); ok {
		ae.Challenge = summarizeChallenge(ch.serverChallenge())
	}
	return ae
}

// summarizeChallenge shows the JSON error challenge of XOAUTH2 and
// OAUTHBEARER ({"status","schemes","scope"}), or the printable part of
// anything else, shortened.
func summarizeChallenge(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var e sasl.OAuthBearerError
	if json.Unmarshal(b, &e) == nil && (e.Status != "" || e.Scope != "") {
		var parts []string
		if e.Status != "" {
			parts = append(parts, fmt.Sprintf("status %q", e.Status))
		}
		if e.Scope != "" {
			parts = append(parts, fmt.Sprintf("scope %q", e.Scope))
		}
		return strings.Join(parts, ", ")
	}
	if len(b) > 200 {
		b = b[:200]
	}
	return fmt.Sprintf("%q", b)
}
