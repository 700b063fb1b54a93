package alarm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// MaxJSONBody is the largest body ParseJSON reads.
const MaxJSONBody = 64 << 10

// ErrTooLarge is wrapped by the errors of parsers given a body larger than
// their limit (an HTTP handler answers 413).
var ErrTooLarge = errors.New("alarm: body too large")

// ParseJSON reads one alarm object or an array of them, as POST /alarm and
// the local socket take them:
//
//	{"severity": "major", "code": "LINK-DOWN", "source": "port 3",
//	 "text": "no carrier", "time": "2026-05-01T12:00:00Z",
//	 "details": {"speed": "1000"}}
//
// severity and code are required; time (RFC 3339) defaults to now; details is
// an object of strings or an array of {"key": …, "value": …}. An unknown
// field, a value of the wrong type, a code that is not one word or a part
// beyond the model's limits is an error naming the field, with the index
// for arrays ("[2].time: …"). Control characters are taken out of source and
// details, and out of text except newlines and tabs. The body may hold at
// most MaxJSONBody bytes.
func ParseJSON(r io.Reader) ([]Alarm, error) {
	as, err := parseJSON(r, time.Now())
	if err != nil {
		return nil, fmt.Errorf("parse alarm json: %w", err)
	}
	return as, nil
}

func parseJSON(r io.Reader, now time.Time) ([]Alarm, error) {
	b, err := readBody(r, MaxJSONBody)
	if err != nil {
		return nil, err
	}
	raw, err := oneValue(b)
	if err != nil {
		return nil, err
	}
	if raw[0] != '[' {
		a, err := jsonAlarm(raw, "", now)
		if err != nil {
			return nil, err
		}
		return []Alarm{a}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("body: the array holds no alarm")
	}
	as := make([]Alarm, 0, len(items))
	for i, item := range items {
		a, err := jsonAlarm(item, fmt.Sprintf("[%d]", i), now)
		if err != nil {
			return nil, err
		}
		as = append(as, a)
	}
	return as, nil
}

// readBody reads all of r, refusing more than max bytes.
func readBody(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	return b, nil
}

// oneValue checks that b holds exactly one JSON object or array.
func oneValue(b []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("body is empty")
		}
		return nil, fmt.Errorf("body is not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("body: data after the JSON value at byte %d", dec.InputOffset())
	}
	if raw[0] != '{' && raw[0] != '[' {
		return nil, fmt.Errorf("body is not a JSON object or array")
	}
	return raw, nil
}

// fieldPath names field inside path: "time", "[2].time", "alerts[2].labels".
func fieldPath(path, field string) string {
	switch {
	case path == "":
		return field
	case field == "" || field[0] == '[':
		return path + field
	}
	return path + "." + field
}

// jsonObject reads raw as an object whose fields must all be in known
// (unless known is nil). Unknown fields are reported in sorted order so the
// error does not depend on map order.
func jsonObject(raw json.RawMessage, path string, known []string) (map[string]json.RawMessage, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("%s: %s", nonEmpty(path, "body"), "not an object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", nonEmpty(path, "body"), err)
	}
	if known != nil {
		var unknown []string
		for k := range m {
			if !slices.Contains(known, k) {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			slices.Sort(unknown)
			if path == "" {
				return nil, fmt.Errorf("unknown field %q", unknown[0])
			}
			return nil, fmt.Errorf("%s: unknown field %q", path, unknown[0])
		}
	}
	return m, nil
}

func nonEmpty(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

// jsonString reads m[field] as a string; a missing field or null is "",
// false.
func jsonString(m map[string]json.RawMessage, path, field string) (string, bool, error) {
	raw, ok := m[field]
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, fmt.Errorf("%s: not a string", fieldPath(path, field))
	}
	return s, true, nil
}

