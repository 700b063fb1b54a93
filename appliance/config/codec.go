package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

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
			return strconv.Quote(v.Interface().(Secret).redacted())
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

// tomlString quotes s as a TOML basic string. Multi-line values such as PEM
// keys become multi-line literal strings when they can, so the file stays
// readable; anything else uses escapes.
func tomlString(s string) string {
	if strings.Contains(s, "\n") && !strings.Contains(s, "'''") && !strings.ContainsFunc(s, isControlNotNewline) {
		return "'''\n" + s + "'''"
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
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
	// Missing is true when there is no file yet: a new box.
	Missing bool
	// Damaged is set when the file does not parse and the last good copy
	// was used instead; it names the file and the parse error.
	Damaged *flash.DamagedError

	raw []byte   // the bytes Config was decoded from
	fs  flash.FS // the file system it was read from
}

// MarkGood keeps the file as it is now as its last good copy; used once a
// hand-written file has passed a check.
func (f *File) MarkGood() error {
	if f.Missing || f.Damaged != nil {
		return nil
	}
	return flash.MarkGood(f.fs, f.Path, f.raw)
}

// Load reads the configuration file at path. A file that does not parse is
// never replaced by defaults: Load falls back to the last good copy and says
// so in File.Damaged, or fails when there is none.
func Load(path string) (*File, error) { return LoadFS(flash.OS, path) }

// LoadFS is Load on the file system fsys.
func LoadFS(fsys flash.FS, path string) (*File, error) {
	l, err := flash.LoadDecoded(fsys, path, Decode)
	if err != nil {
		return nil, err
	}
	return &File{Config: l.Value, Path: path, Missing: l.Missing, Damaged: l.Damaged, raw: l.Raw, fs: fsys}, nil
}

// Save writes c to path through the flash store (atomic, fsync'd, good copy
// kept, nothing written when nothing changed).
func Save(path string, c *Config) error { return SaveFS(flash.OS, path, c) }

// SaveFS is Save on the file system fsys.
func SaveFS(fsys flash.FS, path string, c *Config) error {
	return flash.Save(fsys, path, Encode(c))
}

// Equal reports whether a and b hold the same values.
func Equal(a, b *Config) bool { return reflect.DeepEqual(normal(a), normal(b)) }

// normal treats empty and nil lists alike.
func normal(c *Config) Config {
	n := *c
	for _, k := range Keys {
		if k.Kind == List && !k.IsSet(&n) {
			k.Unset(&n)
		}
	}
	return n
}
