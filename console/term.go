package console

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"unicode/utf8"
)

// MaxLine is the longest line the console takes; a longer one is refused
// with a bell as it is typed.
const MaxLine = 4096

// ErrInterrupt is ReadLine's answer to Ctrl-C: the line is dropped.
var ErrInterrupt = errors.New("console: interrupted")

// Term is the console's line discipline over a byte stream. On a raw line
// (a serial port, a terminal in raw mode) nothing echoes but the console:
// Term echoes what is typed, lets Backspace, Ctrl-U and Ctrl-C edit the
// line, skips the escape sequences of arrow and function keys, and ends
// each output line with CR LF. Otherwise (a pipe from a provisioning
// script) it echoes nothing and writes lines as they are. A line ends with
// CR, LF or CR LF, so any terminal program works with its defaults.
type Term struct {
	r      *bufio.Reader
	w      io.Writer
	raw    bool
	lastCR bool // the previous line ended with CR: a LF right after it is its pair
	// Mask, if set, is asked before each typed character is echoed: when
	// it says so for the line so far, a * is echoed instead ("set
	// smtp.password …" shows no password).
	Mask func(line []byte) bool
}

// NewTerm returns a Term reading r and writing w; raw says that the far
// end does not echo and wants CR LF.
func NewTerm(r io.Reader, w io.Writer, raw bool) *Term {
	return &Term{r: bufio.NewReader(r), w: w, raw: raw}
}

// Write writes p, with each LF as CR LF on a raw line.
func (t *Term) Write(p []byte) (int, error) {
	if !t.raw {
		return t.w.Write(p)
	}
	if _, err := t.w.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (t *Term) echo(s string) {
	if t.raw {
		t.w.Write([]byte(s))
	}
}

// ReadLine reads one line without its end. hidden leaves what is typed
// unechoed (a password, a secret). At the end of the input it returns the
// last unfinished line, if any, and then io.EOF; Ctrl-D on an empty line
// is the end of the input too.
func (t *Term) ReadLine(hidden bool) (string, error) {
	var line []byte
	show := func(s string) {
		if !hidden {
			t.echo(s)
		}
	}
	for {
		b, err := t.r.ReadByte()
		if err != nil {
			if len(line) > 0 && err == io.EOF {
				return string(line), nil
			}
			return "", err
		}
		afterCR := t.lastCR
		t.lastCR = false
		switch {
		case b == '\n' && afterCR:
			continue
		case b == '\r' || b == '\n':
			t.lastCR = b == '\r'
			t.echo("\r\n")
			return string(line), nil
		case b == 0x7f || b == 0x08: // Backspace or Delete
			if len(line) > 0 {
				_, n := utf8.DecodeLastRune(line)
				line = line[:len(line)-n]
				show("\b \b")
			}
		case b == 0x15: // Ctrl-U: erase the line
			for n := utf8.RuneCount(line); n > 0; n-- {
				show("\b \b")
			}
			line = line[:0]
		case b == 0x03: // Ctrl-C
			t.echo("^C\r\n")
			return "", ErrInterrupt
		case b == 0x04 && len(line) == 0: // Ctrl-D
			return "", io.EOF
		case b == 0x1b:
			t.skipEscape()
		case b == '\t':
			if len(line) < MaxLine {
				line = append(line, ' ')
				show(" ")
			}
		case b < 0x20:
			// other control characters mean nothing here
		case len(line) >= MaxLine:
			t.echo("\a")
		default:
			if t.Mask != nil && t.Mask(line) {
				if b < 0x80 || b >= 0xc0 { // one * a character
					show("*")
				}
			} else {
				show(string(b))
			}
			line = append(line, b)
		}
	}
}

// skipEscape drops the rest of an escape sequence: ESC [ … final or ESC O
// final (cursor and function keys), or the one character after ESC.
func (t *Term) skipEscape() {
	b, err := t.r.ReadByte()
	if err != nil || b != '[' && b != 'O' {
		return
	}
	for {
		b, err := t.r.ReadByte()
		if err != nil || b >= 0x40 && b <= 0x7e {
			return
		}
	}
}
