package config

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"mailagent/appliance/internal/flash"
)

// FileName is the configuration file in the data directory.
const FileName = "mailagent.toml"

// Decode reads a mailagent.toml document strictly: a syntax error, a value of
// the wrong type and an unknown key are errors naming the key and its line.
func Decode(data []byte) (Config, error) {
	var c Config
	if _, err := decodeStrict(string(data), &c); err != nil {
		return Config{}, err
	}
	return c, nil
}

func decodeStrict(doc string, v any) (toml.MetaData, error) {
	md, err := toml.Decode(doc, v)
	if err != nil {
		return md, ParseError(doc, err, secretFields()...)
	}
	var errs []error
	for _, k := range md.Undecoded() {
		name := k.String()
		msg := fmt.Sprintf("unknown key %q", name)
		if hint := nearestKey(name); hint != "" && len(k) == 2 {
			msg += fmt.Sprintf(" (did you mean %q?)", hint)
		}
		if line := keyLine(doc, k); line > 0 {
			msg = fmt.Sprintf("line %d: %s", line, msg)
		}
		errs = append(errs, errors.New(msg))
	}
	return md, errors.Join(errs...)
}

// ParseError turns a TOML decoding error into "line N: what is wrong". When
// the line assigns one of secretFields (the value may be quoted in the
// parser's message), the message names the key only, so no part of a secret
// reaches a log.
func ParseError(doc string, err error, secretFields ...string) error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return err
	}
	lines := strings.Split(doc, "\n")
	if n := pe.Position.Line; n >= 1 && n <= len(lines) {
		name, _, ok := strings.Cut(lines[n-1], "=")
		name = strings.Trim(strings.TrimSpace(name), `"'`)
		if i := strings.LastIndex(name, "."); i >= 0 {
			name = name[i+1:]
		}
		if ok && contains(secretFields, name) {
			return fmt.Errorf("line %d: the value of %s does not parse (it is a secret, so it is not shown)", n, name)
		}
	}
	return fmt.Errorf("line %d: %s", pe.Position.Line, pe.Message)
}

// secretFields are the field names of secret keys.
func secretFields() []string {
	var f []string
	for _, k := range Keys {
		if k.Kind == SecretKind && !contains(f, k.Field) {
			f = append(f, k.Field)
		}
	}
	return f
}

// keyLine finds the line on which key is defined: a [table] header for a
// one-part key, "name = …" inside its table for a two-part key. It returns 0
// when the key cannot be found (for example dotted keys written inline).
func keyLine(doc string, key toml.Key) int {
	sc := bufio.NewScanner(strings.NewReader(doc))
	sc.Buffer(nil, len(doc)+1)
	table := ""
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			table = strings.Trim(strings.TrimSpace(strings.SplitN(line, "#", 2)[0]), "[] ")
			if len(key) == 1 && table == key[0] {
				return n
			}
			continue
		}
		name, _, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		name = strings.Trim(strings.TrimSpace(name), `"'`)
		switch {
		case len(key) == 1 && table == "" && name == key[0]:
			return n
		case len(key) == 2 && table == key[0] && name == key[1]:
			return n
		case len(key) == 2 && table == "" && name == key[0]+"."+key[1]:
			return n
		}
	}
	return 0
}

// Encode writes c as a mailagent.toml document: every key that is set, in
// key-table order, secrets included. Decode(Encode(c)) gives c back.
func Encode(c *Config) []byte { return encode(c, false) }

// Export writes c like Encode, but with every secret replaced by "(set)";
// the result shows a configuration without giving it away.
func Export(c *Config) []byte { return encode(c, true) }

func encode(c *Config, redact bool) []byte {
	var b bytes.Buffer
	section := ""
	for _, k := range Keys {
		if !k.IsSet(c) {
			continue
		}
		if k.Section != section {
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			fmt.Fprintf(&b, "[%s]\n", k.Section)
			section = k.Section
		}
		fmt.Fprintf(&b, "%s = %s\n", k.Field, tomlValue(k, c, redact))
	}
	return b.Bytes()
}

// tomlValue is the TOML text of k's value in c.
func tomlValue(k Key, c *Config, redact bool) string {
	v := k.value(c)
	switch k.Kind {
	case SecretKind:
		if redact {
			return basicString(v.Interface().(Secret).redacted())
		}
		return tomlString(v.Interface().(Secret).Reveal())
	case List:
		var parts []string
		for _, s := range v.Interface().([]string) {
			parts = append(parts, tomlString(s))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case Int, Bool:
		return k.Get(c)
	}
	return tomlString(k.Get(c))
}

// literalDelim opens and closes a multi-line literal string.
const literalDelim = "'''"

// tomlString quotes s as a TOML string. Multi-line values such as PEM
// keys become multi-line literal strings when they can, so the file stays
// readable; anything else is a basic string. For valid UTF-8 the result
// reads back as s; no TOML string holds other bytes (see representable).
func tomlString(s string) string {
	if strings.Contains(s, "\n") && !strings.Contains(s, literalDelim) &&
		!strings.ContainsFunc(s, isControlNotNewline) && utf8.ValidString(s) {
		return literalDelim + "\n" + s + literalDelim
	}
	return basicString(s)
}

// basicString quotes s as a TOML basic string, which reads back as s for
// any valid UTF-8 s. TOML's escapes are \b \t \n \f \r \" \\ and \uXXXX
// (\UXXXXXXXX) only, so every other control character is written \uXXXX:
// Go's escapes (strconv.Quote's \a, \v, \x..) are not TOML. An invalid
// UTF-8 byte becomes U+FFFD.
func basicString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// QuoteTOML quotes s as a TOML basic string that reads back as s. It
// fails for a string that is not UTF-8, which no TOML string can hold.
func QuoteTOML(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errNotUTF8
	}
	return basicString(s), nil
}

