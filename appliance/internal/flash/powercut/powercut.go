// Package powercut is a file system in memory that can lose power, for
// tests: a flash.FS that records every change made through it and can cut
// the power after any of them, keeping only what had been made durable.
// kill -9 keeps the page cache, so it cannot show what a power cut does;
// this model can, and the code it runs is the production code, given the
// model as its FS.
//
// # What is durable
//
// Each file has the bytes a reader sees and the bytes on flash; each
// directory has the entries a reader sees and the entries on flash.
//
//   - File.Sync (fsync) puts the file's bytes and mode on flash. Not its
//     name: a new file's entry is a change to its directory.
//   - Sync on a directory puts its entries on flash: the files created,
//     renamed into or out of it and removed, and the directories made in it.
//   - File.SyncFS (syncfs) puts everything on flash.
//   - Nothing else does: write, create, rename, remove, mkdir and chmod
//     change only what a reader sees.
//
// After a cut, [FS.Restart] builds the file system that comes back: the
// directory tree as it is on flash, each file with its bytes on flash,
// changed by the [Loss] chosen for what was not durable. A file whose
// entry reached flash but whose bytes did not comes back empty (Lost), as
// on ext4 without an fsync before the rename; a file whose bytes were
// synced but whose entry was not is gone.
//
// # Cutting
//
// Every change is an [Op]: a file created, a write, a chmod, an fsync of a
// file, an fsync of a directory, a syncfs, a rename, a remove, a mkdir.
// [FS.CutAfter] arms a cut after the next n of them; from then on every
// call fails with [ErrPowerCut], as if the process died with the power.
// [Enumerate] runs an operation once to count its changes and then once
// per change and Loss with the cut there.
//
// Locks (Flock) are kept in memory, per file, as flock(2) keeps them; a
// cut wakes whoever waits for one with ErrPowerCut. There are no symbolic
// links, owners, times or umask.
package powercut

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"mailagent/appliance/internal/flash"
)

// ErrPowerCut is the error of every call after the power went.
var ErrPowerCut = errors.New("powercut: the power is off")

// Kind is the kind of a change.
type Kind int

// The changes an FS records.
const (
	Create  Kind = iota // a file created by OpenFile with os.O_CREATE
	Write               // a write, or a truncation by os.O_TRUNC
	Chmod               // a mode change
	Sync                // fsync of a file
	SyncDir             // fsync of a directory
	SyncFS              // syncfs
	Rename
	Remove
	Mkdir
)

var kindNames = [...]string{"create", "write", "chmod", "fsync", "fsync directory", "syncfs", "rename", "remove", "mkdir"}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// Op is one change made through an FS.
type Op struct {
	Kind Kind
	Path string
	To   string // the new name of a Rename
	N    int    // the bytes of a Write
}

func (o Op) String() string {
	switch o.Kind {
	case Rename:
		return fmt.Sprintf("rename %s -> %s", o.Path, o.To)
	case Write:
		return fmt.Sprintf("write %s (%d bytes)", o.Path, o.N)
	}
	return o.Kind.String() + " " + o.Path
}

// Loss is what a power cut does to what was not yet durable.
type Loss int

const (
	// Lost: every file holds the bytes it last synced (none for a file
	// never synced), and every directory the entries it last synced.
	Lost Loss = iota
	// Torn: as Lost, but a file written since its last sync keeps half of
	// those bytes as well: what was synced and then the first half of the
	// rest (of a file rewritten from the start, the first half of the new
	// bytes). A write the cut tore in the middle.
	Torn
	// Journaled: every change to a directory reached flash (the file
	// system committed its journal on its own, just before the cut), the
	// bytes of files only as far as they were synced: renames and creates
	// survive, unsynced data does not.
	Journaled
)

// Losses are the losses Enumerate cuts with.
var Losses = []Loss{Lost, Torn, Journaled}

func (l Loss) String() string {
	switch l {
	case Lost:
		return "unsynced changes lost"
	case Torn:
		return "unsynced data torn"
	case Journaled:
		return "directory changes journaled"
	}
	return fmt.Sprintf("Loss(%d)", int(l))
}

// FS is a file system in memory that can lose power. It is safe for
// concurrent use. The zero value is not usable: call New.
type FS struct {
	mu    sync.Mutex
	cond  *sync.Cond // Flock waiters
	root  *node
	ops   []Op
	cutAt int // cut once len(ops) reaches it; 0: never
	off   bool
}

// node is a file or a directory.
type node struct {
	dir        bool
	mode       fs.FileMode // permission bits
	syncedMode fs.FileMode
	// A file: what readers see, and what is on flash.
	data, synced []byte
	// A directory: the entries readers see, and those on flash.
	kids, durable map[string]*node
	lock          *file // the open file holding the flock
}

