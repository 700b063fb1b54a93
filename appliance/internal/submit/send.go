package submit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"
)

// Reply is the server's final reply to DATA: the mail is queued.
type Reply struct {
	Code     int
	Enhanced string // "2.0.0", or "" if the server gave none
	Text     string
	QueueID  string // from Postfix's "Ok: queued as ABC123", else ""
}

func (r Reply) String() string {
	s := strconv.Itoa(r.Code)
	if r.Enhanced != "" {
		s += " " + r.Enhanced
	}
	if r.Text != "" {
		s += " " + r.Text
	}
	return s
}

// Send submits one mail. It may be called many times on one Client: a
// burst goes over one connection and one AUTH. msg is the RFC 5322 message
// with CRLF line ends; go-smtp dot-stuffs it.
//
// A refused mail gives an error wrapping the server's *smtp.SMTPError; the
// Client stays usable. Any other error leaves the Client broken: Close it
// and Dial again.
func (c *Client) Send(ctx context.Context, from string, to []string, msg []byte) (Reply, error) {
	switch {
	case c.closed:
		return Reply{}, errors.New("send: client is closed")
	case c.broken != nil:
		return Reply{}, fmt.Errorf("send: connection unusable after an earlier error: %w", c.broken)
	case len(to) == 0:
		return Reply{}, errors.New("send: no recipients")
	}
	if err := ctx.Err(); err != nil {
		return Reply{}, fmt.Errorf("send: %w", err)
	}
	// Refuse here what go-smtp would refuse before writing, so that it is
	// not taken for a broken connection.
	for _, a := range append([]string{from}, to...) {
		if strings.ContainsAny(a, "\r\n<>") {
			return Reply{}, fmt.Errorf("send: address %q has CR, LF or angle brackets", a)
		}
	}
	if !isASCII(from) || !allASCII(to) {
		if ok, _ := c.sc.Extension("SMTPUTF8"); !ok {
			return Reply{}, errors.New("send: non-ASCII address, and the server does not offer SMTPUTF8")
		}
	}
	stop := context.AfterFunc(ctx, func() { c.raw.Close() })
	r, err := c.send(from, to, msg)
	if !stop() {
		// The context ended as the mail was sent: the connection is closed,
		// but the reply, if any, stands.
		c.broken = context.Cause(ctx)
	}
	if err != nil {
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			c.broken = err
		}
		return Reply{}, ctxErr(ctx, err)
	}
	c.o.trace("sent", r.String())
	return r, nil
}

func (c *Client) send(from string, to []string, msg []byte) (Reply, error) {
	if c.dirty {
		// go-smtp says EHLO again after RSET, by itself.
		if err := c.sc.Reset(); err != nil {
			return Reply{}, opError{"rset", err}
		}
		c.dirty = false
	}
	var mo *smtp.MailOptions
	if !isASCII(from) || !allASCII(to) {
		mo = &smtp.MailOptions{UTF8: true}
	}
	if err := c.sc.Mail(from, mo); err != nil {
		c.dirty = true
		return Reply{}, opError{"mail from <" + from + ">", err}
	}
	for _, rcpt := range to {
		if err := c.sc.Rcpt(rcpt, nil); err != nil {
			c.dirty = true
			return Reply{}, opError{"rcpt to <" + rcpt + ">", err}
		}
	}
	w, err := c.sc.Data()
	if err != nil {
		c.dirty = true
		return Reply{}, opError{"data", err}
	}
	if _, err := w.Write(msg); err != nil {
		return Reply{}, opError{"data", err}
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		// The transaction is over either way.
		return Reply{}, opError{"data", err}
	}
	return parseReply(resp.StatusText), nil
}

// parseReply splits the text of a 250 reply to DATA into the enhanced code,
// the text and, when present, a Postfix queue id.
func parseReply(text string) Reply {
	r := Reply{Code: 250, Text: strings.Join(strings.Fields(text), " ")}
	if first, rest, _ := strings.Cut(r.Text, " "); isEnhancedCode(first) {
		r.Enhanced, r.Text = first, rest
	}
	const marker = "queued as " // Postfix's words, always lower case
	if i := strings.Index(r.Text, marker); i >= 0 {
		id, _, _ := strings.Cut(r.Text[i+len(marker):], " ")
		r.QueueID = strings.TrimRight(id, ".,;:)")
	}
	return r
}

// isEnhancedCode reports whether s is an RFC 3463 code such as "2.0.0".
func isEnhancedCode(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.Contains("245", parts[0]) {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func allASCII(ss []string) bool {
	for _, s := range ss {
		if !isASCII(s) {
			return false
		}
	}
	return true
}
