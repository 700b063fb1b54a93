package alarm

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ParseSyslog reads one syslog message, RFC 5424 or RFC 3164, as a UDP
// datagram or a TCP frame (see SyslogFrames) carries it. received is when it
// arrived: the time of a message without one, and where the year and zone
// of an RFC 3164 time stamp come from.
//
// RFC 5424, https://www.rfc-editor.org/rfc/rfc5424#section-6:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]
//
// Each SD-PARAM becomes a detail "SD-ID.PARAM-NAME" with the escapes \" \\
// and \] undone (other backslashes are kept, as §6.3.3 asks), except the
// timeQuality element, which tells about the sender's clock, not the alarm.
// A UTF-8 BOM before MSG is dropped. Where STRUCTURED-DATA is neither "-"
// nor an element, the rest is taken as MSG.
//
// RFC 3164, https://www.rfc-editor.org/rfc/rfc3164#section-4.1, as senders
// write it:
//
//	<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG
//
// also without HOSTNAME, without a time stamp, with a year or fractional
// seconds ("Mmm dd yyyy hh:mm:ss.000"), or with an RFC 3339 time stamp
// (rsyslog). A message of bytes that are not UTF-8 is read as Latin-1, as
// old devices send it (RFC 5424 messages with a BOM excepted).
//
// The alarm: Code is MSGID if there is one, else APP-NAME or TAG, else
// "syslog"; Source is HOSTNAME (empty when the message has none: the
// listener knows the peer); Text is MSG. The detail "priority" keeps the
// facility and syslog severity ("daemon.notice"); "app" keeps APP-NAME when
// MSGID is the code. Severity:
//
//	emerg, alert, crit → critical
//	err                → major
//	warning            → warning
//	notice, info, debug → info
//
// (notice is below warning, and minor is above warning, so notice is info.)
// Parts beyond the model's limits are cut, extra details counted in an
// "omitted" detail. An error names the part that cannot be read.
func ParseSyslog(msg []byte, received time.Time) (Alarm, error) {
	m, err := parseSyslog(msg, received)
	if err != nil {
		return Alarm{}, fmt.Errorf("parse syslog: %w", err)
	}
	return m.alarm(), nil
}

// syslogMsg is a message taken apart.
type syslogMsg struct {
	pri        int
	time       time.Time
	host, app  string
	msgid      string
	sd         [][2]string
	text       []byte
	textIsUTF8 bool // a BOM said so
}

const maxPRI = 191

var facilityNames = [...]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

var syslogSeverityNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// syslogSeverity maps a syslog severity (0-7) to the model's.
func syslogSeverity(s int) Severity {
	switch {
	case s <= 2:
		return Critical
	case s == 3:
		return Major
	case s == 4:
		return Warning
	}
	return Info
}

func parseSyslog(msg []byte, received time.Time) (syslogMsg, error) {
	b := bytes.TrimRight(msg, "\r\n\x00")
	b = bytes.TrimLeft(b, " \t\r\n\x00")
	if len(b) == 0 {
		return syslogMsg{}, fmt.Errorf("message is empty")
	}
	pri, rest, err := syslogPRI(b)
	if err != nil {
		return syslogMsg{}, err
	}
	var m syslogMsg
	if bytes.HasPrefix(rest, []byte("1 ")) {
		m, err = parse5424(rest[2:], received)
	} else {
		m = parse3164(rest, received)
	}
	m.pri = pri
	return m, err
}

// syslogPRI reads "<PRI>".
func syslogPRI(b []byte) (int, []byte, error) {
	if b[0] != '<' {
		return 0, nil, fmt.Errorf("priority: the message does not start with <PRI>")
	}
	end := bytes.IndexByte(b[:min(len(b), 6)], '>')
	if end < 2 {
		return 0, nil, fmt.Errorf("priority: %q is not <0> to <%d>", b[:min(len(b), 8)], maxPRI)
	}
	digits := string(b[1:end])
	pri, err := strconv.Atoi(digits)
	if err != nil || pri < 0 || pri > maxPRI || digits[0] == '+' || digits[0] == '-' {
		return 0, nil, fmt.Errorf("priority: %q is not <0> to <%d>", b[:end+1], maxPRI)
	}
	return pri, b[end+1:], nil
}

