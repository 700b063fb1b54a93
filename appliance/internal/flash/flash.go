// Package flash keeps small files on flash storage so that they survive
// power cuts. What it guarantees:
//
//   - Atomic: Save writes a temporary file in the target's directory, fsyncs
//     it, renames it over the target and fsyncs the directory, so after a
//     power cut at any moment the path holds either the old or the new
//     bytes, never a mix or nothing.
//   - A previous good copy: Save keeps the same bytes as GoodPath(path), so
//     when the file is damaged (by hand, or by a file system that lost it)
//     Load falls back to what was last written, and says so. A file that
//     is missing or empty while its good copy exists counts as damaged:
//     Save never leaves it so. Replace keeps none, for a file its owner
//     can make again.
//   - No write when equal: Save and MarkGood read first and write nothing
//     when the file already holds the data; an idle box writes zero bytes.
//   - Private: files are mode 0600; a directory Save creates is 0700 (an
//     existing one is left as it is).
//   - Honest failures: errors name the path and keep the system's error for
//     errors.Is (EROFS, ENOSPC, EACCES). A failed Save leaves the old file,
//     its good copy and no temporary file behind.
//
// A file is never silently replaced: Load reports a damaged file as a
// *DamagedError. Callers serialise writes to one path, across processes
// with Lock.
//
// Every function works on an FS: [OS] on a box, and in tests the power-cut
// model of appliance/internal/flash/powercut, which cuts the power after any
// write, fsync, rename or directory fsync and keeps only what was durable;
// its tests (here, in spool and in agent) check the guarantees above at
// every such point.
package flash

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

const (
	fileMode fs.FileMode = 0o600
	dirMode  fs.FileMode = 0o700
)

var errNotRegular = errors.New("not a regular file")

// GoodPath is where Save keeps the good copy of path.
func GoodPath(path string) string { return path + ".good" }

// DamagedError reports a file that cannot be read or fails its check.
type DamagedError struct {
	Path string // the damaged file
	Err  error  // why: the read error or what the check said
	// Fallback is the good copy whose data Load returned instead, or ""
	// when there was none to use.
	Fallback string
	// FallbackErr says why the good copy could not be used, when it
	// exists and Fallback is "".
	FallbackErr error
}

func (e *DamagedError) Error() string {
	s := e.Path + " is damaged: " + e.Err.Error()
	switch {
	case e.Fallback != "":
		s += "; using " + e.Fallback
	case e.FallbackErr != nil:
		s += "; its good copy " + GoodPath(e.Path) + " cannot be used either: " + e.FallbackErr.Error()
	}
	return s
}

func (e *DamagedError) Unwrap() error { return e.Err }

// The damage of a file that is not there, or holds nothing, while its
// good copy is: Save never leaves it so.
var (
	errMissing = errors.New("it is missing, and its good copy is there")
	errEmpty   = errors.New("it is empty (0 bytes), and it has a good copy")
	errNoData  = errors.New("it is empty (0 bytes)")
)

// Save atomically replaces path on fsys with data, mode 0600, and then
// keeps the same bytes as the good copy GoodPath(path). The directory is created
// 0700 if missing. Files that already hold data are not written (a file
// with the right bytes but another mode is only made 0600). A target or
// good copy that exists and is not a regular file (a symbolic link
// included) is refused.
//
// Both new files are written and fsynced before either is renamed into
// place, so a full file system fails before anything changed.
func Save(fsys FS, path string, data []byte) error {
	return save(fsys, []string{path, GoodPath(path)}, data)
}

// Replace atomically replaces path with data, mode 0600, as Save does but
// without a good copy: for a file its owner makes again when it is damaged
// or missing, such as a self-signed certificate and its key.
func Replace(fsys FS, path string, data []byte) error {
	return save(fsys, []string{path}, data)
}

// MarkGood makes data the good copy of path when the good copy differs,
// for example after a hand-written file has passed a check.
func MarkGood(fsys FS, path string, data []byte) error {
	return save(fsys, []string{GoodPath(path)}, data)
}

// Load reads path on fsys and checks it with check (nil accepts anything).
//
//   - File fine: data, nil, nil.
//   - Missing file, and no good copy: err wraps fs.ErrNotExist (a new box).
//   - File damaged: unreadable, not a regular file, check fails, or
//     missing or empty while a good copy exists. Then the good copy's data
//     and damaged (with Fallback set) if the good copy reads, is not empty
//     and passes check; otherwise nil data and err, a *DamagedError
//     without Fallback (FallbackErr says what is wrong with the good copy).
func Load(fsys FS, path string, check func([]byte) error) (data []byte, damaged *DamagedError, err error) {
	r, err := load(fsys, path, check)
	return r.data, r.damaged, err
}

