package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the type of a key's value.
type Kind int

// The kinds of values.
const (
	String Kind = iota
	Int
	Bool
	List
	DurationKind
	DateKind
	SecretKind
)

func (k Kind) String() string {
	return [...]string{"string", "integer", "boolean", "list", "duration", "date", "secret"}[k]
}

// Key is one configuration key: "section.name".
type Key struct {
	// Name is "section.key", as in the file, the console and the API.
	Name string
	// Section and Field are its two parts.
	Section, Field string
	// Kind is the type of its value.
	Kind Kind
	// Help is one line saying what it is.
	Help string
	// Enum lists the allowed values, if the value is one of a few names.
	Enum []string
	// Multiline is set for a PEM key or certificate: its value has
	// lines. No other value may hold a line break.
	Multiline bool

	index []int // field index path in Config
}

// Keys is the key table, in file order.
var Keys = buildKeys()

var (
	secretType   = reflect.TypeFor[Secret]()
	durationType = reflect.TypeFor[Duration]()
	dateType     = reflect.TypeFor[Date]()
)

func buildKeys() []Key {
	var keys []Key
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		sf := ct.Field(i)
		if !sf.IsExported() {
			continue
		}
		section := sf.Tag.Get("toml")
		for j := range sf.Type.NumField() {
			ff := sf.Type.Field(j)
			name := ff.Tag.Get("toml")
			k := Key{
				Name:    section + "." + name,
				Section: section,
				Field:   name,
				Help:    ff.Tag.Get("help"),
				index:   []int{i, j},
			}
			if e := ff.Tag.Get("enum"); e != "" {
				k.Enum = strings.Split(e, ",")
			}
			k.Multiline = ff.Tag.Get("multiline") == "true"
			switch {
			case ff.Type == secretType:
				k.Kind = SecretKind
			case ff.Type == durationType:
				k.Kind = DurationKind
			case ff.Type == dateType:
				k.Kind = DateKind
			case ff.Type.Kind() == reflect.String:
				k.Kind = String
			case ff.Type.Kind() == reflect.Int:
				k.Kind = Int
			case ff.Type.Kind() == reflect.Bool:
				k.Kind = Bool
			case ff.Type.Kind() == reflect.Slice && ff.Type.Elem().Kind() == reflect.String:
				k.Kind = List
			default:
				panic(fmt.Sprintf("config: field %s has a type the key table does not know", k.Name))
			}
			keys = append(keys, k)
		}
	}
	return keys
}

// LookupKey returns the key called name ("smtp.host").
func LookupKey(name string) (Key, error) {
	for _, k := range Keys {
		if k.Name == name {
			return k, nil
		}
	}
	if hint := nearestKey(name); hint != "" {
		return Key{}, fmt.Errorf("unknown key %q (did you mean %q?)", name, hint)
	}
	return Key{}, fmt.Errorf("unknown key %q", name)
}

// nearestKey suggests a key for a misspelt name: same field in another
// section, or a name in the same section that differs in a few letters.
func nearestKey(name string) string {
	section, field, _ := strings.Cut(name, ".")
	best, bestScore := "", 3
	for _, k := range Keys {
		if field != "" && k.Field == field && section != k.Section && !strings.Contains(name, ".") {
			continue
		}
		d := distance(name, k.Name)
		if k.Section == section {
			d = distance(field, k.Field)
		}
		if d < bestScore {
			best, bestScore = k.Name, d
		}
	}
	return best
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (k Key) value(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(k.index)
}

// IsSet reports whether the key has a non-zero value in c.
func (k Key) IsSet(c *Config) bool { return !k.value(c).IsZero() }

// Get returns the value of key in c as text: lists comma-separated, secrets
// as "(set)" or "(unset)".
func (k Key) Get(c *Config) string {
	v := k.value(c)
	switch k.Kind {
	case SecretKind:
		return v.Interface().(Secret).redacted()
	case List:
		return strings.Join(v.Interface().([]string), ", ")
	case Int:
		return strconv.Itoa(int(v.Int()))
	case Bool:
		return strconv.FormatBool(v.Bool())
	case DurationKind:
		if v.IsZero() {
			return ""
		}
		return v.Interface().(Duration).String()
	case DateKind:
		b, _ := v.Interface().(Date).MarshalText()
		return string(b)
	}
	return v.String()
}

// Set parses text as the key's value and stores it in c. Lists take
// comma-separated values or a TOML array (["a", "b"]). The error names the key
// and never quotes a secret.
func (k Key) Set(c *Config, text string) error {
	if err := k.set(c, text); err != nil {
		return &KeyError{Key: k.Name, Err: err}
	}
	return nil
}

func (k Key) set(c *Config, text string) error {
	v := k.value(c)
	if err := k.checkText(text); err != nil {
		return err
	}
	switch k.Kind {
	case String:
		if len(k.Enum) > 0 && !contains(k.Enum, text) {
			return fmt.Errorf("%q is not one of %s", text, strings.Join(k.Enum, ", "))
		}
		v.SetString(text)
	case SecretKind:
		v.Set(reflect.ValueOf(NewSecret(text)))
	case Int:
		n, err := strconv.Atoi(strings.TrimSpace(text))
		if err != nil {
			return fmt.Errorf("%q is not a whole number", text)
		}
		v.SetInt(int64(n))
	case Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(text))
		if err != nil {
			return fmt.Errorf("%q is not true or false", text)
		}
		v.SetBool(b)
	case List:
		l, err := parseList(text)
		if err != nil {
			return err
		}
		for _, e := range l {
			if err := k.checkText(e); err != nil { // ["\u0007"] is not text either
				return err
			}
		}
		v.Set(reflect.ValueOf(l))
	case DurationKind:
		var d Duration
		if err := d.UnmarshalText([]byte(strings.TrimSpace(text))); err != nil {
			return err
		}
		v.Set(reflect.ValueOf(d))
	case DateKind:
		var d Date
		if err := d.UnmarshalText([]byte(strings.TrimSpace(text))); err != nil {
			return err
		}
		v.Set(reflect.ValueOf(d))
	}
	return nil
}

