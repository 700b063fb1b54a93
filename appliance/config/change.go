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
// must block the change:
//   - a value that does not parse, an unknown or a refused key;
//   - a wrong value (Validate) of a key the change touches, or one the
//     change brings to any other key;
//   - a needed value the change takes away: a key, or a default, that
//     had a value and is now missing (KeyError.Missing).
//
// remaining are the problems that do not block it: those c had before
// that the change does not touch, and keys that are needed but were not
// set before either, so that a configuration can be built up one change
// at a time (smtp.auth = oauth2 before the mode, the mode before its
// keys). When errs is not empty, c is half changed and must be thrown
// away. The web page's Save, the console's commit and config set and
// unset all judge their changes with Apply.
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
			blocks := touched[e.Key] || !had[e.Key+"\x00"+msg]
			if len(e.Missing) > 0 {
				blocks = tookAway(e.Missing, &before)
			}
			if blocks {
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

// tookAway reports whether any of keys has a value in before: a problem
// that they are missing now was brought by the change.
func tookAway(keys []string, before *Config) bool {
	for _, name := range keys {
		if k, err := LookupKey(name); err == nil && k.IsSet(before) {
			return true
		}
	}
	return false
}
