package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"encoding/json"
	"mailagent/appliance/alarm"
)

func newForTest(t *testing.T, sink Sink) string {
	t.Helper()
	path, _ := serveSocketForTest(t, sink)
	return path
}

// serveSocketForTest serves the socket until the test ends; its log goes
// to the test's output and to logs.
func serveSocketForTest(t *testing.T, sink Sink) (path string, logs *syncBuffer) {
	t.Helper()
	path = filepath.Join(t.TempDir(), SocketName)
	logs = newSyncBuffer()
	s, err := ListenSocket(path, sink, slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	return path, logs
}

func TestSocketDelivers(t *testing.T) {
	var mu sync.Mutex
	var got []alarm.Alarm
	path := newForTest(t, func(ctx context.Context, a alarm.Alarm) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, a)
		return nil
	})
	a := alarm.Alarm{Severity: alarm.Major, Code: "LINK-DOWN", Source: "eth1", Text: "link lost\nsecond line",
		Details: []alarm.Detail{{Key: "port", Value: "3"}}}
	if err := Send(context.Background(), path, a); err != nil {
		t.Fatalf("Send = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Code != "LINK-DOWN" || got[0].Text != a.Text || got[0].Details[0].Value != "3" || got[0].Time.IsZero() {
		t.Errorf("sink got %+v", got)
	}
}

func TestSocketRefusals(t *testing.T) {
	path := newForTest(t, func(ctx context.Context, a alarm.Alarm) error {
		if a.Code == "FULL" {
			return errors.New("queue full")
		}
		return nil
	})
	tests := []struct {
		name string
		a    alarm.Alarm
		want string
	}{
		{"sink refuses", alarm.Alarm{Severity: alarm.Info, Code: "FULL"}, "queue full"},
		{"invalid", alarm.Alarm{Severity: alarm.Info, Code: ""}, "code: missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Send(context.Background(), path, tt.a)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Send = %v, want %q", err, tt.want)
			}
		})
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("not json\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 200)
	n, _ := c.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "error: request is not an alarm") {
		t.Errorf("answer to garbage = %q", buf[:n])
	}
}

func TestNoAgent(t *testing.T) {
	err := Send(context.Background(), filepath.Join(t.TempDir(), "none.sock"), alarm.Alarm{Code: "X"})
	if !errors.Is(err, ErrNoAgent) {
		t.Errorf("Send without agent = %v, want ErrNoAgent", err)
	}
}

func TestSecondAgentRefused(t *testing.T) {
	path := newForTest(t, func(context.Context, alarm.Alarm) error { return nil })
	if _, err := ListenSocket(path, nil, slog.Default()); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second ListenSocket = %v, want already running", err)
	}
}

func TestSocketControl(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	s, err := ListenSocket(path, func(context.Context, alarm.Alarm) error { return nil }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.SetControl(func(ctx context.Context, op string) (any, error) {
		if op == "status" {
			return map[string]int{"queued": 3}, nil
		}
		return nil, errors.New("no such operation")
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	var v map[string]int
	if err := Ask(context.Background(), path, "status", &v); err != nil || v["queued"] != 3 {
		t.Errorf("Ask(status) = %v, %v", v, err)
	}
	if err := Ask(context.Background(), path, "explode", &v); err == nil || !strings.Contains(err.Error(), "no such operation") {
		t.Errorf("Ask(explode) = %v", err)
	}
	if err := Send(context.Background(), path, alarm.Alarm{Severity: alarm.Info, Code: "X"}); err != nil {
		t.Errorf("an alarm after a question: %v", err)
	}
}

// TestSocketCleansAlarms: an alarm from the socket is cleaned as POST
// /alarm cleans one (alarm.ParseJSON): ESC, NUL and the other control
// characters never reach a mail body or a terminal; text keeps its
// newlines and tabs.
func TestSocketCleansAlarms(t *testing.T) {
	sink := new(fakeSink)
	path := newForTest(t, sink.take)
	a := alarm.Alarm{Severity: alarm.Major, Code: "DISK", Source: "sd\x1b[31ma\x00",
		Text:    "line 1\x1b]0;owned\x07\nline\t2\x00\x7f\r\n",
		Details: []alarm.Detail{{Key: "dev\x1b", Value: "a\nb\x00c"}}}
	if err := Send(context.Background(), path, a); err != nil {
		t.Fatalf("Send = %v", err)
	}
	got := sink.alarms()
	if len(got) != 1 {
		t.Fatalf("sink took %d alarms", len(got))
	}
	g := got[0]
	if g.Source != "sd [31ma" || g.Text != "line 1]0;owned\nline\t2" || len(g.Details) != 1 || g.Details[0] != (alarm.Detail{Key: "dev", Value: "a b c"}) {
		t.Errorf("sink took source %q text %q details %q; want control characters out", g.Source, g.Text, g.Details)
	}
}

// highestFD is the highest file descriptor this process has open.
func highestFD(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	high := 0
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err == nil {
			high = max(high, fd)
		}
	}
	return high
}

// TestSocketSurvivesEMFILE: once the process is out of file descriptors,
// accept fails; the socket pauses and accepts again when descriptors are
// free, instead of ending its accept loop for good (after a burst of idle
// HTTP connections, "mailagent alarm" fell back to the spool forever and
// status said the agent was not running).
func TestSocketSurvivesEMFILE(t *testing.T) {
	sink := new(fakeSink)
	path, logs := serveSocketForTest(t, sink.take)

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(highestFD(t) + 16)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
				t.Error(err)
			}
		}
	}
	defer restore()
	// The burst: take every descriptor left but one, for the client.
	var hogs []*os.File
	defer func() {
		for _, f := range hogs {
			f.Close()
		}
	}()
	for {
		f, err := os.Open(os.DevNull)
		if errors.Is(err, syscall.EMFILE) {
			break
		}
		if err != nil || len(hogs) > 4096 {
			t.Fatalf("taking descriptors: %v after %d", err, len(hogs))
		}
		hogs = append(hogs, f)
	}
	hogs[len(hogs)-1].Close()
	hogs = hogs[:len(hogs)-1]
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial with one descriptor left: %v", err)
	}
	defer c.Close()
	waitLog(t, logs, "no failed accept", "accept failed", "too many open files")

	// The burst ends: the alarm waiting in the backlog is taken.
	for _, f := range hogs {
		f.Close()
	}
	hogs = nil
	restore()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, _ := json.Marshal(alarm.Alarm{Severity: alarm.Major, Code: "AFTER-BURST"})
	if _, err := c.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
	answer, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || answer != "ok\n" {
		t.Fatalf("answer after the burst = %q, %v; want ok", answer, err)
	}
	if err := Send(context.Background(), path, alarm.Alarm{Severity: alarm.Major, Code: "NEXT"}); err != nil {
		t.Errorf("a new client after the burst: %v", err)
	}
	if n := len(sink.alarms()); n != 2 {
		t.Errorf("sink took %d alarms, want 2", n)
	}
}