func newDir(mode fs.FileMode) *node {
	return &node{dir: true, mode: mode, syncedMode: mode, kids: map[string]*node{}, durable: map[string]*node{}}
}

// New returns an empty file system: a root directory, on flash.
func New() *FS {
	f := &FS{root: newDir(0o755)}
	f.cond = sync.NewCond(&f.mu)
	return f
}

var _ flash.FS = (*FS)(nil)

// Ops returns the changes made since New, Clone or Restart.
func (f *FS) Ops() []Op {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

// CutAfter cuts the power after the next n changes (n ≥ 1).
func (f *FS) CutAfter(n int) {
	if n < 1 {
		panic("powercut: CutAfter needs n >= 1")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cutAt = len(f.ops) + n
}

// Off reports whether the power went.
func (f *FS) Off() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.off
}

// Clone returns a copy of the file system as it is, durable or not (what a
// crash that keeps the page cache, like kill -9, leaves), with the power
// on and no changes recorded.
func (f *FS) Clone() *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := New()
	seen := map[*node]*node{}
	var copyNode func(n *node) *node
	copyNode = func(n *node) *node {
		if m, ok := seen[n]; ok {
			return m
		}
		m := &node{dir: n.dir, mode: n.mode, syncedMode: n.syncedMode, data: slices.Clone(n.data), synced: slices.Clone(n.synced)}
		seen[n] = m
		if n.dir {
			m.kids, m.durable = map[string]*node{}, map[string]*node{}
			for k, v := range n.kids {
				m.kids[k] = copyNode(v)
			}
			for k, v := range n.durable {
				m.durable[k] = copyNode(v)
			}
		}
		return m
	}
	c.root = copyNode(f.root)
	return c
}

// Restart returns the file system that comes back after a power cut now:
// what was on flash, with loss applied to what was not. The power is on
// in it, everything in it is on flash, and no changes are recorded. f is
// left as it is.
func (f *FS) Restart(loss Loss) *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := New()
	seen := map[*node]*node{}
	var boot func(n *node) *node
	boot = func(n *node) *node {
		if m, ok := seen[n]; ok {
			return m
		}
		if n.dir {
			m := newDir(n.syncedMode)
			seen[n] = m
			entries := n.durable
			if loss == Journaled {
				entries = n.kids
			}
			for k, v := range entries {
				c := boot(v)
				m.kids[k], m.durable[k] = c, c
			}
			return m
		}
		data := slices.Clone(n.synced)
		if loss == Torn && !bytes.Equal(n.data, n.synced) {
			if bytes.HasPrefix(n.data, n.synced) {
				data = slices.Clone(n.data[:len(n.synced)+(len(n.data)-len(n.synced))/2])
			} else {
				data = slices.Clone(n.data[:len(n.data)/2])
			}
		}
		m := &node{mode: n.syncedMode, syncedMode: n.syncedMode, data: data, synced: slices.Clone(data)}
		seen[n] = m
		return m
	}
	r.root = boot(f.root)
	return r
}

// Files returns every file's path and bytes as a reader sees them, for
// messages and comparisons.
func (f *FS) Files() map[string][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string][]byte{}
	var walk func(dir string, n *node)
	walk = func(dir string, n *node) {
		for k, v := range n.kids {
			p := dir + "/" + k
			if v.dir {
				walk(p, v)
			} else {
				m[p] = slices.Clone(v.data)
			}
		}
	}
	walk("", f.root)
	return m
}

// record notes a change; the lock is held. The change that reaches the
// armed count cuts the power after it took effect.
func (f *FS) record(o Op) {
	f.ops = append(f.ops, o)
	if f.cutAt > 0 && len(f.ops) >= f.cutAt {
		f.off = true
		f.cond.Broadcast()
	}
}

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// split cleans name into its elements; "/" is none.
func split(name string) []string {
	c := filepath.Clean("/" + name)
	if c == "/" {
		return nil
	}
	return strings.Split(c[1:], "/")
}

// walk finds the node at name; the lock is held.
func (f *FS) walk(name string) (*node, error) {
	n := f.root
	for _, e := range split(name) {
		if !n.dir {
			return nil, syscall.ENOTDIR
		}
		c, ok := n.kids[e]
		if !ok {
			return nil, syscall.ENOENT
		}
		n = c
	}
	return n, nil
}

// parent finds the directory name is in and name's last element.
func (f *FS) parent(name string) (*node, string, error) {
	el := split(name)
	if len(el) == 0 {
		return nil, "", syscall.EBUSY // the root
	}
	d, err := f.walk("/" + strings.Join(el[:len(el)-1], "/"))
	if err != nil {
		return nil, "", err
	}
	if !d.dir {
		return nil, "", syscall.ENOTDIR
	}
	return d, el[len(el)-1], nil
}