// MaxValueBytes is the longest value a key takes, in bytes: room for a
// PEM key or certificate chain, not for a file pasted by mistake.
const MaxValueBytes = 16 << 10

var errNotUTF8 = errors.New("is not valid UTF-8 text: check the character set of the terminal or file it came from")

// checkText refuses a value no key takes as text: longer than
// MaxValueBytes, not UTF-8 (no TOML file can hold it), or with a control
// character other than a tab. Line breaks are control characters too,
// except in a Multiline key; no value of a key ends up in a mail header,
// a URL or a login with a line break in it. The message never quotes the
// value, which may be a secret.
func (k Key) checkText(text string) error {
	if len(text) > MaxValueBytes {
		return fmt.Errorf("is %d bytes long: a value takes at most %d bytes", len(text), MaxValueBytes)
	}
	if !utf8.ValidString(text) {
		return errNotUTF8
	}
	for _, r := range text {
		switch {
		case r == '\t':
		case r == '\n' || r == '\r':
			if !k.Multiline {
				return errors.New("contains a line break: the value must be one line")
			}
		case r < 0x20 || r == 0x7f:
			return fmt.Errorf("contains the control character U+%04X", r)
		}
	}
	return nil
}

// representable reports why the key's value in c cannot be written to
// mailagent.toml, or nil: a string that is not UTF-8, or longer than
// MaxValueBytes (a list's elements each and together). Control
// characters can be written (as escapes), so a hand-written one survives
// a save.
func (k Key) representable(c *Config) error {
	var texts []string
	switch k.Kind {
	case String:
		texts = []string{k.value(c).String()}
	case SecretKind:
		texts = []string{k.value(c).Interface().(Secret).Reveal()}
	case List:
		texts = k.value(c).Interface().([]string)
	}
	total := 0
	for _, s := range texts {
		total += len(s)
		if !utf8.ValidString(s) {
			return errNotUTF8
		}
	}
	if total > MaxValueBytes {
		return fmt.Errorf("is %d bytes long: a value takes at most %d bytes", total, MaxValueBytes)
	}
	return nil
}

// Unset gives the key its zero value, so the default applies again.
func (k Key) Unset(c *Config) { k.value(c).SetZero() }

func parseList(text string) ([]string, error) {
	text = strings.TrimSpace(text)
	if strings.HasPrefix(text, "[") {
		var doc struct{ V []string }
		if _, err := decodeStrict("v = "+text, &doc); err != nil {
			return nil, fmt.Errorf("%s is not a list of strings", text)
		}
		return doc.V, nil
	}
	var l []string
	for _, s := range strings.Split(text, ",") {
		if s = strings.TrimSpace(s); s != "" {
			l = append(l, s)
		}
	}
	return l, nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// Sections lists the section names in file order.
func Sections() []string {
	var s []string
	for _, k := range Keys {
		if len(s) == 0 || s[len(s)-1] != k.Section {
			s = append(s, k.Section)
		}
	}
	return s
}

// KeyError is a problem with one key's value.
type KeyError struct {
	Key string
	Err error
	// Missing is set when the problem is that a value is needed and not
	// set: it lists the keys any one of which would supply it (Key, and
	// its alternatives: "client_secret or private_key"). The
	// configuration is then incomplete rather than wrong, and a change may
	// leave it so for a later one (see Change.Apply). Missing is empty
	// when a value is wrong.
	Missing []string
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

// sortedKeyErrors orders problems by key table order.
func sortedKeyErrors(errs []*KeyError) []*KeyError {
	order := map[string]int{}
	for i, k := range Keys {
		order[k.Name] = i
	}
	sort.SliceStable(errs, func(i, j int) bool { return order[errs[i].Key] < order[errs[j].Key] })
	return errs
}