// impostorEnv names the socket TestHelperImpostor listens on.
const impostorEnv = "MAILAGENT_TEST_IMPOSTOR"

// TestHelperImpostor is not a test: run by TestSendRefusesAnotherUser as
// another user, it listens where the agent's socket goes and answers "ok"
// to every line, as a process of another user that took the run directory
// did, swallowing every alarm.
func TestHelperImpostor(t *testing.T) {
	path := os.Getenv(impostorEnv)
	if path == "" {
		t.Skip("a helper process of TestSendRefusesAnotherUser")
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		fmt.Println("listen:", err)
		os.Exit(1)
	}
	os.Chmod(path, 0o666)
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(0)
		}
		go func() {
			defer c.Close()
			bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, "ok\n")
		}()
	}
}

// TestSendRefusesAnotherUser: Send and Ask check with SO_PEERCRED that the
// process serving the socket runs as this user or root before they trust
// its answer; another user's process gets nothing and the caller is told
// ErrNoAgent (so "mailagent alarm" spools) and ErrNotAgent. As root, the
// other user is a real process of uid 65534; otherwise the uid the kernel
// reports is replaced (testHookPeerUID).
func TestSendRefusesAnotherUser(t *testing.T) {
	dir, err := os.MkdirTemp("", "impostor")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, SocketName)
	if os.Geteuid() == 0 {
		impostor(t, dir, path)
	} else {
		sink := new(fakeSink)
		s, err := ListenSocket(path, sink.take, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- s.Serve(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		testHookPeerUID = func(uint32) uint32 { return uint32(os.Geteuid()) + 1 }
		t.Cleanup(func() { testHookPeerUID = nil })
		defer func() {
			if n := len(sink.alarms()); n != 0 {
				t.Errorf("the other user's socket got %d alarms", n)
			}
		}()
	}
	err = Send(context.Background(), path, alarm.Alarm{Severity: alarm.Critical, Code: "SWALLOWED"})
	if !errors.Is(err, ErrNoAgent) || !errors.Is(err, ErrNotAgent) || !strings.Contains(err.Error(), "uid") {
		t.Errorf("Send to another user's socket = %v, want ErrNoAgent and ErrNotAgent naming the uid", err)
	}
	var v map[string]any
	if err := Ask(context.Background(), path, "status", &v); !errors.Is(err, ErrNotAgent) {
		t.Errorf("Ask of another user's socket = %v, want ErrNotAgent", err)
	}
}

// impostor runs TestHelperImpostor as uid 65534 listening on path, from a
// copy of the test binary that user may run.
func impostor(t *testing.T, dir, path string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "impostor.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestHelperImpostor$")
	cmd.Env = append(os.Environ(), impostorEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("impostor: %q, %v", line, err)
	}
}
