package flash_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailagent/appliance/internal/flash"
)

// stamp identifies a file version: a write replaces the inode (rename) or
// moves the mtime, which tests first set into the past.
type stamp struct {
	ino   uint64
	mtime time.Time
}

func stampOf(t *testing.T, path string) stamp {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return stamp{fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime()}
}

// age sets path's mtime an hour back, so that any write would show.
func age(t *testing.T, path string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeString(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

// names lists dir, so tests can see that no temporary file is left.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, e := range entries {
		ns = append(ns, e.Name())
	}
	return ns
}

func wantNames(t *testing.T, dir string, want ...string) {
	t.Helper()
	if got := names(t, dir); !slices.Equal(got, want) {
		t.Errorf("files in %s = %q, want %q", dir, got, want)
	}
}

func TestSaveCreates(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data", "mailagent")
	path := filepath.Join(dir, "mailagent.toml")
	if err := flash.Save(flash.OS, path, []byte("a = 1\n")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, flash.GoodPath(path)} {
		if got := readString(t, p); got != "a = 1\n" {
			t.Errorf("%s holds %q", p, got)
		}
		if m := mode(t, p); m != 0o600 {
			t.Errorf("%s has mode %v, want -rw-------", p, m)
		}
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if m := mode(t, d); m.Perm() != 0o700 {
			t.Errorf("%s has mode %v, want drwx------", d, m)
		}
	}
	wantNames(t, dir, "mailagent.toml", "mailagent.toml.good")
}

func TestSaveLeavesDirectoryMode(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := flash.Save(flash.OS, filepath.Join(dir, "f"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, dir); m.Perm() != 0o755 {
		t.Errorf("directory mode = %v, want drwxr-xr-x left as it was", m)
	}
}

func TestSaveReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.toml")
	if err := flash.Save(flash.OS, path, []byte("old")); err != nil {
		t.Fatal(err)
	}
	before := stampOf(t, path)
	// A reader holding the old file keeps reading the old bytes: the new
	// file is a new inode renamed into place, not the old one rewritten.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := flash.Save(flash.OS, path, []byte("new content")); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, path); got != "new content" {
		t.Errorf("file holds %q, want %q", got, "new content")
	}
	if got := readString(t, flash.GoodPath(path)); got != "new content" {
		t.Errorf("good copy holds %q, want %q", got, "new content")
	}
	if after := stampOf(t, path); after.ino == before.ino {
		t.Errorf("inode %d reused: file was rewritten in place", after.ino)
	}
	buf := make([]byte, 10)
	if n, _ := f.Read(buf); string(buf[:n]) != "old" {
		t.Errorf("open old file reads %q, want %q", buf[:n], "old")
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("mode = %v, want -rw-------", m)
	}
	wantNames(t, dir, "tokens.toml", "tokens.toml.good")

	// Empty data is a valid content too.
	if err := flash.Save(flash.OS, path, nil); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, path); got != "" {
		t.Errorf("file holds %q, want empty", got)
	}
}

func TestSaveUnchanged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mailagent.toml")
	good := flash.GoodPath(path)
	data := []byte("[mail]\nfrom = \"gw@example.com\"\n")
	if err := flash.Save(flash.OS, path, data); err != nil {
		t.Fatal(err)
	}
	age(t, path)
	age(t, good)
	want, wantGood := stampOf(t, path), stampOf(t, good)
	if err := flash.Save(flash.OS, path, data); err != nil {
		t.Fatal(err)
	}
	if got := stampOf(t, path); got != want {
		t.Errorf("Save of equal data wrote the file: %v, was %v", got, want)
	}
	if got := stampOf(t, good); got != wantGood {
		t.Errorf("Save of equal data wrote the good copy: %v, was %v", got, wantGood)
	}

	// A missing or different good copy is written; the file is not.
	for _, prepare := range []func(){
		func() { os.Remove(good) },
		func() { writeString(t, good, "stale") },
	} {
		prepare()
		if err := flash.Save(flash.OS, path, data); err != nil {
			t.Fatal(err)
		}
		if got := stampOf(t, path); got != want {
			t.Errorf("Save wrote the unchanged file: %v, was %v", got, want)
		}
		if got := readString(t, good); got != string(data) {
			t.Errorf("good copy holds %q, want %q", got, data)
		}
	}

	// Equal bytes with a loose mode: only the mode changes.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := flash.Save(flash.OS, path, data); err != nil {
		t.Fatal(err)
	}
	if got := stampOf(t, path); got != want {
		t.Errorf("Save rewrote a file to fix its mode: %v, was %v", got, want)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("mode = %v, want -rw-------", m)
	}
	wantNames(t, dir, "mailagent.toml", "mailagent.toml.good")
}