// loaded is what load found.
type loaded struct {
	data    []byte
	damaged *DamagedError // the file, when the good copy's data was used
	// goodDamaged is the good copy, when the file is sound and the good
	// copy exists and is not.
	goodDamaged *DamagedError
	// empty is true when the file is empty and has no good copy.
	empty bool
}

func load(fsys FS, path string, check func([]byte) error) (loaded, error) {
	if check == nil {
		check = func([]byte) error { return nil }
	}
	good := GoodPath(path)
	gdata, gerr := read(fsys, good)
	goodExists := !errors.Is(gerr, fs.ErrNotExist)
	if gerr == nil {
		switch {
		case len(gdata) == 0:
			gerr = errNoData
		default:
			gerr = check(gdata)
		}
	}
	data, err := read(fsys, path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !goodExists:
		return loaded{}, fmt.Errorf("load %s: %w", path, err)
	case errors.Is(err, fs.ErrNotExist):
		err = errMissing
	case err == nil && len(data) == 0 && goodExists:
		err = errEmpty
	case err == nil:
		err = check(data)
	}
	if err == nil {
		r := loaded{data: data, empty: len(data) == 0}
		if goodExists && gerr != nil {
			r.goodDamaged = &DamagedError{Path: good, Err: gerr}
		}
		return r, nil
	}
	d := &DamagedError{Path: path, Err: err}
	if goodExists && gerr == nil {
		d.Fallback = good
		return loaded{data: gdata, damaged: d}, nil
	}
	if goodExists {
		d.FallbackErr = gerr
	}
	return loaded{}, d
}

// read reads a regular file, without blocking on a FIFO or device.
func read(fsys FS, path string) ([]byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, Cause(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, Cause(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errNotRegular
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, Cause(err)
	}
	return data, nil
}

// save makes every file in paths (all in one directory) hold data. It
// checks all of them, then writes and fsyncs every new file, then renames
// them in order and fsyncs the directory once.
//
// This is renameio's sequence (the temporary file in the target's
// directory, WithTempDir; fsync before rename), on fsys, plus the
// directory fsync renameio leaves out. Each step is there for a power cut:
//
//   - the temporary file is in the target's directory, because a rename is
//     atomic only within one file system;
//   - its data is fsynced before the rename: without it, "a zero-length
//     file is a valid and possible outcome after the rename" (Theodore
//     Ts'o, quoted by renameio), even with ext4's data=ordered;
//   - the rename replaces the target in one step: a reader sees the old
//     file or the new one, never neither;
//   - the directory is fsynced after the renames, or a power cut may still
//     bring the old file back (the rename is a change to the directory,
//     durable only once the directory is).
func save(fsys FS, paths []string, data []byte) error {
	dir := filepath.Dir(paths[0])
	if err := MakeDir(fsys, dir); err != nil {
		return fmt.Errorf("save %s: %w", paths[0], err)
	}
	var stale []string
	for _, p := range paths {
		same, err := holds(fsys, p, data)
		if err != nil {
			return fmt.Errorf("save %s: %w", p, err)
		}
		if !same {
			stale = append(stale, p)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	removeLeftovers(fsys, dir, stale)

	var staged []string // the temporary files, in the order of stale
	defer func() {
		for _, tmp := range staged {
			fsys.Remove(tmp) // fails once renamed
		}
	}()
	for _, p := range stale {
		tmp, err := stage(fsys, p, data)
		if err != nil {
			return fmt.Errorf("save %s: %w", p, err)
		}
		staged = append(staged, tmp)
	}
	for i, tmp := range staged {
		if err := fsys.Rename(tmp, stale[i]); err != nil {
			return fmt.Errorf("save %s: %w", stale[i], Cause(err))
		}
	}
	if err := syncDir(fsys, dir); err != nil {
		return fmt.Errorf("save %s: sync directory: %w", stale[0], err)
	}
	return nil
}

// holds reports whether p is a regular file holding data, making it 0600
// if it does and is not. A missing or unreadable p does not hold data.
func holds(fsys FS, p string, data []byte) (bool, error) {
	fi, err := fsys.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, Cause(err)
	}
	if !fi.Mode().IsRegular() {
		return false, errNotRegular
	}
	if fi.Size() != int64(len(data)) {
		return false, nil
	}
	old, err := read(fsys, p)
	if err != nil || !bytes.Equal(old, data) {
		return false, nil
	}
	if fi.Mode().Perm() != fileMode {
		if err := fsys.Chmod(p, fileMode); err != nil {
			return true, fmt.Errorf("set mode %v: %w", fileMode, Cause(err))
		}
	}
	return true, nil
}

// stage writes data to a new temporary file beside p, mode 0600, fsyncs
// and closes it, and returns its name: "." + p's base name + decimal
// digits, as renameio names them (removeLeftovers finds both).
func stage(fsys FS, p string, data []byte) (tmp string, err error) {
	var f File
	for range 100 {
		tmp = filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+strconv.FormatUint(rand.Uint64(), 10))
		f, err = fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return "", Cause(err)
	}
	err = write(f, data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fsys.Remove(tmp)
		return "", Cause(err)
	}
	return tmp, nil
}

func write(f File, data []byte) error {
	// The umask may have taken bits from fileMode.
	if fi, err := f.Stat(); err != nil {
		return err
	} else if fi.Mode().Perm() != fileMode {
		if err := f.Chmod(fileMode); err != nil {
			return err
		}
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Sync()
}

// MakeDir creates dir on fsys, 0700, if it is missing and fsyncs the
// parents of the directories it created, every level of them, so their
// entries survive a power cut. An existing dir is left as it is.
func MakeDir(fsys FS, dir string) error {
	fi, err := fsys.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Cause(err)
	}
	var created []string // deepest first
	// Cleaned, so that "a/b/" syncs a, not b itself as well.
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := fsys.Lstat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		created = append(created, d)
	}
	for _, d := range slices.Backward(created) {
		if err := fsys.Mkdir(d, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", dir, Cause(err))
		}
	}
	if fi, err := fsys.Stat(dir); err != nil {
		return fmt.Errorf("create %s: %w", dir, Cause(err))
	} else if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	for _, d := range created {
		if err := syncDir(fsys, filepath.Dir(d)); err != nil {
			return fmt.Errorf("create %s: sync parent: %w", d, err)
		}
	}
	return nil
}

