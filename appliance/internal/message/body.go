package message

import (
	"bytes"
	"strings"
)

// maxQPLine is RFC 2045's limit for a quoted-printable line, CRLF excluded.
const maxQPLine = 76

// normalizeBody returns the body as it is encoded: invalid UTF-8 replaced,
// line ends as LF, and a final line end on a non-empty body.
func normalizeBody(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}

// writeBody writes the body quoted-printable with CRLF hard line breaks.
//
// The encoder is written out here rather than taken from
// mime/quotedprintable because it must also encode a '.' at the start of
// any output line, soft breaks included, as =2E: then no body line can be
// "." and end the SMTP DATA phase, dot-stuffing or not. Patching the
// stdlib writer's output would push lines past the 76-character limit.
//
// Literal: printable ASCII except '=', and space and TAB unless they end a
// line (a decoder drops trailing white space). Everything else, UTF-8
// included, is =XX.
func writeBody(b *bytes.Buffer, body string) {
	const hexDigits = "0123456789ABCDEF"
	body = normalizeBody(body)
	if body == "" {
		return
	}
	for line := range strings.SplitSeq(strings.TrimSuffix(body, "\n"), "\n") {
		n := 0 // characters on the current output line
		for i := 0; i < len(line); i++ {
			c := line[i]
			last := i == len(line)-1
			literal := c == '\t' || c >= ' ' && c <= '~' && c != '='
			if last && (c == ' ' || c == '\t') {
				literal = false
			}
			width := 3
			if literal {
				width = 1
			}
			// Leave room for the '=' of a soft line break unless this is
			// the last character of the line.
			room := maxQPLine - 1
			if last {
				room = maxQPLine
			}
			if n+width > room {
				b.WriteString("=\r\n")
				n = 0
			}
			if n == 0 && c == '.' {
				literal, width = false, 3
			}
			if literal {
				b.WriteByte(c)
			} else {
				b.WriteByte('=')
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&15])
			}
			n += width
		}
		b.WriteString("\r\n")
	}
}
