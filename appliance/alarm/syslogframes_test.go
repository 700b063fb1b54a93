package alarm

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// scanFrames reads every frame of stream with max, through each reader
// shape (whole, a byte at a time, half reads), and insists they agree.
func scanFrames(t testing.TB, stream string, max int) ([]string, error) {
	t.Helper()
	var first []string
	var firstErr error
	for i, r := range []io.Reader{
		strings.NewReader(stream),
		iotest.OneByteReader(strings.NewReader(stream)),
		iotest.HalfReader(strings.NewReader(stream)),
	} {
		sc := NewSyslogScanner(r, max)
		var frames []string
		for n := 0; sc.Scan(); n++ {
			if n > len(stream) {
				t.Fatalf("more frames than bytes in %q", stream)
			}
			if len(sc.Bytes()) > max && max > 0 {
				t.Fatalf("frame of %d bytes, max %d", len(sc.Bytes()), max)
			}
			frames = append(frames, sc.Text())
		}
		if i == 0 {
			first, firstErr = frames, sc.Err()
			continue
		}
		if !reflect.DeepEqual(frames, first) || (sc.Err() == nil) != (firstErr == nil) {
			t.Fatalf("reader %d: %q, %v; whole: %q, %v", i, frames, sc.Err(), first, firstErr)
		}
	}
	return first, firstErr
}

var frameTests = []struct {
	name   string
	stream string
	max    int
	want   []string
	err    string
}{
	{name: "empty", stream: "", want: nil},
	{name: "newlines", stream: "<13>a\n<13>b\r\n\n\r\n<13>c", want: []string{"<13>a", "<13>b", "<13>c"}},
	{name: "NUL terminated", stream: "<13>a\x00<13>b\x00", want: []string{"<13>a", "<13>b"}},
	{name: "octet counting", stream: "5 <13>a7 <13>b\nc11 <13>1 - - x", want: []string{"<13>a", "<13>b\nc", "<13>1 - - x"}},
	{name: "octet counting with LF between frames", stream: "5 <13>a\n5 <13>b\n", want: []string{"<13>a", "<13>b"}},
	{name: "both, frame by frame", stream: "<13>a\n5 <13>b<13>c\n", want: []string{"<13>a", "<13>b", "<13>c"}},
	{name: "zero count skipped", stream: "0 5 <13>a", want: []string{"<13>a"}},
	{name: "long line cut, next intact", stream: "<13>0123456789\n<13>b\n", max: 8, want: []string{"<13>0123", "<13>b"}},
	{name: "line of exactly max", stream: "<13>0123\n<13>b", max: 8, want: []string{"<13>0123", "<13>b"}},
	{name: "long counted frame cut, next intact", stream: "14 <13>0123456789\n5 <13>b", max: 8, want: []string{"<13>0123", "<13>b"}},
	{name: "count not followed by space", stream: "12x<13>a", err: `octet count "12" is followed by 'x'`},
	{name: "count too long", stream: "1234567890 x", err: "is too long"},
	{name: "stream ends in a frame", stream: "9 <13>a", err: "ends inside a frame of 9 bytes"},
	{name: "stream ends in a long frame", stream: "20 <13>0123456789", max: 8, want: []string{"<13>0123"}, err: "ends inside a frame"},
	{name: "stream ends in the count", stream: "<13>a\n12", want: []string{"<13>a"}, err: "ends inside the octet count"},
}

func TestSyslogFrames(t *testing.T) {
	for _, tt := range frameTests {
		t.Run(tt.name, func(t *testing.T) {
			max := tt.max
			if max == 0 {
				max = DefaultSyslogFrame
			}
			got, err := scanFrames(t, tt.stream, max)
			checkErr(t, err, tt.err)
			if err != nil && !errors.Is(err, ErrSyslogFrame) {
				t.Errorf("error %v does not wrap ErrSyslogFrame", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("frames %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSyslogFramesRoundTrip frames messages both ways and reads them back,
// with frames of every size around max.
func TestSyslogFramesRoundTrip(t *testing.T) {
	const max = 64
	var msgs []string
	for n := 0; n <= max-len("<13>"); n++ {
		msgs = append(msgs, "<13>"+strings.Repeat("x", n))
	}
	var counted, lines strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&counted, "%d %s", len(m), m)
		lines.WriteString(m + "\n")
	}
	for name, stream := range map[string]string{"counted": counted.String(), "lines": lines.String()} {
		got, err := scanFrames(t, stream, max)
		if err != nil || !reflect.DeepEqual(got, msgs) {
			t.Errorf("%s: %q, %v; want %q", name, got, err, msgs)
		}
	}
}

func TestSyslogFramesDefault(t *testing.T) {
	long := "<13>" + strings.Repeat("x", DefaultSyslogFrame)
	got, err := scanFrames(t, fmt.Sprintf("%d %s", len(long), long), 0)
	if err != nil || len(got) != 1 || got[0] != long[:DefaultSyslogFrame] {
		t.Errorf("%d frames, %v; want one of DefaultSyslogFrame bytes", len(got), err)
	}
}

func FuzzSyslogFrames(f *testing.F) {
	for _, tt := range frameTests {
		f.Add([]byte(tt.stream), uint8(tt.max))
	}
	f.Fuzz(func(t *testing.T, stream []byte, max uint8) {
		frames, _ := scanFrames(t, string(stream), 1+int(max))
		for _, fr := range frames {
			a, err := ParseSyslog([]byte(fr), received)
			if err == nil {
				mustValidate(t, a)
			}
		}
	})
}
