package message

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "update golden files")

var testDate = time.Date(2026, time.March, 1, 12, 30, 5, 0, time.FixedZone("", 3600))

// zeros is a random source that makes Message-IDs predictable.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A table of messages; the fuzz target is seeded from it.
var renderTests = []struct {
	name     string
	fromName string
	toName   string
	subject  string
	value    string // of X-Mailagent-Severity
	body     string
}{
	{"plain", "Gateway", "Admin", "Alarm: link down", "major", "Link eth0 is down.\n"},
	{"empty", "", "", "", "", ""},
	{"umlauts", "Zentrale Küche", "Jörg Müller", "Störung: Übertragung fehlgeschlagen", "kritisch ✓", "Grüße\r\naus der Küche\r\n"},
	{"header injection", "Evil\r\nBcc: x@example.com", "A\nTo: b@example.com", "hi\r\nBcc: victim@example.com\r\n\r\nbody", "x\rSubject: y", "ok"},
	{"specials in names", `Doe, John "JD" (ops)`, `<root@evil>; \ @`, "a\tb  c ", "  ", "\x00\x01\x7f"},
	{"dot lines", "Box", "", ".", "", ".\r\n..\n.\r.x\r\n . \n"},
	{"lone CR and LF", "", "", "a\rb\nc", "", "a\rb\nc\r\n\r\n\n\r"},
	{"invalid utf-8", "\xff\xfeName", "Na\xc3me", "bad \xc3\x28 subject", "\xed\xa0\x80", "bad \xff\xfe body\n"},
	{"looks encoded", "=?utf-8?q?Mallory?=", "", "=?utf-8?b?SGk=?= there", "=?", "=?utf-8?q?x?=\n"},
	{"long subject", "", "", strings.Repeat("word ", 80) + strings.Repeat("ü", 120), strings.Repeat("x", 200), ""},
	{"long lines", strings.Repeat("N", 300), strings.Repeat("Näme ", 60), strings.Repeat("s", 2000), "v", strings.Repeat("a", 5000) + "\n" + strings.Repeat("€", 900) + "\n" + strings.Repeat(". ", 600) + "\n" + strings.Repeat(" ", 100) + "\n"},
	{"trailing white space", "", "", "", "", "tab\t\nspace \nboth \t\n"},
}

func newTestMessage(fromName, toName, subject, value, body string) *Message {
	return &Message{
		From:           Address{Name: fromName, Addr: "gw1@example.com"},
		To:             []Address{{Name: toName, Addr: "ops@example.org"}, {Addr: "noc+alarms@example.net"}},
		Subject:        subject,
		Date:           testDate,
		Body:           body,
		Headers:        []Header{{Key: "X-Mailagent-Severity", Value: value}},
		testOnlyRandom: zeros{},
	}
}

func TestBytes(t *testing.T) {
	for _, tt := range renderTests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMessage(tt.fromName, tt.toName, tt.subject, tt.value, tt.body)
			out, err := m.Bytes()
			if err != nil {
				t.Fatalf("Bytes() error: %v", err)
			}
			checkRendered(t, m, out)
			if got, want := m.MessageID, "<00000000000000000000000000000000@example.com>"; got != want {
				t.Errorf("MessageID = %q, want %q", got, want)
			}
		})
	}
}

// wantFields are the header fields of every message, besides the extra ones.
var wantFields = []string{
	"date", "from", "to", "subject", "message-id", "mime-version",
	"content-type", "content-transfer-encoding", "auto-submitted",
}

