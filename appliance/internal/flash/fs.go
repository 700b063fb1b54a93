package flash

import (
	"io"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// FS is the file system flash and spool write through: the operating
// system's ([OS]) on a box, a model that can lose power
// (appliance/internal/flash/powercut) in tests, so that the code a power-cut
// test runs is the code a box runs. Names are paths as the os package takes
// them, and errors are what os returns (wrapped in *fs.PathError or
// *os.LinkError; errors.Is finds the errno).
//
// What is durable after a power cut is what the calls made durable: a
// file's data after File.Sync, a directory's entries (files created,
// renamed, removed and directories made in it) after Sync on the directory,
// everything after File.SyncFS. Until then a power cut may lose any of it.
type FS interface {
	// OpenFile opens name as os.OpenFile does (os.O_* flags; perm for a
	// file it creates).
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	Stat(name string) (fs.FileInfo, error)
	Lstat(name string) (fs.FileInfo, error)
	// ReadDir lists a directory sorted by name, as os.ReadDir does.
	ReadDir(name string) ([]fs.DirEntry, error)
	Mkdir(name string, perm fs.FileMode) error
	Rename(oldpath, newpath string) error
	Remove(name string) error
	Chmod(name string, mode fs.FileMode) error
}

// File is an open file or directory of an FS.
type File interface {
	io.Reader
	io.Writer
	io.Closer
	Stat() (fs.FileInfo, error)
	Chmod(mode fs.FileMode) error
	// Sync makes the file's data durable (fsync(2)); on a directory, its
	// entries.
	Sync() error
	// SyncFS makes everything written on the file's file system durable
	// (syncfs(2)): one flush for many files.
	SyncFS() error
	// Flock takes or releases an advisory lock on the file as flock(2)
	// does: how is syscall.LOCK_EX or LOCK_UN, LOCK_EX|LOCK_NB fails with
	// syscall.EWOULDBLOCK while another open file holds the lock. Closing
	// the file releases its lock.
	Flock(how int) error
}

// OS is the operating system's file system.
var OS FS = osFS{}

type osFS struct{}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Stat(name string) (fs.FileInfo, error)      { return os.Stat(name) }
func (osFS) Lstat(name string) (fs.FileInfo, error)     { return os.Lstat(name) }
func (osFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }
func (osFS) Mkdir(name string, perm fs.FileMode) error  { return os.Mkdir(name, perm) }
func (osFS) Rename(oldpath, newpath string) error       { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error                   { return os.Remove(name) }
func (osFS) Chmod(name string, mode fs.FileMode) error  { return os.Chmod(name, mode) }

type osFile struct{ *os.File }

func (f osFile) SyncFS() error {
	return f.control("syncfs", func(fd int) error { return unix.Syncfs(fd) })
}

func (f osFile) Flock(how int) error {
	return f.control("flock", func(fd int) error {
		for {
			err := syscall.Flock(fd, how)
			if err != syscall.EINTR {
				return err
			}
		}
	})
}

// control runs call on the file's descriptor and names op in its error.
func (f osFile) control(op string, call func(fd int) error) error {
	c, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	if err := c.Control(func(fd uintptr) { cerr = call(int(fd)) }); err != nil {
		return err
	}
	if cerr != nil {
		return &fs.PathError{Op: op, Path: f.Name(), Err: cerr}
	}
	return nil
}

// ReadFile reads the whole of name on fsys.
func ReadFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
