package config

import (
	"fmt"
	"io"
	"strings"

	"mailagent/board"
)

// CheckSection reports an error naming the sections when s is not one.
func CheckSection(s string) error {
	for _, name := range Sections() {
		if name == s {
			return nil
		}
	}
	return fmt.Errorf("no section %q (sections: %s)", s, strings.Join(Sections(), ", "))
}

// Show writes written, with board p's defaults filled in, as TOML-like
// lines for a person: every key of section (every section when ""), a
// default marked as such, a secret as set or unset and never its value.
// skip, if set, leaves out the keys it names.
func Show(w io.Writer, written *Config, p board.Profile, section string, skip func(name string) bool) error {
	if section != "" {
		if err := CheckSection(section); err != nil {
			return err
		}
	}
	c := written.WithDefaults(p)
	cur := ""
	for _, k := range Keys {
		if section != "" && k.Section != section || skip != nil && skip(k.Name) {
			continue
		}
		if k.Section != cur {
			if cur != "" {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "[%s]\n", k.Section)
			cur = k.Section
		}
		note := ""
		if !k.IsSet(written) && k.IsSet(&c) {
			note = "  # default"
		}
		if _, err := fmt.Fprintf(w, "%s = %s%s\n", k.Field, showValue(k, k.Get(&c)), note); err != nil {
			return err
		}
	}
	return nil
}

func showValue(k Key, v string) string {
	switch k.Kind {
	case Int, Bool:
		return v
	case List:
		if v == "" {
			return "[]"
		}
		parts := strings.Split(v, ", ")
		for i, p := range parts {
			parts[i] = fmt.Sprintf("%q", p)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprintf("%q", v)
}
