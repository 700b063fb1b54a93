package submit

import (
	"errors"
	"strings"

	"github.com/emersion/go-sasl"
)

const mechXOAuth2 = "XOAUTH2"

// xoauth2 is the client side of XOAUTH2, Google's SASL mechanism for OAuth 2.0
// bearer tokens, also used by Exchange Online
// (https://developers.google.com/gmail/imap/xoauth2-protocol):
//
//	C: AUTH XOAUTH2
//	S: 334
//	C: base64("user=" mailbox ^A "auth=Bearer " token ^A ^A)
//	S: 235 (or, Gmail: 334 base64(JSON error); C: empty line; S: 535)
//
// Start returns no initial response, so that go-smtp sends a bare AUTH line:
// a 2 KB token inline exceeds the line limit of Gmail (555 5.5.2) and
// Postfix, and RFC 4954 §4 forbids it.
type xoauth2 struct {
	user, token string
	step        int
	challenge   []byte
}

func newXOAuth2(user, token string) sasl.Client {
	return &xoauth2{user: user, token: token}
}

func (a *xoauth2) Start() (string, []byte, error) {
	if a.user == "" || strings.ContainsFunc(a.user, isControl) {
		return "", nil, errors.New("xoauth2: user is empty or has control characters")
	}
	if a.token == "" || strings.ContainsFunc(a.token, isControl) {
		return "", nil, errors.New("xoauth2: token is empty or has control characters")
	}
	return mechXOAuth2, nil, nil
}

func (a *xoauth2) Next(challenge []byte) ([]byte, error) {
	a.step++
	switch a.step {
	case 1:
		return []byte("user=" + a.user + "\x01auth=Bearer " + a.token + "\x01\x01"), nil
	case 2:
		// The server refused the token and says why in JSON. It waits for
		// an empty response before its final 535; a nil one would make
		// go-smtp end the exchange as a success.
		a.challenge = append([]byte(nil), challenge...)
		return []byte{}, nil
	}
	return nil, sasl.ErrUnexpectedServerChallenge
}

func (a *xoauth2) serverChallenge() []byte { return a.challenge }

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
