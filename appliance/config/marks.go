package config

import (
	"bytes"
	"fmt"
	"strings"
)

// The end marks: Save writes a first line that says mailagent wrote the
// file and a last line that closes it, so that a file cut short — at a
// line end, where it still parses — is found. A file without the first
// line was written by hand and is taken as it is; an edit between the
// marks is fine. A flipped bit that leaves a file that still parses is
// not found: the file is for people to edit, and a checksum would refuse
// every edit.

// marks are the first and the last line of a file name written by
// mailagent.
func marks(name string) (first, last string) {
	return "# " + name + ", written by mailagent: edit freely, keep the last line",
		"# end of " + name + " (without this line the file counts as cut short)"
}

// Mark puts doc, a TOML document, between the end marks of file name
// (mailagent.toml, tokens.toml).
func Mark(name string, doc []byte) []byte {
	first, last := marks(name)
	var b bytes.Buffer
	b.Grow(len(first) + len(doc) + len(last) + 3)
	b.WriteString(first + "\n")
	b.Write(doc)
	if len(doc) > 0 && doc[len(doc)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString(last + "\n")
	return b.Bytes()
}

// CheckMarks reports a file name that begins with mailagent's first line
// and lacks its last line: cut short. A file without the first line is
// not checked, except that a file that is only the beginning of that line
// is cut short too.
func CheckMarks(name string, doc []byte) error {
	first, last := marks(name)
	line, _, cut := bytes.Cut(doc, []byte("\n"))
	if string(bytes.TrimRight(line, "\r")) != first {
		if !cut && len(doc) > 0 && strings.HasPrefix(first, string(doc)) {
			return errCutShort(last)
		}
		return nil
	}
	for l := range bytes.Lines(doc) {
		if string(bytes.TrimSpace(l)) == last {
			return nil
		}
	}
	return errCutShort(last)
}

func errCutShort(last string) error {
	return fmt.Errorf("cut short: mailagent wrote it, and its last line %q is missing (if you deleted that line, put it back)", strings.SplitN(last, " (", 2)[0])
}

// ReadBack puts doc, the encoding of a value for file name, between the
// end marks and returns it once decode, the decoder that loads the file,
// reads it back to a value in which differ finds no field that differs
// from the one encoded: what Save and oauth.SaveTokens write, and the one
// place where they check it. differ names the fields (never their values).
func ReadBack[T any](name string, doc []byte, decode func([]byte) (T, error), differ func(back *T) []string) ([]byte, error) {
	data := Mark(name, doc)
	back, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("it would not read back: %w", err)
	}
	if fields := differ(&back); len(fields) > 0 {
		return nil, fmt.Errorf("%s would not read back as set", strings.Join(fields, ", "))
	}
	return data, nil
}
