package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Secret is a configuration value that must never be shown: a password, a
// client secret, a private key. It prints as "(set)" or "(unset)" in every
// format, log record and JSON document; only the TOML codec and the code that
// uses the secret call Reveal.
type Secret struct{ v string }

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{v: s} }

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return s.v }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s.v != "" }

func (s Secret) redacted() string {
	if s.v == "" {
		return "(unset)"
	}
	return "(set)"
}

// String returns "(set)" or "(unset)".
func (s Secret) String() string { return s.redacted() }

// GoString returns "(set)" or "(unset)", so %#v does not print the secret.
func (s Secret) GoString() string { return s.redacted() }

// Format prints "(set)" or "(unset)" for every verb.
func (s Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, s.redacted()) }

// LogValue keeps the secret out of logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.redacted()) }

// MarshalJSON keeps the secret out of JSON: "(set)" or "(unset)".
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.redacted()) }

// MarshalText keeps the secret out of any other text encoding.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.redacted()), nil }

// MarshalTOML writes the secret itself, as a TOML basic string that reads
// back as the secret (QuoteTOML): mailagent.toml and tokens.toml are where
// secrets live. A secret that is not UTF-8 cannot be written.
func (s Secret) MarshalTOML() ([]byte, error) {
	q, err := QuoteTOML(s.v)
	if err != nil {
		return nil, errors.New("the secret " + err.Error())
	}
	return []byte(q), nil
}

// UnmarshalText reads the secret from the TOML file.
func (s *Secret) UnmarshalText(b []byte) error { s.v = string(b); return nil }

// Duration is a time.Duration written in Go's syntax ("90s", "24h"). A
// duration that was written, even "0s", is set; only an absent one takes the
// default.
type Duration struct {
	time.Duration
	set bool
}

// NewDuration returns d as a set Duration.
func NewDuration(d time.Duration) Duration { return Duration{Duration: d, set: true} }

// MarshalText writes the duration in Go's syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a duration in Go's syntax; negative durations are refused.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (examples: \"90s\", \"10m\", \"24h\")", b)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", b)
	}
	d.Duration, d.set = v, true
	return nil
}

// Date is a calendar day, written YYYY-MM-DD.
type Date struct{ time.Time }

const dateLayout = "2006-01-02"

// MarshalText writes the date as YYYY-MM-DD, or nothing when unset.
func (d Date) MarshalText() ([]byte, error) {
	if d.IsZero() {
		return nil, nil
	}
	return []byte(d.Format(dateLayout)), nil
}

// UnmarshalText reads a date written YYYY-MM-DD.
func (d *Date) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		d.Time = time.Time{}
		return nil
	}
	v, err := time.Parse(dateLayout, string(b))
	if err != nil {
		return fmt.Errorf("%q is not a date (YYYY-MM-DD)", b)
	}
	d.Time = v
	return nil
}

// UnmarshalTOML accepts both a string and a TOML local date (2027-03-31).
func (d *Date) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		return d.UnmarshalText([]byte(v))
	case time.Time:
		d.Time = time.Date(v.Year(), v.Month(), v.Day(), 0, 0, 0, 0, time.UTC)
		return nil
	}
	return fmt.Errorf("%v is not a date (YYYY-MM-DD)", v)
}

// UnmarshalTOML accepts a duration string only.
func (d *Duration) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("%v is not a duration: write it as a string such as \"90s\" or \"24h\"", v)
	}
	return d.UnmarshalText([]byte(s))
}

// UnmarshalTOML accepts a string only, so a number or a table is refused by name.
func (s *Secret) UnmarshalTOML(v any) error {
	str, ok := v.(string)
	if !ok {
		return fmt.Errorf("expected a string, got %T", v)
	}
	s.v = str
	return nil
}