func isControlNotNewline(r rune) bool {
	return (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f
}

// File is the result of loading mailagent.toml.
type File struct {
	// Config is the configuration as written (no defaults filled in).
	Config Config
	// Path is the file's path.
	Path string
	// Missing is true when there is no file and no good copy yet: a new
	// box.
	Missing bool
	// Damaged is set when the file is damaged (it does not parse, is cut
	// short, or is empty or missing while its good copy is not) and the
	// good copy was used instead; it names the file and the damage.
	Damaged *flash.DamagedError
	// GoodDamaged is set when the file is sound but its good copy is not:
	// nothing is lost, and the next save makes the good copy again.
	GoodDamaged *flash.DamagedError
	// Empty is true when the file is empty and has no good copy: an
	// empty configuration, made by hand, or what is left of a file.
	Empty bool

	raw []byte   // the bytes Config was decoded from
	fs  flash.FS // the file system it was read from
}

// MarkGood keeps the file as it is now as its last good copy; used once a
// hand-written file has passed a check. It takes the configuration lock
// and does nothing when the file changed since it was loaded, or is
// empty.
func (f *File) MarkGood() error {
	if f.Missing || f.Damaged != nil || len(f.raw) == 0 {
		return nil // an empty good copy would be no fallback, only damage
	}
	unlock, err := lock(context.Background(), f.fs, f.Path)
	if err != nil {
		return err
	}
	defer unlock()
	if now, err := flash.ReadFile(f.fs, f.Path); err != nil || !bytes.Equal(now, f.raw) {
		return nil
	}
	return flash.MarkGood(f.fs, f.Path, f.raw)
}

// Load reads the configuration file at path. A damaged file is never
// replaced by defaults: Load falls back to the last good copy and says so
// in File.Damaged, or fails with a *flash.DamagedError when there is none.
// What counts as damage is decodeFile's and flash.Load's to say.
func Load(path string) (*File, error) { return LoadFS(flash.OS, path) }

// LoadFS is Load on the file system fsys.
func LoadFS(fsys flash.FS, path string) (*File, error) {
	l, err := flash.LoadDecoded(fsys, path, decodeFile)
	if err != nil {
		return nil, err
	}
	return &File{Config: l.Value, Path: path, Missing: l.Missing, Damaged: l.Damaged, GoodDamaged: l.GoodDamaged,
		Empty: l.Empty, raw: l.Raw, fs: fsys}, nil
}

// decodeFile is the check and decoder of Load: the file's end marks
// (CheckMarks), then the strict Decode. Save reads back what it would
// write with it too.
func decodeFile(data []byte) (Config, error) {
	if err := CheckMarks(FileName, data); err != nil {
		return Config{}, err
	}
	return Decode(data)
}

// Save writes c to path through the flash store (atomic, fsync'd, good copy
// kept, nothing written when nothing changed). What it writes is read back
// first, as Load reads it, and must give c again: a value no TOML file can
// hold (not UTF-8, longer than MaxValueBytes) is refused by key, and
// nothing is written. Save does not lock: changes go through Update.
func Save(path string, c *Config) error { return SaveFS(flash.OS, path, c) }

// SaveFS is Save on the file system fsys.
func SaveFS(fsys flash.FS, path string, c *Config) error {
	data, err := fileBytes(c)
	if err != nil {
		return fmt.Errorf("save %s: %w; nothing was written", path, err)
	}
	return flash.Save(fsys, path, data)
}

// fileBytes is what Save writes for c: Encode between the end marks,
// checked to read back as c.
func fileBytes(c *Config) ([]byte, error) {
	var errs []error
	for _, k := range Keys {
		if err := k.representable(c); err != nil {
			errs = append(errs, &KeyError{Key: k.Name, Err: err})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return ReadBack(FileName, Encode(c), decodeFile, func(back *Config) []string { return differing(c, back) })
}

// Equal reports whether a and b hold the same values.
func Equal(a, b *Config) bool { return len(differing(a, b)) == 0 }

// differing lists the keys whose values differ in a and b: empty and nil
// lists alike, a duration or a date by its value.
func differing(a, b *Config) []string {
	var keys []string
	for _, k := range Keys {
		va, vb := k.value(a).Interface(), k.value(b).Interface()
		same := false
		switch k.Kind {
		case List:
			same = slices.Equal(va.([]string), vb.([]string))
		case DurationKind:
			same = va.(Duration).Duration == vb.(Duration).Duration && k.IsSet(a) == k.IsSet(b)
		case DateKind:
			same = va.(Date).Equal(vb.(Date).Time)
		default:
			same = reflect.DeepEqual(va, vb)
		}
		if !same {
			keys = append(keys, k.Name)
		}
	}
	return keys
}
