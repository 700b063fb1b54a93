package submit

import (
	"errors"
	"strings"

	"github.com/emersion/go-sasl"
)

// oauthBearer is RFC 7628 OAUTHBEARER with go-sasl's message, sent after the
// server's 334 rather than inline, and with the error challenge answered as
// §3.2.3 asks:
//
//	C: AUTH OAUTHBEARER
//	S: 334
//	C: base64("n,a=" mailbox "," ^A "host=" host ^A "port=" port ^A "auth=Bearer " token ^A ^A)
//	S: 235 (or 334 base64(JSON error); C: base64(^A) = "AQ=="; S: 535)
//
// go-sasl's own client would put the message on the AUTH line and answer
// the error challenge with a SASL abort, losing the server's final reply.
type oauthBearer struct {
	user, token string
	inner       sasl.Client
	message     []byte
	step        int
	challenge   []byte
}

func newOAuthBearer(user, token, host string, port int) sasl.Client {
	return &oauthBearer{
		user:  user,
		token: token,
		// a= is required by Dovecot; go-sasl does not escape it.
		inner: sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
			Username: escapeSASLName(user),
			Token:    token,
			Host:     host,
			Port:     port,
		}),
	}
}

func (a *oauthBearer) Start() (string, []byte, error) {
	if a.user == "" || strings.ContainsFunc(a.user, isControl) {
		return "", nil, errors.New("oauthbearer: user is empty or has control characters")
	}
	if a.token == "" || strings.ContainsFunc(a.token, isControl) {
		return "", nil, errors.New("oauthbearer: token is empty or has control characters")
	}
	mech, msg, err := a.inner.Start()
	if err != nil {
		return "", nil, err
	}
	a.message = msg
	return mech, nil, nil
}

func (a *oauthBearer) Next(challenge []byte) ([]byte, error) {
	a.step++
	switch a.step {
	case 1:
		return a.message, nil
	case 2:
		a.challenge = append([]byte(nil), challenge...)
		return []byte{0x01}, nil
	}
	return nil, sasl.ErrUnexpectedServerChallenge
}

func (a *oauthBearer) serverChallenge() []byte { return a.challenge }

// escapeSASLName escapes an authzid as RFC 5801 §4 asks: "=" as "=3D" and
// "," as "=2C".
func escapeSASLName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}
