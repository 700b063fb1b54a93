package alarm

import (
	"fmt"
	"net/url"
	"slices"
	"time"
)

// ParseForm reads an alarm from HTML form fields (POST /alarm with
// application/x-www-form-urlencoded): severity, code, source, text, time
// (RFC 3339, default now) and detail=key=value, repeated. The rules of
// ParseJSON apply; in addition a field other than detail may appear only
// once, and bytes that are not UTF-8 become U+FFFD (except in code, where
// they are an error).
func ParseForm(v url.Values) (Alarm, error) {
	a, err := parseForm(v, time.Now())
	if err != nil {
		return Alarm{}, fmt.Errorf("parse alarm form: %w", err)
	}
	return a, nil
}

func parseForm(v url.Values, now time.Time) (Alarm, error) {
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if k != "detail" && !slices.Contains(strictFields, k) {
			return Alarm{}, fmt.Errorf("unknown field %q", k)
		}
	}
	var in strictInput
	for _, name := range strictFields {
		switch vs := v[name]; len(vs) {
		case 0:
		case 1:
			*in.field(name) = vs[0]
		default:
			return Alarm{}, fmt.Errorf("%s: given %d times", name, len(vs))
		}
	}
	a, field, err := in.alarm(now)
	if err != nil {
		return Alarm{}, fmt.Errorf("%s: %w", field, err)
	}
	d := details{strict: true}
	for _, s := range v["detail"] {
		kv, err := ParseDetail(s)
		if err != nil {
			return Alarm{}, fmt.Errorf("detail: %q is not key=value", s)
		}
		if err := d.add(kv.Key, kv.Value); err != nil {
			return Alarm{}, fmt.Errorf("detail: %w", err)
		}
	}
	a.Details = d.result()
	return a, nil
}