// jsonStrings reads m[field] as an object of strings, in the order of the
// body (a missing field or null is empty).
func jsonStrings(m map[string]json.RawMessage, path, field string) ([][2]string, error) {
	raw, ok := m[field]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	p := fieldPath(path, field)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("%s: not an object", p)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	var kvs [][2]string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %w", fieldPath(p, k), err)
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("%s: not a string", fieldPath(p, k))
		}
		kvs = append(kvs, [2]string{k, s})
	}
	return kvs, nil
}

// jsonAlarmFields are the fields of an alarm object.
var jsonAlarmFields = append([]string{"details"}, strictFields...)

func jsonAlarm(raw json.RawMessage, path string, now time.Time) (Alarm, error) {
	m, err := jsonObject(raw, path, jsonAlarmFields)
	if err != nil {
		return Alarm{}, err
	}
	var in strictInput
	for _, name := range strictFields {
		if *in.field(name), _, err = jsonString(m, path, name); err != nil {
			return Alarm{}, err
		}
	}
	a, field, err := in.alarm(now)
	if err != nil {
		return Alarm{}, fmt.Errorf("%s: %w", fieldPath(path, field), err)
	}
	d := details{strict: true}
	if err := jsonDetails(m["details"], fieldPath(path, "details"), &d); err != nil {
		return Alarm{}, err
	}
	a.Details = d.result()
	return a, nil
}

// jsonDetails reads details as an object of strings or an array of
// {"key", "value"} objects.
func jsonDetails(raw json.RawMessage, path string, d *details) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if raw[0] == '{' {
		kvs, err := jsonStrings(map[string]json.RawMessage{"": raw}, path, "")
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			if err := d.add(kv[0], kv[1]); err != nil {
				return fmt.Errorf("%s: %w", fieldPath(path, kv[0]), err)
			}
		}
		return nil
	}
	if raw[0] != '[' {
		return fmt.Errorf("%s: not an object or an array", path)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for i, item := range items {
		p := fmt.Sprintf("%s[%d]", path, i)
		m, err := jsonObject(item, p, []string{"key", "value"})
		if err != nil {
			return err
		}
		k, _, err := jsonString(m, p, "key")
		if err != nil {
			return err
		}
		v, _, err := jsonString(m, p, "value")
		if err != nil {
			return err
		}
		if err := d.add(k, v); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// strictInput is an alarm as the formats made for mailagent give it, before
// it is checked: JSON and form.
type strictInput struct {
	severity, code, source, text, time string
}

// strictFields are the names of strictInput's fields in JSON and forms.
var strictFields = []string{"severity", "code", "source", "text", "time"}

// field returns the field called name.
func (in *strictInput) field(name string) *string {
	switch name {
	case "severity":
		return &in.severity
	case "code":
		return &in.code
	case "source":
		return &in.source
	case "text":
		return &in.text
	case "time":
		return &in.time
	}
	panic("alarm: no input field " + name)
}

// alarm checks the input and builds the alarm without details; an error
// comes with the name of the field at fault.
func (in strictInput) alarm(now time.Time) (Alarm, string, error) {
	a := Alarm{Time: now}
	if strings.TrimSpace(in.severity) == "" {
		return Alarm{}, "severity", fmt.Errorf("missing")
	}
	sev, err := ParseSeverity(in.severity)
	if err != nil {
		return Alarm{}, "severity", fmt.Errorf("%q is not one of %s", in.severity, strings.Join(severityNames[:], ", "))
	}
	a.Severity = sev
	a.Code = strings.TrimSpace(in.code)
	if err := checkCode(a.Code); err != nil {
		return Alarm{}, "code", err
	}
	a.Source = cleanLine(in.source)
	if len(a.Source) > MaxSource {
		return Alarm{}, "source", fmt.Errorf("longer than %d bytes", MaxSource)
	}
	a.Text = cleanText(in.text)
	if len(a.Text) > MaxText {
		return Alarm{}, "text", fmt.Errorf("longer than %d bytes", MaxText)
	}
	if t := strings.TrimSpace(in.time); t != "" {
		pt, set, err := parseTime(t)
		if err != nil {
			return Alarm{}, "time", err
		}
		if set {
			a.Time = pt
		}
	}
	return a, "", nil
}