// checkRendered asserts the rules every rendered message keeps, then parses
// it back and compares names, subject, header value and body with the input.
func checkRendered(t *testing.T, m *Message, out []byte) {
	t.Helper()
	s := string(out)
	if s != "" && !strings.HasSuffix(s, "\r\n") {
		t.Fatalf("message does not end in CRLF: %q", tail(s))
	}
	lines := strings.Split(strings.TrimSuffix(s, "\r\n"), "\r\n")
	inHeader := true
	var fields []string
	for i, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			t.Fatalf("line %d has a bare CR or LF: %q", i+1, l)
		}
		if len(l) > 998 {
			t.Fatalf("line %d is %d octets long", i+1, len(l))
		}
		if strings.HasPrefix(l, ".") {
			t.Fatalf("line %d starts with '.': %q", i+1, l)
		}
		if !inHeader {
			if len(l) > maxQPLine {
				t.Errorf("body line %d is %d characters long", i+1, len(l))
			}
			continue
		}
		if strings.Contains(l, "=?") && len(l) > 76 {
			t.Errorf("header line %d has an encoded-word and is %d characters long (RFC 2047 allows 76)", i+1, len(l))
		}
		switch {
		case l == "":
			inHeader = false
		case l[0] == ' ' || l[0] == '\t':
			if i == 0 {
				t.Fatalf("message starts with a continuation line: %q", l)
			}
		default:
			k, _, ok := strings.Cut(l, ":")
			if !ok {
				t.Fatalf("header line %d is not a field: %q", i+1, l)
			}
			fields = append(fields, strings.ToLower(k))
		}
		for j := 0; j < len(l); j++ {
			if c := l[j]; c < ' ' || c > '~' {
				t.Fatalf("header line %d has byte %#x: %q", i+1, c, l)
			}
		}
	}
	if inHeader {
		t.Fatalf("no empty line after the header")
	}
	want := append([]string(nil), wantFields...)
	for _, h := range m.Headers {
		want = append(want, strings.ToLower(h.Key))
	}
	if strings.Join(fields, "\n") != strings.Join(want, "\n") {
		t.Fatalf("header fields = %q, want %q", fields, want)
	}

	msg, err := mail.ReadMessage(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("mail.ReadMessage: %v", err)
	}
	var dec mime.WordDecoder
	if got, err := dec.DecodeHeader(msg.Header.Get("Subject")); err != nil || got != clean(m.Subject) {
		t.Errorf("decoded Subject = %q, %v; want %q", got, err, clean(m.Subject))
	}
	for _, h := range m.Headers {
		if got, err := dec.DecodeHeader(msg.Header.Get(h.Key)); err != nil || got != clean(h.Value) {
			t.Errorf("decoded %s = %q, %v; want %q", h.Key, got, err, clean(h.Value))
		}
	}
	from, err := msg.Header.AddressList("From")
	if err != nil || len(from) != 1 {
		t.Fatalf("From %q: %v, %d addresses", msg.Header.Get("From"), err, len(from))
	}
	if from[0].Name != clean(m.From.Name) || from[0].Address != m.From.Addr {
		t.Errorf("From = %q <%s>, want %q <%s>", from[0].Name, from[0].Address, clean(m.From.Name), m.From.Addr)
	}
	to, err := msg.Header.AddressList("To")
	if err != nil || len(to) != len(m.To) {
		t.Fatalf("To %q: %v, %d addresses", msg.Header.Get("To"), err, len(to))
	}
	for i, a := range m.To {
		if to[i].Name != clean(a.Name) || to[i].Address != a.Addr {
			t.Errorf("To[%d] = %q <%s>, want %q <%s>", i, to[i].Name, to[i].Address, clean(a.Name), a.Addr)
		}
	}
	if got := msg.Header.Get("Message-ID"); got != m.MessageID {
		t.Errorf("Message-ID = %q, want %q", got, m.MessageID)
	}
	if _, err := msg.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("decoding body: %v", err)
	}
	if got, want := string(body), wantBody(m.Body); got != want {
		t.Errorf("decoded body = %q, want %q", tail(got), tail(want))
	}
}

// wantBody is the body with invalid UTF-8 replaced and CRLF line ends,
// written independently of normalizeBody.
func wantBody(s string) string {
	var b strings.Builder
	s = strings.ToValidUTF8(s, "\uFFFD")
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			b.WriteString("\r\n")
		case '\n':
			b.WriteString("\r\n")
		default:
			b.WriteByte(s[i])
		}
	}
	if b.Len() > 0 && !strings.HasSuffix(b.String(), "\r\n") {
		b.WriteString("\r\n")
	}
	return b.String()
}

func tail(s string) string {
	if len(s) > 200 {
		return "…" + s[len(s)-200:]
	}
	return s
}

