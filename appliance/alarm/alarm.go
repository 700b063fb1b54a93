// Package alarm is what the box reports: an alarm or event with a severity,
// a code, where it comes from and what happened.
//
// It reads alarms from the ways they come in:
//   - ParseJSON and ParseForm: POST /alarm and the local socket;
//   - ParseSyslog: syslog RFC 5424 and RFC 3164, and SyslogFrames for the
//     octet-counted and newline framing of RFC 6587 on TCP;
//   - ParseAlertmanager: the Prometheus Alertmanager webhook, version 4.
//
// Every alarm a parser returns passes Validate.
package alarm

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Severity orders alarms from Cleared (an earlier alarm is over) through Info
// up to Critical.
type Severity int

// The severities, lowest first.
const (
	Cleared Severity = iota
	Info
	Warning
	Minor
	Major
	Critical
)

var severityNames = [...]string{"cleared", "info", "warning", "minor", "major", "critical"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// CountsText lists counts per severity, highest first, leaving out zeros:
// "3 major, 40 info".
func CountsText(c [Critical + 1]int) string {
	var parts []string
	for s := Critical; s >= Cleared; s-- {
		if c[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

// ParseSeverity reads a severity name, in any case.
func ParseSeverity(name string) (Severity, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	for i, s := range severityNames {
		if n == s {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("severity %q is not one of %s", name, strings.Join(severityNames[:], ", "))
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Alarm is one alarm or event.
type Alarm struct {
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Severity is how bad it is; Cleared ends an earlier alarm with the same
	// source and code.
	Severity Severity `json:"severity"`
	// Code identifies the kind of alarm, e.g. "LINK-DOWN".
	Code string `json:"code"`
	// Source is what raised it: a process, a port, another box.
	Source string `json:"source,omitempty"`
	// Text says what happened, in words.
	Text string `json:"text"`
	// Details are optional key/value facts.
	Details []Detail `json:"details,omitempty"`
}

// Detail is one key/value fact about an alarm.
type Detail struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Limits on the size of an alarm's parts, so one alarm cannot fill memory or
// a mail.
const (
	MaxCode    = 64
	MaxSource  = 128
	MaxText    = 4096
	MaxDetails = 32
	MaxDetail  = 512
)

// Validate checks an alarm and names the field that is wrong.
func (a *Alarm) Validate() error {
	switch {
	case a.Code == "":
		return fmt.Errorf("alarm code is empty")
	case len(a.Code) > MaxCode:
		return fmt.Errorf("alarm code is longer than %d bytes", MaxCode)
	case strings.ContainsFunc(a.Code, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("alarm code %q contains spaces or control characters", a.Code)
	case len(a.Source) > MaxSource:
		return fmt.Errorf("alarm source is longer than %d bytes", MaxSource)
	case len(a.Text) > MaxText:
		return fmt.Errorf("alarm text is longer than %d bytes", MaxText)
	case len(a.Details) > MaxDetails:
		return fmt.Errorf("alarm has more than %d details", MaxDetails)
	case a.Severity < Cleared || a.Severity > Critical:
		return fmt.Errorf("alarm severity %d is out of range", int(a.Severity))
	}
	for _, f := range []struct{ name, v string }{{"code", a.Code}, {"source", a.Source}, {"text", a.Text}} {
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("alarm %s is not valid UTF-8", f.name)
		}
	}
	for _, d := range a.Details {
		if d.Key == "" || len(d.Key)+len(d.Value) > MaxDetail {
			return fmt.Errorf("alarm detail %q is empty or longer than %d bytes", d.Key, MaxDetail)
		}
	}
	return nil
}

// ParseDetail reads "key=value".
func ParseDetail(s string) (Detail, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return Detail{}, fmt.Errorf("detail %q is not key=value", s)
	}
	return Detail{Key: strings.TrimSpace(k), Value: v}, nil
}
