package powercut

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"mailagent/appliance/internal/flash"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, f *FS, name, data string, sync bool) {
	t.Helper()
	h, err := f.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	must(t, err)
	if _, err := h.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if sync {
		must(t, h.Sync())
	}
	must(t, h.Close())
}

func syncDir(t *testing.T, f *FS, name string) {
	t.Helper()
	d, err := f.OpenFile(name, os.O_RDONLY, 0)
	must(t, err)
	must(t, d.Sync())
	must(t, d.Close())
}

// content is what name holds on f, or "<missing>".
func content(t *testing.T, f *FS, name string) string {
	t.Helper()
	b, err := flash.ReadFile(f, name)
	if errors.Is(err, fs.ErrNotExist) {
		return "<missing>"
	}
	must(t, err)
	return string(b)
}

// TestDurability checks what each loss keeps of each kind of change that
// was not made durable, and that fsync, a directory fsync and syncfs make
// it so.
func TestDurability(t *testing.T) {
	// base: /d (on flash) holding old = "old" (on flash).
	base := func(t *testing.T) *FS {
		f := New()
		must(t, f.Mkdir("/d", 0o700))
		syncDir(t, f, "/")
		create(t, f, "/d/old", "old", true)
		syncDir(t, f, "/d")
		return f
	}
	type want map[Loss]string // name: content after the cut, per loss
	tests := []struct {
		name   string
		change func(t *testing.T, f *FS)
		file   string
		want   want
	}{
		{"unsynced new file, directory synced", func(t *testing.T, f *FS) {
			create(t, f, "/d/new", "0123456789", false)
			syncDir(t, f, "/d")
		}, "/d/new", want{Lost: "", Torn: "01234", Journaled: ""}},
		{"synced new file, directory not synced", func(t *testing.T, f *FS) {
			create(t, f, "/d/new", "0123456789", true)
		}, "/d/new", want{Lost: "<missing>", Torn: "<missing>", Journaled: "0123456789"}},
		{"synced new file, directory synced", func(t *testing.T, f *FS) {
			create(t, f, "/d/new", "0123456789", true)
			syncDir(t, f, "/d")
		}, "/d/new", want{Lost: "0123456789", Torn: "0123456789", Journaled: "0123456789"}},
		{"rename over, directory not synced", func(t *testing.T, f *FS) {
			create(t, f, "/d/tmp", "new", true)
			must(t, f.Rename("/d/tmp", "/d/old"))
		}, "/d/old", want{Lost: "old", Torn: "old", Journaled: "new"}},
		{"rename over, directory synced", func(t *testing.T, f *FS) {
			create(t, f, "/d/tmp", "new", true)
			must(t, f.Rename("/d/tmp", "/d/old"))
			syncDir(t, f, "/d")
		}, "/d/old", want{Lost: "new", Torn: "new", Journaled: "new"}},
		{"rename of unsynced data, directory synced", func(t *testing.T, f *FS) {
			create(t, f, "/d/tmp", "new data", false)
			must(t, f.Rename("/d/tmp", "/d/old"))
			syncDir(t, f, "/d")
		}, "/d/old", want{Lost: "", Torn: "new ", Journaled: ""}},
		{"remove, directory not synced", func(t *testing.T, f *FS) {
			must(t, f.Remove("/d/old"))
		}, "/d/old", want{Lost: "old", Torn: "old", Journaled: "<missing>"}},
		{"remove, directory synced", func(t *testing.T, f *FS) {
			must(t, f.Remove("/d/old"))
			syncDir(t, f, "/d")
		}, "/d/old", want{Lost: "<missing>", Torn: "<missing>", Journaled: "<missing>"}},
		{"append to a synced file", func(t *testing.T, f *FS) {
			h, err := f.OpenFile("/d/old", os.O_WRONLY|os.O_APPEND, 0)
			must(t, err)
			_, err = h.Write([]byte("+more"))
			must(t, err)
			must(t, h.Close())
		}, "/d/old", want{Lost: "old", Torn: "old+m", Journaled: "old"}},
		{"new directory, parent not synced", func(t *testing.T, f *FS) {
			must(t, f.Mkdir("/d/sub", 0o700))
			create(t, f, "/d/sub/x", "x", true)
			syncDir(t, f, "/d/sub")
		}, "/d/sub/x", want{Lost: "<missing>", Torn: "<missing>", Journaled: "x"}},
		{"syncfs", func(t *testing.T, f *FS) {
			must(t, f.Mkdir("/d/sub", 0o700))
			create(t, f, "/d/sub/x", "x", false)
			h, err := f.OpenFile("/d", os.O_RDONLY, 0)
			must(t, err)
			must(t, h.SyncFS())
			must(t, h.Close())
		}, "/d/sub/x", want{Lost: "x", Torn: "x", Journaled: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := base(t)
			tt.change(t, f)
			for _, loss := range Losses {
				if got := content(t, f.Restart(loss), tt.file); got != tt.want[loss] {
					t.Errorf("%s: %s holds %q, want %q", loss, tt.file, got, tt.want[loss])
				}
			}
			if got := content(t, f.Restart(Lost), "/d/old"); tt.file != "/d/old" && got != "old" {
				t.Errorf("/d/old holds %q, want it untouched", got)
			}
		})
	}
}