func TestBytesErrors(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Message)
		wantErr string
	}{
		{"from with CRLF", func(m *Message) { m.From.Addr = "a\r\nb@example.com" }, `message: from address "a\r\nb@example.com": contains a control character`},
		{"from without @", func(m *Message) { m.From.Addr = "gateway" }, `message: from address "gateway": needs exactly one @`},
		{"from with two @", func(m *Message) { m.From.Addr = "a@b@example.com" }, `needs exactly one @`},
		{"from empty", func(m *Message) { m.From.Addr = "" }, `message: from address "": empty`},
		{"to with NUL", func(m *Message) { m.To[1].Addr = "x\x00@example.com" }, `message: to address "x\x00@example.com": contains a control character`},
		{"to with space", func(m *Message) { m.To[0].Addr = "a b@example.com" }, `contains a space`},
		{"to non-ASCII", func(m *Message) { m.To[0].Addr = "jörg@example.com" }, `contains a non-ASCII character`},
		{"to with display name", func(m *Message) { m.To[0].Addr = "A<a@example.com>" }, `not a plain local@domain address`},
		{"to bad domain", func(m *Message) { m.To[0].Addr = "a@" }, `not a plain local@domain address`},
		{"to too long", func(m *Message) { m.To[0].Addr = strings.Repeat("a", 250) + "@b.de" }, `longer than 254 characters`},
		{"no recipients", func(m *Message) { m.To = nil }, `message: no recipients`},
		{"header key with colon", func(m *Message) { m.Headers[0].Key = "X-A:b" }, `message: header key "X-A:b": contains ':'`},
		{"header key with CRLF", func(m *Message) { m.Headers[0].Key = "X\r\nBcc" }, `message: header key "X\r\nBcc": contains '\r'`},
		{"header key empty", func(m *Message) { m.Headers[0].Key = "" }, `message: header key "": empty`},
		{"header key standard", func(m *Message) { m.Headers[0].Key = "subject" }, `message: header key "subject": already in the message`},
		{"header key twice", func(m *Message) { m.Headers = append(m.Headers, Header{Key: "x-mailagent-severity"}) }, `already in the message`},
		{"header key too long", func(m *Message) { m.Headers[0].Key = strings.Repeat("X", 77) }, `longer than 76 characters`},
		{"message-id with CRLF", func(m *Message) { m.MessageID = "<a@b>\r\nBcc: x" }, `message: message-id "<a@b>\r\nBcc: x": not of the form <id@host>`},
		{"message-id without @", func(m *Message) { m.MessageID = "<ab>" }, `not of the form <id@host>`},
		{"message-id with space", func(m *Message) { m.MessageID = "<a b@c>" }, `contains ' '`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMessage("n", "n", "s", "v", "b")
			tt.edit(m)
			id := m.MessageID
			out, err := m.Bytes()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Bytes() = %q, %v; want error containing %q", out, err, tt.wantErr)
			}
			if m.MessageID != id {
				t.Errorf("failed Bytes() changed MessageID to %q", m.MessageID)
			}
		})
	}
}