func TestSaveRefusesNonRegular(t *testing.T) {
	tests := []struct {
		name    string
		make    func(p string) error
		target  string // "file" or "good": which path is not regular
		wantErr string
	}{
		{"directory", func(p string) error { return os.Mkdir(p, 0o700) }, "file", "not a regular file"},
		{"symlink", func(p string) error { return os.Symlink(p+".elsewhere", p) }, "file", "not a regular file"},
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o600) }, "file", "not a regular file"},
		{"good copy directory", func(p string) error { return os.Mkdir(p, 0o700) }, "good", "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "mailagent.toml")
			bad := path
			if tt.target == "good" {
				writeString(t, path, "old")
				age(t, path)
				bad = flash.GoodPath(path)
			}
			if err := tt.make(bad); err != nil {
				t.Fatal(err)
			}
			before := names(t, dir)
			var st stamp
			if tt.target == "good" {
				st = stampOf(t, path)
			}
			err := flash.Save(flash.OS, path, []byte("new"))
			if err == nil || err.Error() != "save "+bad+": "+tt.wantErr {
				t.Fatalf("Save() = %v, want %q", err, "save "+bad+": "+tt.wantErr)
			}
			if got := names(t, dir); !slices.Equal(got, before) {
				t.Errorf("files = %q, were %q", got, before)
			}
			if tt.target == "good" && stampOf(t, path) != st {
				t.Errorf("failed Save changed %s", path)
			}
			if m := mode(t, bad); m.IsRegular() {
				t.Errorf("%s was replaced by a regular file", bad)
			}
		})
	}
}

func TestSaveNotADirectory(t *testing.T) {
	dir := t.TempDir()
	writeString(t, filepath.Join(dir, "data"), "")
	path := filepath.Join(dir, "data", "f")
	err := flash.Save(flash.OS, path, []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("Save() = %v, want an error saying data is not a directory", err)
	}
}

func TestMakeDir(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b") + "/"
	if err := flash.MakeDir(flash.OS, dir); err != nil {
		t.Fatalf("MakeDir(%s) = %v", dir, err)
	}
	for _, d := range []string{filepath.Join(root, "a"), filepath.Join(root, "a", "b")} {
		if m := mode(t, d); !m.IsDir() || m.Perm() != 0o700 {
			t.Errorf("%s has mode %v, want drwx------", d, m)
		}
	}
	// An existing directory is left as it is.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := flash.MakeDir(flash.OS, dir); err != nil {
		t.Fatalf("MakeDir(%s) again = %v", dir, err)
	}
	if m := mode(t, dir); m.Perm() != 0o755 {
		t.Errorf("%s has mode %v, want drwxr-xr-x left as it was", dir, m)
	}
	f := filepath.Join(root, "file")
	writeString(t, f, "")
	if err := flash.MakeDir(flash.OS, f); err == nil || !strings.Contains(err.Error(), f+" is not a directory") {
		t.Errorf("MakeDir(a file) = %v, want an error saying it is not a directory", err)
	}
}

// TestSaveFailedWrite makes writes fail with EFBIG (a file size limit) and
// checks that Save reports it, leaves both files and removes its
// temporary files. The full and read-only file systems are in the rig
// tests.
func TestSaveFailedWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.toml")
	if err := flash.Save(flash.OS, path, []byte("old")); err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	small := lim
	small.Cur = 8
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &small); err != nil {
		t.Fatal(err)
	}
	err := flash.Save(flash.OS, path, []byte("a refresh token longer than the limit"))
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, syscall.EFBIG) || err.Error() != "save "+path+": file too large" {
		t.Fatalf("Save() = %v, want %q", err, "save "+path+": file too large")
	}
	for _, p := range []string{path, flash.GoodPath(path)} {
		if got := readString(t, p); got != "old" {
			t.Errorf("%s holds %q after a failed Save, want %q", p, got, "old")
		}
	}
	wantNames(t, dir, "tokens.toml", "tokens.toml.good")
}

func TestSaveRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.toml")
	// What a power cut between create and rename leaves, and look-alikes.
	for _, n := range []string{".tokens.toml123456", ".tokens.toml.good42", ".tokens.tomlx1", ".tokens.toml", "other"} {
		writeString(t, filepath.Join(dir, n), "junk")
	}
	if err := flash.Save(flash.OS, path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	wantNames(t, dir, ".tokens.toml", ".tokens.tomlx1", "other", "tokens.toml", "tokens.toml.good")
}

func TestReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	for _, data := range []string{"one", "two"} {
		if err := flash.Replace(flash.OS, path, []byte(data)); err != nil {
			t.Fatal(err)
		}
		if got := readString(t, path); got != data {
			t.Errorf("%s holds %q, want %q", path, got, data)
		}
		if m := mode(t, path); m != 0o600 {
			t.Errorf("%s has mode %v, want -rw-------", path, m)
		}
		wantNames(t, dir, "key.pem") // no good copy, no temporary file
	}
	age(t, path)
	st := stampOf(t, path)
	if err := flash.Replace(flash.OS, path, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if stampOf(t, path) != st {
		t.Errorf("Replace of equal data wrote the file")
	}
}

func TestMarkGood(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mailagent.toml")
	writeString(t, path, "hand written")
	age(t, path)
	file := stampOf(t, path)
	if err := flash.MarkGood(flash.OS, path, []byte("hand written")); err != nil {
		t.Fatal(err)
	}
	good := flash.GoodPath(path)
	if got := readString(t, good); got != "hand written" {
		t.Errorf("good copy holds %q", got)
	}
	if m := mode(t, good); m != 0o600 {
		t.Errorf("good copy mode = %v, want -rw-------", m)
	}
	if stampOf(t, path) != file {
		t.Errorf("MarkGood wrote %s", path)
	}
	age(t, good)
	st := stampOf(t, good)
	if err := flash.MarkGood(flash.OS, path, []byte("hand written")); err != nil {
		t.Fatal(err)
	}
	if stampOf(t, good) != st {
		t.Errorf("MarkGood of equal data wrote the good copy")
	}
}

var errBad = errors.New("toml: line 1: expected '='")

// checkTOML is a stand-in check: files that start with '#' are damaged.
func checkTOML(b []byte) error {
	if strings.HasPrefix(string(b), "#") {
		return errBad
	}
	return nil
}