// OpenFile opens name as os.OpenFile does, for the flags os.O_RDONLY,
// O_WRONLY, O_RDWR, O_CREATE, O_EXCL, O_TRUNC and O_APPEND; others are
// ignored.
func (f *FS) OpenFile(name string, flag int, perm fs.FileMode) (flash.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.off {
		return nil, pathErr("open", name, ErrPowerCut)
	}
	writable := flag&(os.O_WRONLY|os.O_RDWR) != 0
	n, err := f.walk(name)
	switch {
	case err == nil && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, pathErr("open", name, syscall.EEXIST)
	case err == nil && n.dir && writable:
		return nil, pathErr("open", name, syscall.EISDIR)
	case err == nil:
		if writable && flag&os.O_TRUNC != 0 && len(n.data) > 0 {
			n.data = nil
			f.record(Op{Kind: Write, Path: name})
		}
	case errors.Is(err, syscall.ENOENT) && flag&os.O_CREATE != 0:
		d, base, perr := f.parent(name)
		if perr != nil {
			return nil, pathErr("open", name, perr)
		}
		n = &node{mode: perm.Perm(), syncedMode: perm.Perm()}
		d.kids[base] = n
		f.record(Op{Kind: Create, Path: name})
	default:
		return nil, pathErr("open", name, err)
	}
	return &file{fs: f, n: n, name: name, write: writable, read: flag&os.O_WRONLY == 0, append: flag&os.O_APPEND != 0}, nil
}

// Stat returns the node's FileInfo; there are no links to follow.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.off {
		return nil, pathErr("stat", name, ErrPowerCut)
	}
	n, err := f.walk(name)
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	return n.info(filepath.Base(name)), nil
}

// Lstat is Stat: there are no symbolic links.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	fi, err := f.Stat(name)
	if pe, ok := err.(*fs.PathError); ok {
		pe.Op = "lstat"
	}
	return fi, err
}

// ReadDir lists the directory name, sorted by name.
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.off {
		return nil, pathErr("readdir", name, ErrPowerCut)
	}
	n, err := f.walk(name)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if !n.dir {
		return nil, pathErr("readdirent", name, syscall.ENOTDIR)
	}
	var list []fs.DirEntry
	for _, k := range slices.Sorted(maps.Keys(n.kids)) {
		list = append(list, fs.FileInfoToDirEntry(n.kids[k].info(k)))
	}
	return list, nil
}

// Mkdir makes the directory name.
func (f *FS) Mkdir(name string, perm fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.off {
		return pathErr("mkdir", name, ErrPowerCut)
	}
	d, base, err := f.parent(name)
	if err != nil {
		return pathErr("mkdir", name, err)
	}
	if _, ok := d.kids[base]; ok {
		return pathErr("mkdir", name, syscall.EEXIST)
	}
	d.kids[base] = newDir(perm.Perm())
	f.record(Op{Kind: Mkdir, Path: name})
	return nil
}

// Rename moves oldpath to newpath, replacing a file there.
func (f *FS) Rename(oldpath, newpath string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	linkErr := func(err error) error { return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err} }
	if f.off {
		return linkErr(ErrPowerCut)
	}
	od, obase, err := f.parent(oldpath)
	if err != nil {
		return linkErr(err)
	}
	n, ok := od.kids[obase]
	if !ok {
		return linkErr(syscall.ENOENT)
	}
	nd, nbase, err := f.parent(newpath)
	if err != nil {
		return linkErr(err)
	}
	if old, ok := nd.kids[nbase]; ok && old != n {
		switch {
		case old.dir && !n.dir:
			return linkErr(syscall.EISDIR)
		case !old.dir && n.dir:
			return linkErr(syscall.ENOTDIR)
		case old.dir && len(old.kids) > 0:
			return linkErr(syscall.ENOTEMPTY)
		}
	}
	delete(od.kids, obase)
	nd.kids[nbase] = n
	f.record(Op{Kind: Rename, Path: oldpath, To: newpath})
	return nil
}

// Remove removes a file or an empty directory.
func (f *FS) Remove(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.off {
		return pathErr("remove", name, ErrPowerCut)
	}
	d, base, err := f.parent(name)
	if err != nil {
		return pathErr("remove", name, err)
	}
	n, ok := d.kids[base]
	if !ok {
		return pathErr("remove", name, syscall.ENOENT)
	}
	if n.dir && len(n.kids) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(d.kids, base)
	f.record(Op{Kind: Remove, Path: name})
	return nil
}

// Chmod sets the permission bits of name.
func (f *FS) Chmod(name string, mode fs.FileMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.off {
		return pathErr("chmod", name, ErrPowerCut)
	}
	n, err := f.walk(name)
	if err != nil {
		return pathErr("chmod", name, err)
	}
	n.mode = mode.Perm()
	f.record(Op{Kind: Chmod, Path: name})
	return nil
}