func TestModeDurable(t *testing.T) {
	f := New()
	create(t, f, "/a", "a", true)
	syncDir(t, f, "/")
	must(t, f.Chmod("/a", 0o644))
	fi, err := f.Restart(Lost).Stat("/a")
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after a cut before fsync, want 0600", fi.Mode())
	}
	h, err := f.OpenFile("/a", os.O_RDONLY, 0)
	must(t, err)
	must(t, h.Sync())
	fi, err = f.Restart(Lost).Stat("/a")
	must(t, err)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v after fsync, want 0644", fi.Mode())
	}
}

// TestCut: the change the cut is armed for takes effect, and every call
// after it fails with ErrPowerCut; the restarted file system works.
func TestCut(t *testing.T) {
	f := New()
	f.CutAfter(2)
	h, err := f.OpenFile("/a", os.O_WRONLY|os.O_CREATE, 0o600) // 1: create
	must(t, err)
	if _, err := h.Write([]byte("ab")); err != nil { // 2: write, then the cut
		t.Fatal(err)
	}
	if !f.Off() {
		t.Fatal("the power is still on after the change the cut was armed for")
	}
	if got, want := len(f.Ops()), 2; got != want {
		t.Fatalf("%d changes recorded, want %d", got, want)
	}
	if _, err := h.Write([]byte("c")); !errors.Is(err, ErrPowerCut) {
		t.Errorf("Write after the cut = %v, want ErrPowerCut", err)
	}
	if err := h.Sync(); !errors.Is(err, ErrPowerCut) {
		t.Errorf("Sync after the cut = %v, want ErrPowerCut", err)
	}
	if _, err := f.Stat("/a"); !errors.Is(err, ErrPowerCut) {
		t.Errorf("Stat after the cut = %v, want ErrPowerCut", err)
	}
	if err := f.Rename("/a", "/b"); !errors.Is(err, ErrPowerCut) {
		t.Errorf("Rename after the cut = %v, want ErrPowerCut", err)
	}
	if got := f.Files()["/a"]; string(got) != "ab" {
		t.Errorf("before the restart /a reads %q, want what was written before the cut", got)
	}
	r := f.Restart(Lost)
	if _, err := r.Stat("/a"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after the restart Stat(/a) = %v, want it gone (its directory was never synced)", err)
	}
	create(t, r, "/b", "b", true)
	if len(r.Ops()) != 3 {
		t.Errorf("the restarted file system records %q, want only its own changes", r.Ops())
	}
}

func TestFlock(t *testing.T) {
	f := New()
	must(t, f.Mkdir("/d", 0o700))
	a, err := f.OpenFile("/d", os.O_RDONLY, 0)
	must(t, err)
	b, err := f.OpenFile("/d", os.O_RDONLY, 0)
	must(t, err)
	must(t, a.Flock(syscall.LOCK_EX))
	if err := b.Flock(syscall.LOCK_EX | syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("second LOCK_EX|LOCK_NB = %v, want EWOULDBLOCK", err)
	}
	got := make(chan error, 1)
	go func() { got <- b.Flock(syscall.LOCK_EX) }()
	must(t, a.Flock(syscall.LOCK_UN))
	must(t, <-got)
	// Closing releases; a cut wakes a waiter with ErrPowerCut.
	must(t, b.Close())
	must(t, a.Flock(syscall.LOCK_EX))
	c, err := f.OpenFile("/d", os.O_RDONLY, 0)
	must(t, err)
	go func() { got <- c.Flock(syscall.LOCK_EX) }()
	f.CutAfter(1)
	must(t, f.Mkdir("/e", 0o700))
	if err := <-got; !errors.Is(err, ErrPowerCut) {
		t.Errorf("a waiter at the cut got %v, want ErrPowerCut", err)
	}
}