// parse5424 reads what follows "<PRI>1 ".
func parse5424(b []byte, received time.Time) (syslogMsg, error) {
	m := syslogMsg{time: received}
	var fields [5]string
	for i, name := range [...]string{"timestamp", "hostname", "app-name", "procid", "msgid"} {
		sp := bytes.IndexByte(b, ' ')
		switch {
		case len(b) == 0:
			return syslogMsg{}, fmt.Errorf("%s: missing", name)
		case sp < 0:
			sp = len(b) // the message ends here
		}
		if sp == 0 {
			return syslogMsg{}, fmt.Errorf("%s: empty (two spaces)", name)
		}
		fields[i] = string(b[:sp])
		b = b[min(sp+1, len(b)):]
	}
	nil5424 := func(s string) string {
		if s == "-" {
			return ""
		}
		return s
	}
	if ts := fields[0]; ts != "-" {
		t, set, err := parseTime(ts)
		if err != nil {
			return syslogMsg{}, fmt.Errorf("timestamp: %w", err)
		}
		if set {
			m.time = t
		}
	}
	m.host, m.app, m.msgid = nil5424(fields[1]), nil5424(fields[2]), nil5424(fields[4])

	switch {
	case len(b) == 0:
	case b[0] == '-' && (len(b) == 1 || b[1] == ' '):
		b = b[min(2, len(b)):]
	case b[0] == '[':
		n, err := m.structuredData(b)
		if err != nil {
			return syslogMsg{}, err
		}
		b = b[n:]
		if len(b) > 0 && b[0] != ' ' {
			return syslogMsg{}, fmt.Errorf("structured data: %q after the last element", cut(string(b), 16, ellipsis))
		}
		b = bytes.TrimPrefix(b, []byte(" "))
	default:
		// Not structured data: a sender that left out the "-". Keep it as
		// the message rather than lose the alarm.
	}
	if bom := []byte("\xEF\xBB\xBF"); bytes.HasPrefix(b, bom) {
		b, m.textIsUTF8 = b[len(bom):], true
	}
	m.text = b
	return m, nil
}

// structuredData reads SD-ELEMENTs from the start of b and says how many
// bytes they took.
func (m *syslogMsg) structuredData(b []byte) (int, error) {
	i := 0
	for n := 1; i < len(b) && b[i] == '['; n++ {
		i++
		start := i
		for i < len(b) && sdNameByte(b[i]) {
			i++
		}
		id := string(b[start:i])
		if id == "" {
			return 0, fmt.Errorf("structured data: element %d has no SD-ID", n)
		}
		for i < len(b) && b[i] == ' ' {
			i++
			start := i
			for i < len(b) && sdNameByte(b[i]) {
				i++
			}
			name := string(b[start:i])
			if name == "" || i+1 >= len(b) || b[i] != '=' || b[i+1] != '"' {
				return 0, fmt.Errorf("structured data: element %q: a parameter is not name=\"value\"", id)
			}
			i += 2
			var v strings.Builder
			closed := false
			for i < len(b) && !closed {
				switch c := b[i]; {
				case c == '\\' && i+1 < len(b) && (b[i+1] == '"' || b[i+1] == '\\' || b[i+1] == ']'):
					v.WriteByte(b[i+1])
					i += 2
				case c == '"':
					closed = true
					i++
				default:
					v.WriteByte(c)
					i++
				}
			}
			if !closed {
				return 0, fmt.Errorf("structured data: element %q: the value of %q has no closing quote", id, name)
			}
			if id != "timeQuality" {
				m.sd = append(m.sd, [2]string{id + "." + name, v.String()})
			}
		}
		if i >= len(b) || b[i] != ']' {
			return 0, fmt.Errorf("structured data: element %q is not closed by ]", id)
		}
		i++
	}
	return i, nil
}

// sdNameByte says whether c may be in an SD-NAME: printable US-ASCII except
// '=', SP, ']' and '"' (RFC 5424 §6.3).
func sdNameByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '=' && c != ']' && c != '"'
}

// parse3164 reads what follows "<PRI>" in the BSD format. Everything is
// optional, so it cannot fail: what is not a time stamp, host or tag is the
// message.
func parse3164(b []byte, received time.Time) syslogMsg {
	m := syslogMsg{time: received}
	t, rest, ok := parse3164Time(b, received)
	if ok {
		m.time = t
		b = bytes.TrimLeft(rest, " ")
		// HOSTNAME, unless the first word is already the tag (a sender
		// writing to its local socket leaves the host out).
		if sp := bytes.IndexByte(b, ' '); sp > 0 {
			w := b[:sp]
			if w[len(w)-1] != ':' && !bytes.ContainsAny(w, "[]") {
				m.host = string(w)
				b = b[sp+1:]
			}
		}
	}
	if tag, rest, ok := syslogTag(b); ok {
		m.app, b = tag, rest
	}
	m.text = b
	return m
}

