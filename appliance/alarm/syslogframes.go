package alarm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// DefaultSyslogFrame is the frame size SyslogFrames allows when given 0:
// what RFC 5425 §4.3.1 asks a receiver to take.
const DefaultSyslogFrame = 8192

// ErrSyslogFrame is wrapped by the errors of SyslogFrames about a stream
// whose framing is broken; the stream cannot be read on.
var ErrSyslogFrame = errors.New("alarm: bad syslog frame")

// syslogFrameHeader is room for "LEN SP" before a frame of max bytes.
const syslogFrameHeader = 10

// SyslogFrames returns a bufio.SplitFunc that cuts a syslog TCP stream into
// messages, each frame framed either way RFC 6587 §3.4 describes (the way is
// told from the first byte of each frame, as rsyslog does):
//
//   - octet counting, "LEN SP MSG", when the frame starts with a digit;
//   - otherwise non-transparent framing: MSG up to LF (or NUL), a CR
//     before the LF dropped.
//
// Blank lines between frames are skipped. A message longer than max bytes
// (0 means DefaultSyslogFrame) is cut to its first max bytes and the rest
// skipped, so one long message costs neither the connection nor memory.
// A count that is not digits and a space, or a stream that ends inside a
// counted frame, is an error wrapping ErrSyslogFrame.
//
// The function keeps state between calls: use one per stream, with a
// Scanner whose buffer holds max+10 bytes, as NewSyslogScanner sets up.
func SyslogFrames(max int) bufio.SplitFunc {
	if max <= 0 {
		max = DefaultSyslogFrame
	}
	skip := 0         // bytes of an oversized counted frame still to skip
	skipLine := false // the rest of an oversized line is still to skip
	// A Scanner asks again only after reading more, and not at all at
	// the end of the stream, so each call goes on until it has a frame or
	// needs more bytes.
	return func(data []byte, atEOF bool) (int, []byte, error) {
		off := 0
		for {
			rest := data[off:]
			switch {
			case skip > 0 && len(rest) == 0 && atEOF:
				return off, nil, fmt.Errorf("%w: the stream ends inside a frame: %w", ErrSyslogFrame, io.ErrUnexpectedEOF)
			case skip > 0:
				n := min(skip, len(rest))
				if n == 0 {
					return off, nil, nil
				}
				skip -= n
				off += n
				continue
			case skipLine:
				i := bytes.IndexAny(rest, "\n\x00")
				if i < 0 {
					return len(data), nil, nil
				}
				skipLine = false
				off += i + 1
				continue
			}
			i := 0
			for i < len(rest) && (rest[i] == '\n' || rest[i] == '\r' || rest[i] == ' ' || rest[i] == '\t' || rest[i] == 0) {
				i++
			}
			off, rest = off+i, rest[i:]
			if len(rest) == 0 {
				return off, nil, nil
			}
			if c := rest[0]; c >= '0' && c <= '9' {
				n, frame, err := countedFrame(rest, atEOF, max, &skip)
				switch {
				case err != nil:
					return off, nil, err
				case frame != nil:
					return off + n, frame, nil
				case n == 0:
					return off, nil, nil // more bytes needed
				}
				off += n // an empty frame
				continue
			}
			// A line of max bytes may end in CR LF: whether it is longer
			// shows only in its first max+2 bytes, however they are read.
			if i := bytes.IndexAny(rest[:min(len(rest), max+2)], "\n\x00"); i >= 0 {
				line := bytes.TrimSuffix(rest[:i], []byte("\r"))
				return off + i + 1, line[:min(len(line), max)], nil
			}
			switch {
			case len(rest) >= max+2:
				skipLine = true
				return off + max, rest[:max], nil
			case atEOF:
				return len(data), rest[:min(len(rest), max)], nil
			}
			return off, nil, nil
		}
	}
}

// countedFrame reads "LEN SP MSG" from the start of data.
func countedFrame(data []byte, atEOF bool, max int, skip *int) (int, []byte, error) {
	n, j := 0, 0
	for j < len(data) && data[j] >= '0' && data[j] <= '9' {
		if j == 9 {
			return 0, nil, fmt.Errorf("%w: octet count %q… is too long", ErrSyslogFrame, data[:j])
		}
		n = n*10 + int(data[j]-'0')
		j++
	}
	if j == len(data) {
		if atEOF {
			return 0, nil, fmt.Errorf("%w: the stream ends inside the octet count: %w", ErrSyslogFrame, io.ErrUnexpectedEOF)
		}
		return 0, nil, nil
	}
	if data[j] != ' ' {
		return 0, nil, fmt.Errorf("%w: octet count %q is followed by %q, not a space", ErrSyslogFrame, data[:j], data[j])
	}
	hdr := j + 1
	if n == 0 {
		return hdr, nil, nil
	}
	take := min(n, max)
	if len(data) < hdr+take {
		if atEOF {
			return 0, nil, fmt.Errorf("%w: the stream ends inside a frame of %d bytes: %w", ErrSyslogFrame, n, io.ErrUnexpectedEOF)
		}
		return 0, nil, nil
	}
	*skip = n - take
	return hdr + take, data[hdr : hdr+take], nil
}

// NewSyslogScanner returns a Scanner that reads syslog frames of at most
// max bytes (0 means DefaultSyslogFrame) from r with SyslogFrames.
func NewSyslogScanner(r io.Reader, max int) *bufio.Scanner {
	if max <= 0 {
		max = DefaultSyslogFrame
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(max+syslogFrameHeader, 4096)), max+syslogFrameHeader)
	sc.Split(SyslogFrames(max))
	return sc
}