func TestLoad(t *testing.T) {
	const file, good = "mailagent.toml", "mailagent.toml.good"
	tests := []struct {
		name     string
		setup    func(t *testing.T, dir string) // creates file and good copy
		wantData string
		wantDmg  string // damaged.Error(), after the directory
		wantErr  string // err.Error(), after the directory
	}{
		{
			name:     "fine",
			setup:    func(t *testing.T, d string) { writeString(t, d+"/"+file, "ok"); writeString(t, d+"/"+good, "older") },
			wantData: "ok",
		},
		{
			name:     "fine without good copy",
			setup:    func(t *testing.T, d string) { writeString(t, d+"/"+file, "") },
			wantData: "",
		},
		{
			name:    "missing",
			setup:   func(t *testing.T, d string) {},
			wantErr: "load DIR/mailagent.toml: no such file or directory",
		},
		{
			// Save never leaves a file missing beside its good copy.
			name:     "missing with good copy",
			setup:    func(t *testing.T, d string) { writeString(t, d+"/"+good, "ok") },
			wantData: "ok",
			wantDmg:  "DIR/mailagent.toml is damaged: it is missing, and its good copy is there; using DIR/mailagent.toml.good",
		},
		{
			name:    "missing with an empty good copy",
			setup:   func(t *testing.T, d string) { writeString(t, d+"/"+good, "") },
			wantErr: "DIR/mailagent.toml is damaged: it is missing, and its good copy is there; its good copy DIR/mailagent.toml.good cannot be used either: it is empty (0 bytes)",
		},
		{
			name:    "missing with a damaged good copy",
			setup:   func(t *testing.T, d string) { writeString(t, d+"/"+good, "# bad") },
			wantErr: "DIR/mailagent.toml is damaged: it is missing, and its good copy is there; its good copy DIR/mailagent.toml.good cannot be used either: toml: line 1: expected '='",
		},
		{
			// nor empty: what is left after a power cut on a file
			// system that renamed before it wrote
			name:     "empty with good copy",
			setup:    func(t *testing.T, d string) { writeString(t, d+"/"+file, ""); writeString(t, d+"/"+good, "ok") },
			wantData: "ok",
			wantDmg:  "DIR/mailagent.toml is damaged: it is empty (0 bytes), and it has a good copy; using DIR/mailagent.toml.good",
		},
		{
			name:    "empty with an empty good copy",
			setup:   func(t *testing.T, d string) { writeString(t, d+"/"+file, ""); writeString(t, d+"/"+good, "") },
			wantErr: "DIR/mailagent.toml is damaged: it is empty (0 bytes), and it has a good copy; its good copy DIR/mailagent.toml.good cannot be used either: it is empty (0 bytes)",
		},
		{
			name:     "damaged with good copy",
			setup:    func(t *testing.T, d string) { writeString(t, d+"/"+file, "# bad"); writeString(t, d+"/"+good, "ok") },
			wantData: "ok",
			wantDmg:  "DIR/mailagent.toml is damaged: toml: line 1: expected '='; using DIR/mailagent.toml.good",
		},
		{
			name:    "damaged without good copy",
			setup:   func(t *testing.T, d string) { writeString(t, d+"/"+file, "# bad") },
			wantErr: "DIR/mailagent.toml is damaged: toml: line 1: expected '='",
		},
		{
			name: "damaged with damaged good copy",
			setup: func(t *testing.T, d string) {
				writeString(t, d+"/"+file, "# bad")
				writeString(t, d+"/"+good, "# bad too")
			},
			wantErr: "DIR/mailagent.toml is damaged: toml: line 1: expected '='; its good copy DIR/mailagent.toml.good cannot be used either: toml: line 1: expected '='",
		},
		{
			name:     "directory",
			setup:    func(t *testing.T, d string) { os.Mkdir(d+"/"+file, 0o700); writeString(t, d+"/"+good, "ok") },
			wantData: "ok",
			wantDmg:  "DIR/mailagent.toml is damaged: not a regular file; using DIR/mailagent.toml.good",
		},
		{
			name:    "fifo",
			setup:   func(t *testing.T, d string) { syscall.Mkfifo(d+"/"+file, 0o600) },
			wantErr: "DIR/mailagent.toml is damaged: not a regular file",
		},
		{
			name:     "symlink to a file",
			setup:    func(t *testing.T, d string) { writeString(t, d+"/real", "ok"); os.Symlink("real", d+"/"+file) },
			wantData: "ok",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			data, dmg, err := flash.Load(flash.OS, filepath.Join(dir, file), checkTOML)
			gotErr, gotDmg := "", ""
			if err != nil {
				gotErr = strings.ReplaceAll(err.Error(), dir, "DIR")
			}
			if dmg != nil {
				gotDmg = strings.ReplaceAll(dmg.Error(), dir, "DIR")
			}
			if string(data) != tt.wantData || gotDmg != tt.wantDmg || gotErr != tt.wantErr {
				t.Errorf("Load() = %q, %q, %q;\nwant %q, %q, %q", data, gotDmg, gotErr, tt.wantData, tt.wantDmg, tt.wantErr)
			}
			if tt.wantErr != "" && data != nil {
				t.Errorf("Load() returned data %q with an error", data)
			}
		})
	}
}

func TestLoadErrorTypes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")

	_, _, err := flash.Load(flash.OS, path, checkTOML)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want errors.Is fs.ErrNotExist", err)
	}

	writeString(t, path, "# bad")
	_, dmg, err := flash.Load(flash.OS, path, checkTOML)
	var de *flash.DamagedError
	if dmg != nil || !errors.As(err, &de) || de.Path != path || de.Fallback != "" || !errors.Is(err, errBad) {
		t.Errorf("Load(damaged) = %v, %v; want a *DamagedError wrapping the check's error", dmg, err)
	}

	writeString(t, flash.GoodPath(path), "ok")
	data, dmg, err := flash.Load(flash.OS, path, checkTOML)
	if err != nil || dmg == nil || dmg.Path != path || dmg.Fallback != flash.GoodPath(path) || !errors.Is(dmg, errBad) || string(data) != "ok" {
		t.Errorf("Load(damaged, good copy) = %q, %v, %v", data, dmg, err)
	}

	// A nil check accepts anything readable.
	data, dmg, err = flash.Load(flash.OS, path, nil)
	if string(data) != "# bad" || dmg != nil || err != nil {
		t.Errorf("Load(path, nil) = %q, %v, %v", data, dmg, err)
	}
}

