package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailagent/appliance/internal/flash"
)

// TestLoadFindsDamage is finding M6 for mailagent.toml: a file Save wrote,
// cut short at every byte (at a line end too, where it still parses, and
// to nothing), or removed, is damaged and its good copy is used; the
// damage is named. Before, a cut at a line end and an empty file were
// taken as the configuration, and a missing one as a new box.
func TestLoadFindsDamage(t *testing.T) {
	c, err := Decode([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := Save(path, &c); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lineEnds := 0
	// Every cut but the last line end's, which loses nothing.
	for n := range len(data) - 1 {
		if n > 0 && data[n-1] == '\n' {
			lineEnds++
		}
		if err := os.WriteFile(path, data[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := Load(path)
		if err != nil {
			t.Fatalf("Load of the first %d bytes = %v", n, err)
		}
		if f.Damaged == nil || f.Damaged.Fallback != flash.GoodPath(path) || !Equal(&f.Config, &c) {
			t.Fatalf("Load of the first %d bytes (%q...): damaged %v; want the good copy used", n, tail(data[:n]), f.Damaged)
		}
	}
	t.Logf("%d cuts, %d of them at a line end: each found", len(data)-1, lineEnds)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil || f.Missing || f.Damaged == nil || !strings.Contains(f.Damaged.Error(), "missing") || !Equal(&f.Config, &c) {
		t.Fatalf("Load of a removed file beside its good copy = %+v, %v; want the good copy, damaged", f, err)
	}
}

func tail(b []byte) string {
	if len(b) > 30 {
		b = b[len(b)-30:]
	}
	return string(b)
}

// TestMarksLeaveHandEditsAlone: a file written by hand (no marks) loads,
// and so does one Save wrote and a person then edited between the marks
// or added to after them; only a missing last line counts as cut short.
func TestMarksLeaveHandEditsAlone(t *testing.T) {
	var c Config
	c.SMTP.Host = "smtp.example.test"
	saved := string(Mark(FileName, Encode(&c)))
	first, last := marks(FileName)
	for _, tt := range []struct {
		name, doc string
		cut       bool
	}{
		{"by hand", "[smtp]\nhost = \"smtp.example.test\"\n", false},
		{"by hand, first line of the README's example", "# mailagent.toml\n[smtp]\nhost = \"smtp.example.test\"\n", false},
		{"saved", saved, false},
		{"saved, CRLF", strings.ReplaceAll(saved, "\n", "\r\n"), false},
		{"edited between the marks", strings.Replace(saved, "[smtp]\n", "[smtp]\n# the relay\nport = 25\n", 1), false},
		{"added to after the end", saved + "[device]\nname = \"gw\"\n", false},
		{"last line gone", strings.TrimSuffix(saved, last+"\n"), true},
		{"last line changed", strings.Replace(saved, last, "# end", 1), true},
		{"only the first line", first + "\n", true},
		{"the first line cut", first[:9], true},
	} {
		err := CheckMarks(FileName, []byte(tt.doc))
		if (err != nil) != tt.cut {
			t.Errorf("%s: CheckMarks = %v, want cut short %v", tt.name, err, tt.cut)
		}
		if err != nil && !strings.Contains(err.Error(), "# end of mailagent.toml") {
			t.Errorf("%s: CheckMarks = %v, want the missing line named", tt.name, err)
		}
	}
}