func TestReadDirAndErrors(t *testing.T) {
	f := New()
	must(t, f.Mkdir("/d", 0o700))
	create(t, f, "/d/b", "", false)
	create(t, f, "/d/a", "", false)
	must(t, f.Mkdir("/d/c", 0o700))
	es, err := f.ReadDir("/d")
	must(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
		if (e.Name() == "c") != e.IsDir() || (e.Name() != "c") != e.Type().IsRegular() {
			t.Errorf("%s: type %v", e.Name(), e.Type())
		}
	}
	if !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Errorf("ReadDir = %q, want [a b c]", names)
	}
	if _, err := f.OpenFile("/d/a", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("O_EXCL on an existing file = %v, want fs.ErrExist", err)
	}
	if _, err := f.OpenFile("/x/y", os.O_WRONLY|os.O_CREATE, 0o600); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("create in a missing directory = %v, want fs.ErrNotExist", err)
	}
	if err := f.Remove("/d"); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Errorf("Remove(non-empty directory) = %v, want ENOTEMPTY", err)
	}
	if err := f.Mkdir("/d", 0o700); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Mkdir(existing) = %v, want fs.ErrExist", err)
	}
	if _, err := f.OpenFile("/d", os.O_WRONLY, 0); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("opening a directory for writing = %v, want EISDIR", err)
	}
}

// TestEnumerateFindsAMissingFsync: a replace without the fsync before the
// rename (what renameio's comment warns of) leaves an empty file at one of
// the cut points, and Enumerate finds it; flash's sequence leaves the old
// or the new bytes at every one.
func TestEnumerateFindsAMissingFsync(t *testing.T) {
	base := New()
	must(t, flash.Save(base, "/d/f", []byte("old")))
	careless := func(fsys *FS) error {
		h, err := fsys.OpenFile("/d/.f.tmp", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		if _, err := h.Write([]byte("new")); err != nil {
			return err
		}
		h.Close()
		if err := fsys.Rename("/d/.f.tmp", "/d/f"); err != nil {
			return err
		}
		d, err := fsys.OpenFile("/d", os.O_RDONLY, 0)
		if err != nil {
			return err
		}
		defer d.Close()
		return d.Sync()
	}
	var bad []string
	check := func(c Cut, after *FS, _ error) {
		if got := content(t, after, "/d/f"); got != "old" && got != "new" {
			bad = append(bad, c.String()+": "+got)
		}
	}
	n, err := Enumerate(base, careless, check)
	must(t, err)
	if n != 4 || !slices.ContainsFunc(bad, func(s string) bool { return strings.Contains(s, "(fsync directory /d), unsynced changes lost") }) {
		t.Errorf("careless replace: %d cut points, found %q; want 4, and an empty file after the directory fsync", n, bad)
	}

	bad = nil
	n, err = Enumerate(base, func(fsys *FS) error { return flash.Save(fsys, "/d/f", []byte("new")) }, check)
	must(t, err)
	if n == 0 || len(bad) > 0 {
		t.Errorf("flash.Save: %d cut points, found %q; want none bad", n, bad)
	}
}

func TestEnumerateRefusesNoChange(t *testing.T) {
	if _, err := Enumerate(New(), func(*FS) error { return nil }, func(Cut, *FS, error) {}); err == nil {
		t.Error("Enumerate of an operation that changes nothing succeeded")
	}
	// An operation that changes less the second time is not deterministic.
	runs := 0
	_, err := Enumerate(New(), func(fsys *FS) error {
		runs++
		if runs > 1 {
			return nil
		}
		return fsys.Mkdir("/a", 0o700)
	}, func(Cut, *FS, error) {})
	if err == nil || !strings.Contains(err.Error(), "never went") {
		t.Errorf("Enumerate of a changing operation = %v, want an error saying the power never went", err)
	}
}
