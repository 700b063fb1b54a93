package alarm

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The parsers share these rules for what comes from outside the box:
// text may hold newlines and tabs, every other control character goes;
// source and detail values are one line; a code is one word. Formats we do
// not control (syslog, Alertmanager) are cut to the model's limits; the
// formats made for mailagent (JSON, form) are refused when too long, so the
// sender learns of it.

// ellipsis marks a value that was cut.
const ellipsis = "…"

// cleanLine makes s valid UTF-8 on one line: control characters (and
// newlines) become spaces, surrounding space is trimmed.
func cleanLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// cleanText makes s valid UTF-8 text: CR LF and lone CR become LF, tabs and
// newlines stay, other control characters go; trailing space is trimmed.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\r':
			return '\n'
		case r == '\n' || r == '\t':
			return r
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
	return strings.TrimRightFunc(s, unicode.IsSpace)
}

// cleanCode makes s a code Validate accepts: one word of at most MaxCode
// bytes, spaces and control characters replaced by '_'. It returns fallback
// when nothing is left.
func cleanCode(s, fallback string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.TrimSpace(s)
	s = strings.Map(func(r rune) rune {
		if r <= ' ' || unicode.IsControl(r) || unicode.IsSpace(r) {
			return '_'
		}
		return r
	}, s)
	s = cut(s, MaxCode, "")
	if s == "" {
		return fallback
	}
	return s
}

// cut shortens s to at most max bytes on a rune boundary; when it cuts, mark
// is put at the end (within max).
func cut(s string, max int, mark string) string {
	if len(s) <= max {
		return s
	}
	if len(mark) > max {
		mark = ""
	}
	n := max - len(mark)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + mark
}

// checkCode reports why s cannot be a code, for the formats that refuse
// rather than repair.
func checkCode(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("missing")
	case !utf8.ValidString(s):
		return fmt.Errorf("not valid UTF-8")
	case len(s) > MaxCode:
		return fmt.Errorf("longer than %d bytes", MaxCode)
	case strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || unicode.IsControl(r) || unicode.IsSpace(r) }):
		return fmt.Errorf("%q contains spaces or control characters", s)
	}
	return nil
}

// details collects an alarm's details within the model's limits. Strict
// collectors refuse what does not fit; lenient ones cut long values and,
// once MaxDetails is reached, keep one last detail saying how many were
// left out.
type details struct {
	strict  bool
	list    []Detail
	omitted int
}

// omittedKey names the detail that counts the details left out.
const omittedKey = "omitted"

// add adds key=value (cleaned to one line each). A detail with an empty key
// is an error when strict and dropped otherwise.
func (d *details) add(key, value string) error {
	key, value = cleanLine(key), cleanLine(value)
	if key == "" {
		if d.strict {
			return fmt.Errorf("key is empty")
		}
		return nil
	}
	if len(key)+len(value) > MaxDetail {
		if d.strict {
			return fmt.Errorf("%q is longer than %d bytes", key, MaxDetail)
		}
		key = cut(key, MaxDetail/4, ellipsis)
		value = cut(value, MaxDetail-len(key), ellipsis)
	}
	if len(d.list) >= MaxDetails {
		if d.strict {
			return fmt.Errorf("more than %d details", MaxDetails)
		}
		d.omitted++
		return nil
	}
	d.list = append(d.list, Detail{Key: key, Value: value})
	return nil
}

// result returns the details; a lenient collector that left some out
// replaces its last detail by one that says how many.
func (d *details) result() []Detail {
	if d.omitted > 0 && len(d.list) > 0 {
		d.list[len(d.list)-1] = Detail{Key: omittedKey, Value: fmt.Sprintf("%d more details", d.omitted+1)}
		d.omitted = 0
	}
	return d.list
}

// parseTime reads an RFC 3339 time. It refuses times outside the years 0 to
// 9999 in UTC, which could not be written as RFC 3339 again (the spool and
// the local socket do), and reads Go's zero time ("0001-01-01T00:00:00Z",
// what Alertmanager sends as endsAt of a firing alert) as unset.
func parseTime(s string) (t time.Time, set bool, err error) {
	t, err = time.Parse(time.RFC3339Nano, s)
	switch {
	case err != nil:
		return time.Time{}, false, fmt.Errorf("%q is not an RFC 3339 time", cut(s, 40, ellipsis))
	case !writableTime(t):
		return time.Time{}, false, fmt.Errorf("%q is outside the years 0 to 9999", s)
	}
	return t, !t.IsZero(), nil
}

// writableTime says whether t can be written in RFC 3339 in UTC.
func writableTime(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 0 && y <= 9999
}