// syncAll puts everything on flash; the lock is held.
func (f *FS) syncAll() {
	seen := map[*node]bool{}
	var walk func(n *node)
	walk = func(n *node) {
		if seen[n] {
			return
		}
		seen[n] = true
		n.syncedMode = n.mode
		if !n.dir {
			n.synced = slices.Clone(n.data)
			return
		}
		for _, c := range n.durable {
			walk(c)
		}
		for _, c := range n.kids {
			walk(c)
		}
		n.durable = maps.Clone(n.kids)
	}
	walk(f.root)
}

func (n *node) info(name string) fs.FileInfo {
	fi := info{name: name, mode: n.mode, size: int64(len(n.data))}
	if n.dir {
		fi.mode |= fs.ModeDir
		fi.size = 0
	}
	return fi
}

type info struct {
	name string
	mode fs.FileMode
	size int64
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.size }
func (i info) Mode() fs.FileMode  { return i.mode }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.mode.IsDir() }
func (i info) Sys() any           { return nil }

// file is an open file or directory.
type file struct {
	fs                  *FS
	n                   *node
	name                string
	read, write, append bool
	off                 int
	closed              bool
}

// check returns the error for a call named op on f, or nil; the lock is
// held.
func (h *file) check(op string) error {
	switch {
	case h.closed:
		return pathErr(op, h.name, os.ErrClosed)
	case h.fs.off:
		return pathErr(op, h.name, ErrPowerCut)
	}
	return nil
}

func (h *file) Read(p []byte) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("read"); err != nil {
		return 0, err
	}
	if h.n.dir {
		return 0, pathErr("read", h.name, syscall.EISDIR)
	}
	if !h.read {
		return 0, pathErr("read", h.name, syscall.EBADF)
	}
	if h.off >= len(h.n.data) {
		return 0, io.EOF
	}
	n := copy(p, h.n.data[h.off:])
	h.off += n
	return n, nil
}

func (h *file) Write(p []byte) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("write"); err != nil {
		return 0, err
	}
	if !h.write {
		return 0, pathErr("write", h.name, syscall.EBADF)
	}
	if h.append {
		h.off = len(h.n.data)
	}
	if end := h.off + len(p); end > len(h.n.data) {
		h.n.data = append(h.n.data, make([]byte, end-len(h.n.data))...)
	}
	copy(h.n.data[h.off:], p)
	h.off += len(p)
	h.fs.record(Op{Kind: Write, Path: h.name, N: len(p)})
	return len(p), nil
}

func (h *file) Close() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return pathErr("close", h.name, os.ErrClosed)
	}
	h.closed = true
	if h.n.lock == h {
		h.n.lock = nil
		h.fs.cond.Broadcast()
	}
	if h.fs.off {
		return pathErr("close", h.name, ErrPowerCut)
	}
	return nil
}

func (h *file) Stat() (fs.FileInfo, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("stat"); err != nil {
		return nil, err
	}
	return h.n.info(filepath.Base(h.name)), nil
}

func (h *file) Chmod(mode fs.FileMode) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("chmod"); err != nil {
		return err
	}
	h.n.mode = mode.Perm()
	h.fs.record(Op{Kind: Chmod, Path: h.name})
	return nil
}

func (h *file) Sync() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("sync"); err != nil {
		return err
	}
	h.n.syncedMode = h.n.mode
	if h.n.dir {
		h.n.durable = maps.Clone(h.n.kids)
		h.fs.record(Op{Kind: SyncDir, Path: h.name})
	} else {
		h.n.synced = slices.Clone(h.n.data)
		h.fs.record(Op{Kind: Sync, Path: h.name})
	}
	return nil
}

func (h *file) SyncFS() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.check("syncfs"); err != nil {
		return err
	}
	h.fs.syncAll()
	h.fs.record(Op{Kind: SyncFS, Path: h.name})
	return nil
}

// Flock takes or releases the file's lock, as flock(2) with LOCK_EX or
// LOCK_SH (both exclusive here), LOCK_NB and LOCK_UN.
func (h *file) Flock(how int) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if how&syscall.LOCK_UN != 0 {
		if h.n.lock == h {
			h.n.lock = nil
			h.fs.cond.Broadcast()
		}
		return nil
	}
	for {
		if err := h.check("flock"); err != nil {
			return err
		}
		if h.n.lock == nil || h.n.lock == h {
			h.n.lock = h
			return nil
		}
		if how&syscall.LOCK_NB != 0 {
			return pathErr("flock", h.name, syscall.EWOULDBLOCK)
		}
		h.fs.cond.Wait()
	}
}