func TestMessageID(t *testing.T) {
	tests := []struct {
		host, from, want string
	}{
		{"", "a@example.com", "@example.com>"},
		{"gw-7.example.net", "a@example.com", "@gw-7.example.net>"},
		{"Zentrale Küche", "a@example.com", "@Zentrale-K-che>"},
		{"..a..b..", "a@example.com", "@a.b>"},
		{"...", "a@[192.0.2.1]", "@-192.0.2.1->"},
		{"...", "a@example.com", "@example.com>"},
		{"<x>@\r\n", "a@b", "@-x---->"},
	}
	for _, tt := range tests {
		m := &Message{From: Address{Addr: tt.from}, To: []Address{{Addr: "b@example.org"}}, Host: tt.host}
		if _, err := m.Bytes(); err != nil {
			t.Fatalf("Host %q, From %q: %v", tt.host, tt.from, err)
		}
		if !strings.HasSuffix(m.MessageID, tt.want) || checkID(m.MessageID) != nil || len(m.MessageID) != 1+32+len(tt.want) {
			t.Errorf("Host %q, From %q: MessageID = %q, want <32 hex digits%s", tt.host, tt.from, m.MessageID, tt.want)
		}
	}

	if id, err := newID(zeros{}, "", ""); err != nil || id != "<00000000000000000000000000000000@localhost>" {
		t.Errorf("newID without host or domain = %q, %v; want @localhost", id, err)
	}

	// A rendered message keeps its ID; a new message gets a new one.
	m := newTestMessage("", "", "s", "", "b")
	m.testOnlyRandom = nil
	first, _ := m.Bytes()
	id := m.MessageID
	second, _ := m.Bytes()
	if m.MessageID != id || !bytes.Equal(first, second) {
		t.Errorf("second Bytes() changed the message: %q, then %q", id, m.MessageID)
	}
	other := newTestMessage("", "", "s", "", "b")
	other.testOnlyRandom = nil
	if _, err := other.Bytes(); err != nil || other.MessageID == id {
		t.Errorf("two messages share Message-ID %q (err %v)", id, err)
	}

	// A random source that fails is an error, not a weak ID.
	m = newTestMessage("", "", "s", "", "b")
	m.testOnlyRandom = strings.NewReader("short")
	if _, err := m.Bytes(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Bytes() with a failing random source: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestDateDefault(t *testing.T) {
	m := &Message{From: Address{Addr: "a@example.com"}, To: []Address{{Addr: "b@example.org"}}}
	before := time.Now().Add(-time.Second)
	out, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	d, err := msg.Header.Date()
	if err != nil || d.Before(before.Truncate(time.Second)) {
		t.Errorf("Date = %v, %v; want about now", d, err)
	}
}

func TestEncodeWords(t *testing.T) {
	for _, s := range []string{"a", "Jörg", "=?_ü(\")", strings.Repeat("€", 100), strings.Repeat("a b", 50), "\uFFFD𝄞x"} {
		words := encodeWords(s, 30)
		var dec mime.WordDecoder
		for _, w := range words {
			if len(w) > 75 {
				t.Errorf("encodeWords(%q): word %q is %d long", s, w, len(w))
			}
			if strings.ContainsAny(w[len(wordPrefix):len(w)-len(wordSuffix)], "\"(),.:;<>@[\\]? \t") {
				t.Errorf("encodeWords(%q): word %q has characters not allowed in a phrase", s, w)
			}
		}
		if got, err := dec.DecodeHeader(strings.Join(words, " ")); err != nil || got != s {
			t.Errorf("decode(encodeWords(%q)) = %q, %v", s, got, err)
		}
	}
}

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"  a  b  ", "a b"},
		{"a\r\nb", "a b"},
		{"a\r\n\tb\x00c\x7fd\u0085e", "a b c d e"},
		{"\xffx", "\uFFFDx"},
		{"ä\u00a0ö", "ä\u00a0ö"},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBody(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a", "a\r\n"},
		{"a\n", "a\r\n"},
		{".", "=2E\r\n"},
		{"a\r\n.\r\nb", "a\r\n=2E\r\nb\r\n"},
		{"..", "=2E.\r\n"},
		{"x = 1", "x =3D 1\r\n"},
		{"end ", "end=20\r\n"},
		{"end\t", "end=09\r\n"},
		{"in\tside", "in\tside\r\n"},
		{"Grüße", "Gr=C3=BC=C3=9Fe\r\n"},
		{"\x00", "=00\r\n"},
		{"\r\r", "\r\n\r\n"},
		{strings.Repeat("a", 76), strings.Repeat("a", 76) + "\r\n"},
		{strings.Repeat("a", 77), strings.Repeat("a", 75) + "=\r\naa\r\n"},
		{strings.Repeat("a", 75) + ".", strings.Repeat("a", 75) + ".\r\n"},
		{strings.Repeat("a", 75) + "..", strings.Repeat("a", 75) + "=\r\n=2E.\r\n"},
		{strings.Repeat("a", 74) + "ü", strings.Repeat("a", 74) + "=\r\n=C3=BC\r\n"},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		writeBody(&b, tt.in)
		if got := b.String(); got != tt.want {
			t.Errorf("writeBody(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestGolden compares whole rendered mails with testdata/*.eml.
// Run with -update to rewrite them.
func TestGolden(t *testing.T) {
	tests := []struct {
		file string
		msg  *Message
	}{
		{"alarm.eml", &Message{
			From:    Address{Name: "Gateway Lab 3", Addr: "gw3@example.com"},
			To:      []Address{{Name: "Operations", Addr: "ops@example.org"}, {Addr: "noc@example.org"}},
			Subject: "[gw3] major: SIP trunk 1 unreachable",
			Date:    testDate,
			Body: "SIP trunk 1 is unreachable since 12:29:40 (3 times).\n" +
				"\n" +
				"source: 192.0.2.10\n" +
				".\n" +
				"-- \n" +
				"mailagent\n",
			Host:           "gw3",
			Headers:        []Header{{Key: "X-Mailagent-Severity", Value: "major"}},
			testOnlyRandom: zeros{},
		}},
		{"umlauts.eml", &Message{
			From:           Address{Name: "Zentrale Küche", Addr: "pbx@example.de"},
			To:             []Address{{Name: "Jörg Müller, Technik", Addr: "joerg@example.de"}},
			Subject:        "Störung\r\nBcc: x@example.com: " + strings.Repeat("Übertragung fehlgeschlagen, ", 4),
			Date:           testDate,
			Body:           "Grüße aus der Küche.\r\n" + strings.Repeat("Sehr lange Zeile – ", 10) + "\r\n",
			testOnlyRandom: zeros{},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := tt.msg.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			checkRendered(t, tt.msg, got)
			path := filepath.Join("testdata", tt.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Bytes() differs from %s (run go test -update):\n%s", path, diffLines(string(got), string(want)))
			}
		})
	}
}

func diffLines(got, want string) string {
	g := bufio.NewScanner(strings.NewReader(got))
	w := bufio.NewScanner(strings.NewReader(want))
	for i := 1; ; i++ {
		gok, wok := g.Scan(), w.Scan()
		if !gok && !wok {
			return "(only line ends differ)"
		}
		if g.Text() != w.Text() || gok != wok {
			return fmt.Sprintf("line %d:\n got: %q\nwant: %q", i, g.Text(), w.Text())
		}
	}
}
