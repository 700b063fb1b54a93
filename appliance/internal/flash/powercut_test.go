package flash_test

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"mailagent/appliance/internal/flash"
	"mailagent/appliance/internal/flash/powercut"
)

// TestPowerCut cuts the power after every change Save, Replace and
// MarkGood make, with each loss of the model, and checks what comes back:
// the file holds the old bytes or the new ones (or is still missing, when
// there was none), never a mix, nothing or a damaged file; the good copy
// likewise; and the next Save works and leaves no temporary file.
func TestPowerCut(t *testing.T) {
	const path = "/data/mailagent.toml"
	good := flash.GoodPath(path)
	old, new := []byte("old = 1\n"), []byte("new = 22\n")
	withFile := func() *powercut.FS {
		f := powercut.New()
		if err := flash.Save(f, path, old); err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name string
		base *powercut.FS
		op   func(fsys flash.FS) error
		// What path and its good copy may hold after a cut ("" missing).
		file, goodCopy []string
	}{
		{"Save over a file", withFile(), func(f flash.FS) error { return flash.Save(f, path, new) },
			[]string{string(old), string(new)}, []string{string(old), string(new)}},
		{"Save on a new box", powercut.New(), func(f flash.FS) error { return flash.Save(f, path, new) },
			[]string{"", string(new)}, []string{"", string(new)}},
		{"Replace", withFile(), func(f flash.FS) error { return flash.Replace(f, path, new) },
			[]string{string(old), string(new)}, []string{string(old)}},
		{"MarkGood", withFile(), func(f flash.FS) error { return flash.MarkGood(f, path, new) },
			[]string{string(old)}, []string{string(old), string(new)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := func(f flash.FS, p string) string {
				b, err := flash.ReadFile(f, p)
				if errors.Is(err, fs.ErrNotExist) {
					return ""
				}
				if err != nil {
					t.Fatalf("read %s: %v", p, err)
				}
				return string(b)
			}
			n, err := powercut.Enumerate(tt.base, func(f *powercut.FS) error { return tt.op(f) },
				func(c powercut.Cut, after *powercut.FS, err error) {
					if got := read(after, path); !slices.Contains(tt.file, got) {
						t.Errorf("%s: %s holds %q, want one of %q", c, path, got, tt.file)
					}
					if got := read(after, good); !slices.Contains(tt.goodCopy, got) {
						t.Errorf("%s: %s holds %q, want one of %q", c, good, got, tt.goodCopy)
					}
					if data, dmg, err := flash.Load(after, path, nil); dmg != nil || (err != nil && !errors.Is(err, fs.ErrNotExist)) {
						t.Errorf("%s: Load = %q, %v, %v; want no damage", c, data, dmg, err)
					}
					if err := flash.Save(after, path, []byte("later")); err != nil {
						t.Errorf("%s: the next Save = %v", c, err)
					}
					for name := range after.Files() {
						if strings.HasPrefix(name, "/data/.") {
							t.Errorf("%s: %s left after the next Save", c, name)
						}
					}
				})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d cut points, %d restarts", tt.name, n, n*len(powercut.Losses))
		})
	}
}
