package message

import (
	"bytes"
	"errors"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// lineGoal is the line length folding aims for: RFC 2047 §2 limits
	// lines with encoded-words to 76 characters (RFC 5322 recommends 78).
	// Every token is short enough that no line exceeds the hard limit of
	// 998 octets (a field name of at most 76, an address of at most 254).
	lineGoal = 76
	// maxWord is the longest plain word left unencoded (the length of the
	// longest RFC 2047 encoded-word), so folding always has room.
	maxWord = 75
)

// clean makes header text safe: invalid UTF-8 becomes U+FFFD, every run of
// spaces and control characters (CR, LF and TAB included) becomes one
// space, and leading and trailing spaces are dropped.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == ' ' || unicode.IsControl(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// needsEncoding reports whether cleaned text must be RFC 2047 encoded: it is
// not ASCII, it could be mistaken for an encoded-word, or a word is too
// long to fold.
func needsEncoding(s string) bool {
	if strings.Contains(s, "=?") {
		return true
	}
	word := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= utf8.RuneSelf:
			return true
		case c == ' ':
			word = 0
		default:
			if word++; word > maxWord {
				return true
			}
		}
	}
	return false
}

// textTokens returns unstructured text as space-separated tokens for
// writeField (field name key): plain words, or RFC 2047 encoded-words.
func textTokens(key, s string) []string {
	s = clean(s)
	if s == "" {
		return nil
	}
	if needsEncoding(s) {
		return encodeWords(s, firstRoom(key))
	}
	return strings.Split(s, " ")
}

// firstRoom is the room left for the first token of field key.
func firstRoom(key string) int {
	return lineGoal - len(key) - len(": ")
}

// addressTokens validates a and returns its rendering as tokens: the
// display name (quoted or encoded) and "<addr>". first is the room for the
// first token.
func addressTokens(a Address, first int) ([]string, error) {
	if err := checkAddr(a.Addr); err != nil {
		return nil, err
	}
	angle := "<" + a.Addr + ">"
	name := clean(a.Name)
	switch {
	case name == "":
		return []string{angle}, nil
	case needsEncoding(name):
		return append(encodeWords(name, first), angle), nil
	}
	// Printable ASCII with single spaces: net/mail quotes it properly. The
	// address part is a.Addr itself, as checkAddr made sure.
	return strings.Split((&mail.Address{Name: name, Address: a.Addr}).String(), " "), nil
}

// checkAddr accepts a plain addr-spec in printable ASCII with one '@'.
func checkAddr(addr string) error {
	if addr == "" {
		return errors.New("empty")
	}
	if len(addr) > 254 {
		return errors.New("longer than 254 characters")
	}
	for i := 0; i < len(addr); i++ {
		if c := addr[i]; c < ' ' || c == 0x7f {
			return errors.New("contains a control character")
		} else if c == ' ' {
			return errors.New("contains a space")
		} else if c > '~' {
			return errors.New("contains a non-ASCII character")
		}
	}
	if strings.Count(addr, "@") != 1 {
		return errors.New("needs exactly one @")
	}
	p, err := mail.ParseAddress(addr)
	if err != nil || p.Name != "" || p.Address != addr {
		return errors.New("not a plain local@domain address")
	}
	return nil
}

// RFC 2047 encoded-words, Q encoding, at most 75 characters each.
const (
	wordPrefix = "=?utf-8?q?"
	wordSuffix = "?="
)

// encodeWords encodes valid UTF-8 text as Q encoded-words of at most 75
// characters, the first at most first characters when that leaves room for
// some text (else writeField folds before it). A character is never split.
// Only characters allowed in a phrase (RFC 2047 §5(3)) stay literal, so
// the words fit display names as well as unstructured text.
func encodeWords(s string, first int) []string {
	const hexDigits = "0123456789ABCDEF"
	var words []string
	var w, chunk []byte
	w = append(w, wordPrefix...)
	limit := maxWord
	if first >= 24 && first < maxWord {
		limit = first
	}
	for _, r := range s {
		chunk = chunk[:0]
		for _, c := range []byte(string(r)) {
			switch {
			case isAlnum(c) || strings.IndexByte("!*+-/", c) >= 0:
				chunk = append(chunk, c)
			case c == ' ':
				chunk = append(chunk, '_')
			default:
				chunk = append(chunk, '=', hexDigits[c>>4], hexDigits[c&15])
			}
		}
		if len(w)+len(chunk)+len(wordSuffix) > limit && len(w) > len(wordPrefix) {
			words = append(words, string(w)+wordSuffix)
			w = append(w[:0], wordPrefix...)
			limit = maxWord
		}
		w = append(w, chunk...)
	}
	return append(words, string(w)+wordSuffix)
}

// writeField writes "Name: tokens" joined by single spaces, folding
// (CRLF and a space) before a token that would pass lineGoal. That may be
// the first token, after a long field name: "Name:" CRLF " token" is
// valid folding white space.
func writeField(b *bytes.Buffer, name string, tokens []string) {
	b.WriteString(name)
	b.WriteByte(':')
	n := len(name) + 1
	for _, t := range tokens {
		if n > 0 && n+1+len(t) > lineGoal {
			b.WriteString("\r\n")
			n = 0
		}
		b.WriteByte(' ')
		b.WriteString(t)
		n += 1 + len(t)
	}
	b.WriteString("\r\n")
}
