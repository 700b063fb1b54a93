// Package message renders the mails mailagent sends: RFC 5322 messages with
// RFC 2047 encoded display names and subjects, a UTF-8 quoted-printable
// (RFC 2045) text body, CRLF line ends and no line longer than 998 octets.
//
// Rendering is defensive. Nothing in the text of a subject, a display name,
// an extra header value or the body can add a header line or end the SMTP
// DATA phase early: line breaks and other control characters in header text
// become spaces, no body line starts with '.', and invalid UTF-8 is replaced
// by U+FFFD. Addresses are checked rather than fixed: they come from the
// configuration, and a bad one is an error.
package message

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Address is a mailbox: an optional display name and an address.
type Address struct {
	// Name is the display name; any text. Control characters become
	// spaces and a non-ASCII name is RFC 2047 encoded.
	Name string
	// Addr is local@domain in printable ASCII, at most 254 octets.
	Addr string
}

// Header is an extra header field, such as X-Mailagent-Severity.
type Header struct {
	// Key is the field name: 1 to 76 printable ASCII characters without
	// ':' and not one of the fields Bytes writes itself.
	Key string
	// Value is unstructured text, sanitised and encoded like Subject.
	Value string
}

// Message is one plain-text mail.
type Message struct {
	From Address
	To   []Address
	// Subject is any text. Runs of spaces and control characters (CR and
	// LF included) become one space, and leading and trailing spaces are
	// dropped. It is RFC 2047 encoded when it is not plain ASCII, and
	// folded when long.
	Subject string
	// Date is the Date header; zero means time.Now().
	Date time.Time
	// Body is any text. Line ends (CR, LF, CRLF) become CRLF and a body
	// that does not end with one gets a final CRLF.
	Body string
	// Host is the right-hand side of a generated Message-ID, for example
	// the device name. Characters other than letters, digits, '-' and '.'
	// become '-', and it is cut to 200 characters. Empty: the domain of From.Addr, else "localhost".
	Host string
	// Headers are extra header fields, written after the standard ones.
	Headers []Header
	// MessageID is the Message-ID header, angle brackets included. If it
	// is empty, a successful Bytes sets it to a new random
	// "<32 hex digits@host>", so the caller learns the ID and a message
	// rendered again for a retry keeps the same one.
	MessageID string

	// testOnlyRandom replaces crypto/rand as the source of Message-IDs.
	testOnlyRandom io.Reader
}

// Fields written by Bytes, in order; an extra header may not use these names.
var standardFields = []string{
	"Date", "From", "To", "Subject", "Message-ID", "MIME-Version",
	"Content-Type", "Content-Transfer-Encoding", "Auto-Submitted",
}

// Bytes renders m. It fails only on a bad address, a bad extra header key,
// a bad MessageID or no recipients; the error names the field. When
// m.MessageID is empty, Bytes fills it in (so Bytes is not safe for
// concurrent use on one Message).
func (m *Message) Bytes() ([]byte, error) {
	from, err := addressTokens(m.From, firstRoom("From"))
	if err != nil {
		return nil, fmt.Errorf("message: from address %q: %w", m.From.Addr, err)
	}
	if len(m.To) == 0 {
		return nil, errors.New("message: no recipients")
	}
	var to []string
	for i, a := range m.To {
		first := firstRoom("To")
		if i > 0 {
			first = maxWord
		}
		toks, err := addressTokens(a, first)
		if err != nil {
			return nil, fmt.Errorf("message: to address %q: %w", a.Addr, err)
		}
		if i < len(m.To)-1 {
			toks[len(toks)-1] += ","
		}
		to = append(to, toks...)
	}
	seen := make(map[string]bool)
	for _, f := range standardFields {
		seen[strings.ToLower(f)] = true
	}
	for _, h := range m.Headers {
		if err := checkKey(h.Key); err != nil {
			return nil, fmt.Errorf("message: header key %q: %w", h.Key, err)
		}
		k := strings.ToLower(h.Key)
		if seen[k] {
			return nil, fmt.Errorf("message: header key %q: already in the message", h.Key)
		}
		seen[k] = true
	}
	id := m.MessageID
	if id != "" {
		if err := checkID(id); err != nil {
			return nil, fmt.Errorf("message: message-id %q: %w", id, err)
		}
	} else {
		id, err = newID(m.testOnlyRandom, m.Host, m.From.Addr)
		if err != nil {
			return nil, fmt.Errorf("message: message-id: %w", err)
		}
	}
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}

	var b bytes.Buffer
	writeField(&b, "Date", []string{date.Format(time.RFC1123Z)})
	writeField(&b, "From", from)
	writeField(&b, "To", to)
	writeField(&b, "Subject", textTokens("Subject", m.Subject))
	writeField(&b, "Message-ID", []string{id})
	writeField(&b, "MIME-Version", []string{"1.0"})
	writeField(&b, "Content-Type", []string{"text/plain;", "charset=utf-8"})
	writeField(&b, "Content-Transfer-Encoding", []string{"quoted-printable"})
	writeField(&b, "Auto-Submitted", []string{"auto-generated"})
	for _, h := range m.Headers {
		writeField(&b, h.Key, textTokens(h.Key, h.Value))
	}
	b.WriteString("\r\n")
	writeBody(&b, m.Body)
	m.MessageID = id
	return b.Bytes(), nil
}

// newID returns "<random@host>" with 128 bits from crypto/rand (or r).
func newID(r io.Reader, host, from string) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var buf [16]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return "", err
	}
	h := cleanHost(host)
	if h == "" {
		h = cleanHost(from[strings.LastIndexByte(from, '@')+1:])
	}
	if h == "" {
		h = "localhost"
	}
	return "<" + hex.EncodeToString(buf[:]) + "@" + h + ">", nil
}

// maxHost keeps a generated Message-ID within the 250 characters checkID
// allows.
const maxHost = 200

// cleanHost turns s into a dot-atom of letters, digits and '-', at most
// maxHost characters.
func cleanHost(s string) string {
	var labels []string
	for l := range strings.SplitSeq(s, ".") {
		if l == "" {
			continue
		}
		labels = append(labels, strings.Map(func(r rune) rune {
			if r < 0x80 && (isAlnum(byte(r)) || r == '-') {
				return r
			}
			return '-'
		}, l))
	}
	h := strings.Join(labels, ".")
	if len(h) > maxHost {
		h = strings.TrimRight(h[:maxHost], ".")
	}
	return h
}

// checkID accepts "<left@right>" in printable ASCII without spaces.
func checkID(id string) error {
	if len(id) > 250 {
		return errors.New("longer than 250 characters")
	}
	if len(id) < 5 || id[0] != '<' || id[len(id)-1] != '>' {
		return errors.New("not of the form <id@host>")
	}
	inner := id[1 : len(id)-1]
	for i := 0; i < len(inner); i++ {
		if c := inner[i]; c <= ' ' || c > '~' || c == '<' || c == '>' {
			return fmt.Errorf("contains %q", c)
		}
	}
	if at := strings.IndexByte(inner, '@'); at <= 0 || at == len(inner)-1 || strings.Count(inner, "@") != 1 {
		return errors.New("not of the form <id@host>")
	}
	return nil
}

// checkKey accepts an RFC 5322 field name (printable ASCII but ':') of at
// most 76 characters, so the first line of the field stays short.
func checkKey(k string) error {
	if k == "" {
		return errors.New("empty")
	}
	if len(k) > 76 {
		return errors.New("longer than 76 characters")
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c > '~' || c == ':' {
			return fmt.Errorf("contains %q", c)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