// syslogTag reads "TAG: " or "TAG[PID]: " from the start of b.
func syslogTag(b []byte) (tag string, rest []byte, ok bool) {
	i := 0
	for i < len(b) && i <= 64 && b[i] > ' ' && b[i] != ':' && b[i] != '[' {
		i++
	}
	if i == 0 || i == len(b) {
		return "", nil, false
	}
	tag, j := string(b[:i]), i
	if b[j] == '[' {
		end := bytes.IndexByte(b[j:min(len(b), j+34)], ']')
		if end < 0 {
			return "", nil, false
		}
		j += end + 1
		if j == len(b) || b[j] == ' ' {
			// "tag[123] message": accepted without the colon.
			return tag, bytes.TrimPrefix(b[j:], []byte(" ")), true
		}
	}
	if b[j] != ':' {
		return "", nil, false
	}
	return tag, bytes.TrimPrefix(b[j+1:], []byte(" ")), true
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// parse3164Time reads a time stamp from the start of b: "Mmm dd hh:mm:ss",
// with an optional year before the time and fractional seconds, or an RFC
// 3339 time. A time without a year gets the year that puts it nearest to
// received, in received's location.
func parse3164Time(b []byte, received time.Time) (time.Time, []byte, bool) {
	b = bytes.TrimLeft(b, "*.") // Cisco marks unsynchronised clocks so
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		sp := bytes.IndexByte(b, ' ')
		if sp < 0 {
			return time.Time{}, nil, false
		}
		t, set, err := parseTime(string(b[:sp]))
		if err != nil || !set {
			return time.Time{}, nil, false
		}
		return t, b[sp:], true
	}
	if len(b) < 4 || b[3] != ' ' {
		return time.Time{}, nil, false
	}
	mon := 0
	for i, name := range months {
		if string(b[:3]) == name {
			mon = i + 1
		}
	}
	if mon == 0 {
		return time.Time{}, nil, false
	}
	window := min(len(b), 40)
	s := strings.TrimLeft(string(b[4:window]), " ")
	day, s, ok := number(s, 1, 2)
	if !ok || day < 1 || day > 31 || !strings.HasPrefix(s, " ") {
		return time.Time{}, nil, false
	}
	s = s[1:]
	year := -1
	if len(s) > 4 && s[4] == ' ' {
		if year, s, ok = number(s, 4, 4); !ok {
			return time.Time{}, nil, false
		}
		s = s[1:]
	}
	var hms [3]int
	for i := range hms {
		if i > 0 {
			if !strings.HasPrefix(s, ":") {
				return time.Time{}, nil, false
			}
			s = s[1:]
		}
		if hms[i], s, ok = number(s, 2, 2); !ok {
			return time.Time{}, nil, false
		}
	}
	if hms[0] > 23 || hms[1] > 59 || hms[2] > 60 {
		return time.Time{}, nil, false
	}
	nsec := 0
	if strings.HasPrefix(s, ".") {
		digits := 0
		for digits+1 < len(s) && s[digits+1] >= '0' && s[digits+1] <= '9' {
			digits++
		}
		if digits == 0 || digits > 9 {
			return time.Time{}, nil, false
		}
		nsec, _ = strconv.Atoi(s[1:1+digits] + strings.Repeat("0", 9-digits))
		s = s[1+digits:]
	}
	s = strings.TrimPrefix(s, ":") // Cisco: "hh:mm:ss.mmm: "
	consumed := window - len(s)
	if consumed < len(b) && b[consumed] != ' ' {
		return time.Time{}, nil, false
	}
	loc := received.Location()
	at := func(y int) time.Time {
		return time.Date(y, time.Month(mon), day, hms[0], hms[1], hms[2], nsec, loc)
	}
	var t time.Time
	if year >= 0 {
		t = at(year)
	} else {
		t = at(received.Year())
		for _, y := range []int{received.Year() - 1, received.Year() + 1} {
			if c := at(y); c.Sub(received).Abs() < t.Sub(received).Abs() {
				t = c
			}
		}
	}
	if t.Day() != day || !writableTime(t) {
		return time.Time{}, nil, false // 31 Apr, year 0 east of Greenwich
	}
	return t, b[consumed:], true
}

// number reads an unsigned decimal of min to max digits from the start of s.
func number(s string, minDigits, maxDigits int) (int, string, bool) {
	n := 0
	for n < len(s) && n < maxDigits && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n < minDigits {
		return 0, s, false
	}
	v, _ := strconv.Atoi(s[:n])
	return v, s[n:], true
}

// alarm builds the alarm.
func (m syslogMsg) alarm() Alarm {
	a := Alarm{
		Time:     m.time,
		Severity: syslogSeverity(m.pri & 7),
		Source:   cut(cleanLine(m.host), MaxSource, ellipsis),
	}
	code := m.app
	if m.msgid != "" {
		code = m.msgid
	}
	a.Code = cleanCode(code, "syslog")

	var text string
	switch {
	case m.textIsUTF8 || utf8.Valid(m.text):
		text = string(m.text)
	default:
		r := make([]rune, len(m.text))
		for i, c := range m.text {
			r[i] = rune(c) // Latin-1 is the first 256 code points
		}
		text = string(r)
	}
	a.Text = cut(cleanText(text), MaxText, ellipsis)

	var d details
	d.add("priority", facilityNames[m.pri>>3]+"."+syslogSeverityNames[m.pri&7])
	if m.msgid != "" && m.app != "" {
		d.add("app", m.app)
	}
	for _, kv := range m.sd {
		d.add(kv[0], kv[1])
	}
	a.Details = d.result()
	return a
}