func syncDir(fsys FS, dir string) error {
	d, err := fsys.OpenFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return Cause(err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return Cause(err)
}

// removeLeftovers deletes temporary files that an interrupted Save (a power
// cut between create and rename) left for paths: "." + base name + decimal
// digits. Failures are ignored: they only cost space.
func removeLeftovers(fsys FS, dir string, paths []string) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		for _, p := range paths {
			rest, ok := strings.CutPrefix(e.Name(), "."+filepath.Base(p))
			if ok && rest != "" && strings.Trim(rest, "0123456789") == "" && e.Type().IsRegular() {
				fsys.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
}

// Cause strips the operation and paths that os wraps around a system error
// (*fs.PathError, *os.LinkError, *os.SyscallError): callers say which file
// they meant, and a temporary name would only confuse. errors.Is still
// finds the errno.
func Cause(err error) error {
	for {
		switch e := err.(type) {
		case *fs.PathError:
			err = e.Err
		case *os.LinkError:
			err = e.Err
		case *os.SyscallError:
			err = e.Err
		default:
			return err
		}
	}
}

// Loaded is a file read and decoded by LoadDecoded.
type Loaded[T any] struct {
	// Value is the decoded file, or its good copy when Damaged is set.
	Value T
	// Raw is the bytes Value was decoded from.
	Raw []byte
	// Missing is true when there is no file and no good copy: Value is
	// T's zero value.
	Missing bool
	// Damaged is set when the file is damaged and the good copy was used.
	Damaged *DamagedError
	// GoodDamaged is set when the file is sound and its good copy, which
	// exists, is not.
	GoodDamaged *DamagedError
	// Empty is true when the file is empty and there is no good copy.
	Empty bool
}

// LoadDecoded is Load with decode as the check, returning the decoded value:
// a missing file without a good copy is not an error but Missing, a damaged
// one falls back to the good copy as Load does.
func LoadDecoded[T any](fsys FS, path string, decode func([]byte) (T, error)) (Loaded[T], error) {
	r, err := load(fsys, path, func(b []byte) error {
		_, err := decode(b)
		return err
	})
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Loaded[T]{Missing: true}, nil
	case err != nil:
		return Loaded[T]{}, err
	}
	v, err := decode(r.data)
	if err != nil { // it decoded a moment ago
		return Loaded[T]{}, &DamagedError{Path: path, Err: err}
	}
	return Loaded[T]{Value: v, Raw: r.data, Damaged: r.damaged, GoodDamaged: r.goodDamaged, Empty: r.empty}, nil
}