// TestSaveLoad is the round trip the callers make: save, damage by hand,
// load the good copy, save again.
func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.toml")
	if err := flash.Save(flash.OS, path, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := flash.Save(flash.OS, path, []byte("v2")); err != nil {
		t.Fatal(err)
	}
	writeString(t, path, "# truncated")
	data, dmg, err := flash.Load(flash.OS, path, checkTOML)
	if err != nil || dmg == nil || string(data) != "v2" {
		t.Fatalf("Load() = %q, %v, %v; want v2 from the good copy", data, dmg, err)
	}
	if err := flash.Save(flash.OS, path, data); err != nil {
		t.Fatal(err)
	}
	if data, dmg, err := flash.Load(flash.OS, path, checkTOML); err != nil || dmg != nil || string(data) != "v2" {
		t.Errorf("Load() after repair = %q, %v, %v", data, dmg, err)
	}
}

func TestLoadDecoded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "n.txt")
	decode := func(b []byte) (int, error) { return strconv.Atoi(string(b)) }
	l, err := flash.LoadDecoded(flash.OS, path, decode)
	if err != nil || !l.Missing || l.Value != 0 {
		t.Fatalf("missing file: %+v, %v", l, err)
	}
	if err := flash.Save(flash.OS, path, []byte("42")); err != nil {
		t.Fatal(err)
	}
	if l, err = flash.LoadDecoded(flash.OS, path, decode); err != nil || l.Value != 42 || l.Damaged != nil || string(l.Raw) != "42" {
		t.Fatalf("good file: %+v, %v", l, err)
	}
	if err := os.WriteFile(path, []byte("4x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err = flash.LoadDecoded(flash.OS, path, decode); err != nil || l.Value != 42 || l.Damaged == nil {
		t.Fatalf("damaged file: %+v, %v; want the good copy's 42", l, err)
	}
	os.Remove(flash.GoodPath(path))
	if _, err = flash.LoadDecoded(flash.OS, path, decode); err == nil {
		t.Fatal("damaged file without a good copy: no error")
	}
}

// TestLoadDecodedGoodCopy: LoadDecoded reports a sound file's damaged
// good copy without using it, and an empty file without a good copy as
// Empty; a file missing beside its good copy is not a new box.
func TestLoadDecodedGoodCopy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "n.txt")
	decode := func(b []byte) (int, error) {
		if len(b) == 0 {
			return 0, nil
		}
		return strconv.Atoi(string(b))
	}
	writeString(t, path, "42")
	writeString(t, flash.GoodPath(path), "4")
	if l, err := flash.LoadDecoded(flash.OS, path, decode); err != nil || l.Value != 42 || l.Damaged != nil || l.GoodDamaged != nil {
		t.Errorf("sound file and good copy: %+v, %v", l, err)
	}
	writeString(t, flash.GoodPath(path), "4x")
	if l, err := flash.LoadDecoded(flash.OS, path, decode); err != nil || l.Value != 42 || l.Damaged != nil || l.GoodDamaged == nil || l.GoodDamaged.Path != flash.GoodPath(path) {
		t.Errorf("damaged good copy: %+v, %v; want 42 and the good copy named", l, err)
	}
	os.Remove(flash.GoodPath(path))
	writeString(t, path, "")
	if l, err := flash.LoadDecoded(flash.OS, path, decode); err != nil || !l.Empty || l.Damaged != nil || l.Missing {
		t.Errorf("empty file without a good copy: %+v, %v; want Empty", l, err)
	}
	os.Remove(path)
	writeString(t, flash.GoodPath(path), "7")
	if l, err := flash.LoadDecoded(flash.OS, path, decode); err != nil || l.Missing || l.Value != 7 || l.Damaged == nil {
		t.Errorf("missing file with a good copy: %+v, %v; want 7 from the good copy, damaged", l, err)
	}
}

// TestLock: a second Lock of the same path waits while the first is held
// (shown with a context that is already done, so nothing waits on time),
// and takes it once released. A missing lock file is made, 0600, empty.
func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "x.lock")
	unlock, err := flash.Lock(t.Context(), flash.OS, path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 0 {
		t.Fatalf("lock file: %v, %v", fi, err)
	}
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := flash.Lock(done, flash.OS, path); !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock while held = %v, want it to wait until its context ends", err)
	}
	got := make(chan error, 1)
	go func() {
		u, err := flash.Lock(t.Context(), flash.OS, path)
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("Lock after unlock = %v", err)
	}
}
