package agent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailagent/board"
)

// otherUID is a user the tests make own a directory: nobody.
const otherUID = 65534

// newDirsForTest is an agent whose data and run directories are data and
// run.
func newDirsForTest(t *testing.T, data, run string) (*Agent, *logWatch) {
	t.Helper()
	logged := newLogWatch()
	a, err := New(Options{Board: board.Profile{Name: "host"}, DataDir: data, RunDir: run,
		Log: slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logged), nil))})
	if err != nil {
		t.Fatal(err)
	}
	return a, logged
}

// ownedByOther makes dir (a directory or a link) belong to another user,
// or returns the euid under which dir, this user's, counts as another's:
// as root, chown; otherwise the agent is told it runs as someone else.
func ownedByOther(t *testing.T, dir string) (euid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		return os.Geteuid() + 1
	}
	if err := os.Lchown(dir, otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
	return 0
}

// TestRunRefusesDirectoriesOfOthers: the agent refuses to start when
// another user owns its data or run directory (a process of another user
// that made pbx's /tmp/mailagent replaced the socket and swallowed every
// alarm "mailagent alarm" sent), when a link to one belongs to another
// user, and when the directory sits in one anyone may write to without the
// sticky bit. The error names the directory and the owner, the hint what
// to do, and no socket is made.
func TestRunRefusesDirectoriesOfOthers(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, data, run string) (euid int)
		want  string
	}{
		{"run dir of other", func(t *testing.T, data, run string) int {
			os.MkdirAll(run, 0o700)
			return ownedByOther(t, run)
		}, "run directory"},
		{"data dir of other", func(t *testing.T, data, run string) int {
			return ownedByOther(t, data)
		}, "data directory"},
		{"run dir link of other", func(t *testing.T, data, run string) int {
			target := filepath.Join(t.TempDir(), "elsewhere")
			os.MkdirAll(target, 0o700)
			if err := os.Symlink(target, run); err != nil {
				t.Fatal(err)
			}
			return ownedByOther(t, run)
		}, "symbolic link"},
		{"run dir in 0777", func(t *testing.T, data, run string) int {
			if err := os.Chmod(filepath.Dir(run), 0o777); err != nil {
				t.Fatal(err)
			}
			return os.Geteuid()
		}, "without the sticky bit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			data := filepath.Join(base, "data")
			os.MkdirAll(data, 0o700)
			run := filepath.Join(base, "t", "m") // a socket's path must stay short
			os.MkdirAll(filepath.Dir(run), 0o755)
			euid := tt.setup(t, data, run)
			a, _ := newDirsForTest(t, data, run)
			var err error
			if euid == os.Geteuid() {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				err = a.Run(ctx, func() { t.Error("the agent started"); cancel() })
			} else {
				err = a.checkDirs(euid)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || Hint(err) == "" {
				t.Fatalf("Run = %v (hint %q), want a refusal naming %q, with a hint", err, Hint(err), tt.want)
			}
			if _, err := os.Lstat(a.SocketPath()); err == nil {
				t.Errorf("a socket was made at %s", a.SocketPath())
			}
		})
	}
}

// TestRunFixesWritableDirectories: a data or run directory of the agent's
// user that group or others may write to loses that permission at start,
// and the log says so.
func TestRunFixesWritableDirectories(t *testing.T) {
	base := t.TempDir()
	data, run := filepath.Join(base, "data"), filepath.Join(base, "run")
	for _, d := range []string{data, run} {
		os.MkdirAll(d, 0o700)
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	a, logged := newDirsForTest(t, data, run)
	_, stop := runForTest(t, a)
	if err := stop(); err != nil {
		t.Errorf("Run = %v", err)
	}
	for _, d := range []string{data, run} {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o755 {
			t.Errorf("%s has mode %04o after start, want 0755", d, got)
		}
	}
	logged.waitFor(t, "writable by group or others; fixed", 2)
}
