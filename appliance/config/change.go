package config

import (
	"errors"
	"slices"
	"strings"

	"mailagent/board"
)

// Change is one transaction of key changes: the web page's Save and the
// console's commit both make one.
type Change struct {
	// Set maps keys to their new values. An empty value unsets a key,
	// except a secret's, which keeps the stored secret.
	Set map[string]string
	// Unset lists keys to return to their defaults.
	Unset []string
	// Refuse, if set, says why a key may not be changed this way ("" when
	// it may).
	Refuse func(name string) string
}

// Apply makes the change on c, the configuration as written, and judges
// the result with board p's defaults filled in. errs, by key, are what
// must block the change: a value that does not parse, an unknown or
// refused key, a problem with a key the change touches, and a problem the
// change brings to any other key. remaining are the problems c had before
// that the change does not touch: they do not block it. When errs is not
// empty, c is half changed and must be thrown away.
func (ch Change) Apply(c *Config, p board.Profile) (errs map[string]string, remaining Problems) {
	errs = map[string]string{}
	before := c.WithDefaults(p)
	had := map[string]bool{}
	if prob, ok := AsProblems(Validate(&before)); ok {
		for _, e := range prob {
			had[e.Key+"\x00"+e.Err.Error()] = true
		}
	}
	touched := map[string]bool{}
	lookup := func(name string) (Key, bool) {
		k, err := LookupKey(name)
		if err != nil {
			errs[name] = err.Error()
			return k, false
		}
		if ch.Refuse != nil {
			if why := ch.Refuse(name); why != "" {
				errs[name] = why
				return k, false
			}
		}
		touched[name] = true
		return k, true
	}
	names := make([]string, 0, len(ch.Set))
	for name := range ch.Set {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		val := ch.Set[name]
		k, ok := lookup(name)
		if !ok {
			continue
		}
		switch {
		case val == "" && k.Kind == SecretKind:
			// an empty secret keeps the stored one
		case strings.TrimSpace(val) == "" && k.Kind != SecretKind:
			k.Unset(c)
		default:
			if err := k.Set(c, val); err != nil {
				var ke *KeyError
				if errors.As(err, &ke) {
					errs[name] = ke.Err.Error()
				} else {
					errs[name] = err.Error()
				}
			}
		}
	}
	for _, name := range ch.Unset {
		if k, ok := lookup(name); ok {
			k.Unset(c)
		}
	}
	parsed := len(errs) == 0
	after := c.WithDefaults(p)
	if prob, ok := AsProblems(Validate(&after)); ok {
		for _, e := range prob {
			msg := e.Err.Error()
			if touched[e.Key] || !had[e.Key+"\x00"+msg] {
				if _, ok := errs[e.Key]; ok && !parsed {
					continue // its value did not parse: that says enough
				}
				if prev, ok := errs[e.Key]; ok {
					msg = prev + "; " + msg
				}
				errs[e.Key] = msg
			} else {
				remaining = append(remaining, e)
			}
		}
	}
	return errs, remaining
}
