//go:build rig

package flash_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"mailagent/appliance/internal/flash"
)

// mountTmpfs mounts a 64 KiB tmpfs on a new directory and unmounts it when
// the test ends. It fails the test when mounting is not possible: the rig
// runs as root.
func mountTmpfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k,mode=0700"); err != nil {
		t.Fatalf("mount -t tmpfs -o size=64k %s: %v (the rig tests need root)", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("umount %s: %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

func TestSaveReadOnly(t *testing.T) {
	dir := mountTmpfs(t)
	path := filepath.Join(dir, "mailagent.toml")
	if err := flash.Save(flash.OS, path, []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY, "size=64k"); err != nil {
		t.Fatalf("mount -o remount,ro %s: %v", dir, err)
	}

	err := flash.Save(flash.OS, path, []byte("new"))
	want := "save " + path + ": read-only file system"
	if !errors.Is(err, syscall.EROFS) || err.Error() != want {
		t.Fatalf("Save() = %v, want %q", err, want)
	}
	err = flash.MarkGood(flash.OS, path, []byte("new"))
	if want := "save " + flash.GoodPath(path) + ": read-only file system"; !errors.Is(err, syscall.EROFS) || err.Error() != want {
		t.Errorf("MarkGood() = %v, want %q", err, want)
	}
	for _, p := range []string{path, flash.GoodPath(path)} {
		if got := readString(t, p); got != "old" {
			t.Errorf("%s holds %q after a failed Save, want %q", p, got, "old")
		}
	}
	// Nothing to write is no error, even read-only.
	if err := flash.Save(flash.OS, path, []byte("old")); err != nil {
		t.Errorf("Save() of equal data on a read-only file system: %v", err)
	}
	if data, dmg, err := flash.Load(flash.OS, path, nil); err != nil || dmg != nil || string(data) != "old" {
		t.Errorf("Load() = %q, %v, %v", data, dmg, err)
	}
}

func TestSaveFull(t *testing.T) {
	dir := mountTmpfs(t)
	path := filepath.Join(dir, "tokens.toml")
	if err := flash.Save(flash.OS, path, []byte("old")); err != nil {
		t.Fatal(err)
	}
	fill(t, filepath.Join(dir, "filler"))

	big := bytes.Repeat([]byte("refresh_token = \"x\"\n"), 400) // 8000 bytes, two pages
	err := flash.Save(flash.OS, path, big)
	want := "save " + path + ": no space left on device"
	if !errors.Is(err, syscall.ENOSPC) || err.Error() != want {
		t.Fatalf("Save() = %v, want %q", err, want)
	}
	for _, p := range []string{path, flash.GoodPath(path)} {
		if got := readString(t, p); got != "old" {
			t.Errorf("%s holds %q after a failed Save, want %q", p, got, "old")
		}
	}
	wantNames(t, dir, "filler", "tokens.toml", "tokens.toml.good")

	// Room for one copy but not two: Save fails before renaming either.
	if err := os.Truncate(filepath.Join(dir, "filler"), 0); err != nil {
		t.Fatal(err)
	}
	fillLeaving(t, filepath.Join(dir, "filler2"), len(big))
	err = flash.Save(flash.OS, path, big)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Save() with room for one copy = %v, want ENOSPC", err)
	}
	for _, p := range []string{path, flash.GoodPath(path)} {
		if got := readString(t, p); got != "old" {
			t.Errorf("%s holds %q after a failed Save, want %q", p, got, "old")
		}
	}
	wantNames(t, dir, "filler", "filler2", "tokens.toml", "tokens.toml.good")
}

// fill writes to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for i := 0; i < 1024; i++ { // far more than 64 KiB
		if _, err := f.Write(buf); errors.Is(err, syscall.ENOSPC) {
			return
		} else if err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("%s: file system never filled up", path)
}

// fillLeaving fills the file system up to room for one file of n bytes
// (in pages), found by trying.
func fillLeaving(t *testing.T, path string, n int) {
	t.Helper()
	fill(t, path)
	probe := filepath.Join(filepath.Dir(path), "probe")
	for i := 0; i < 32; i++ {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, max(fi.Size()-4096, 0)); err != nil {
			t.Fatal(err)
		}
		err = os.WriteFile(probe, make([]byte, n), 0o600)
		os.Remove(probe)
		if err == nil {
			return
		}
	}
	t.Fatalf("could not make room for %d bytes", n)
}
