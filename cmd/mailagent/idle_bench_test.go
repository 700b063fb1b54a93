//go:build bench

package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailagent/appliance/config"
	"mailagent/appliance/ingest"
)

// idleFor is how long TestIdle leaves the agent alone.
const idleFor = 60 * time.Second

// TestIdle starts the real binary on a fresh data directory with a
// complete configuration (the SMTP server is a closed port on 127.0.0.1,
// never tried: no alarm comes) and leaves it idle for a minute. It fails if
// anything in the data directory changed meanwhile, and reports what make
// bench prints against the budgets: bytes written into the data directory
// (file snapshots) and by the process to storage (/proc/PID/io
// write_bytes), CPU time per minute, resident memory and the time from
// exec until the local socket answers. Run by make bench:
//
//	MAILAGENT_IDLE_RESULT=build/idle.txt go test -tags bench -run '^TestIdle$' ./cmd/mailagent
func TestIdle(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mailagent")
	if out, err := exec.Command("go", "build", "-tags", "nethttpomithttp2", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := t.TempDir()
	doc := fmt.Sprintf(`[device]
name = "gw-idle"
[mail]
from = "alarm@example.test"
to = ["ops@example.test"]
[smtp]
host = "127.0.0.1"
port = %d
tls = "none"
[http]
listen = "127.0.0.1:%d"
`, closedPort(t), closedPort(t))
	if err := os.WriteFile(filepath.Join(data, config.FileName), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "--data", data, "config", "check").CombinedOutput(); err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	socket := filepath.Join(data, "run", ingest.SocketName)

	agent := exec.Command(bin, "--data", data, "run")
	agentOut := agentLog(t)
	agent.Stdout, agent.Stderr = agentOut, agentOut
	start := time.Now()
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- agent.Wait() }()
	t.Cleanup(func() {
		agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			agent.Process.Kill()
			<-exited
		}
	})
	pid := agent.Process.Pid

	// Start to serving: exec until the socket answers a status request.
	var serving time.Duration
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var st struct{ Spooled int }
		err := ingest.Ask(ctx, socket, "status", &st)
		cancel()
		if err == nil {
			serving = time.Since(start)
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the agent exited before it answered: %v\n%s", err, logText(agentOut))
		default:
		}
		if i == 10000 {
			t.Fatalf("the socket did not answer in 10 s: %v\n%s", err, logText(agentOut))
		}
		time.Sleep(time.Millisecond)
	}

	// Let the start finish (first keep-alive check, delivery loop waiting),
	// then measure the idle minute.
	time.Sleep(2 * time.Second)
	before, io0, cpu0 := dirSnapshot(t, data), procIO(t, pid), procCPU(t, pid)
	time.Sleep(idleFor)
	after, io1, cpu1 := dirSnapshot(t, data), procIO(t, pid), procCPU(t, pid)
	rss := procStatus(t, pid, "VmRSS")
	select {
	case err := <-exited:
		t.Fatalf("the agent exited while idle: %v\n%s", err, logText(agentOut))
	default:
	}

	changed, bytesChanged := dirChanges(before, after)
	writeBytes := io1["write_bytes"] - io0["write_bytes"]
	cpuPerMin := time.Duration(float64(cpu1-cpu0) * float64(time.Minute) / float64(idleFor))
	lines := []string{
		fmt.Sprintf("idle %v: data directory: %d bytes in %d changed entries (budget 0)", idleFor, bytesChanged, len(changed)),
		fmt.Sprintf("idle %v: write_bytes (/proc/PID/io): %d (budget 0)", idleFor, writeBytes),
		fmt.Sprintf("idle %v: CPU %d ms per minute, user+system in ticks of 10 ms (budget 10 ms)", idleFor, cpuPerMin.Milliseconds()),
		fmt.Sprintf("idle %v: resident memory (VmRSS) %.1f MiB (budget 12)", idleFor, float64(rss)/(1<<20)),
		fmt.Sprintf("start to serving (exec until the socket answers): %v (budget 100 ms)", serving.Round(100*time.Microsecond)),
	}
	for _, l := range lines {
		t.Log(l)
	}
	if out := os.Getenv("MAILAGENT_IDLE_RESULT"); out != "" {
		if err := os.WriteFile(out, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Error(err)
		}
	}
	if len(changed) != 0 {
		t.Errorf("the data directory changed while idle: %q", changed)
	}
}

// agentLog is a file for the agent's output, outside the data directory.
func agentLog(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// logText is what the agent wrote so far.
func logText(f *os.File) string {
	b, _ := os.ReadFile(f.Name())
	return string(b)
}

// fileState is what a write changes in a file or directory.
type fileState struct {
	mode         fs.FileMode
	size         int64
	mtime, ctime int64 // ns
	inode        uint64
	sum          [sha256.Size]byte // files only
}

// dirSnapshot records every file and directory under dir, dir included.
func dirSnapshot(t *testing.T, dir string) map[string]fileState {
	t.Helper()
	m := make(map[string]fileState)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return errors.New(path + ": no stat_t")
		}
		s := fileState{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime().UnixNano(), ctime: syscall.TimespecToNsec(st.Ctim), inode: st.Ino}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			s.sum = sha256.Sum256(b)
		}
		m[path] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// dirChanges lists the entries created, removed or changed between two
// snapshots, and the bytes in them now (a removed file counts its old
// size).
func dirChanges(before, after map[string]fileState) (changed []string, n int64) {
	for p, b := range before {
		if a, ok := after[p]; !ok {
			changed, n = append(changed, p+" (removed)"), n+b.size
		} else if a != b {
			changed, n = append(changed, p), n+a.size
		}
	}
	for p, a := range after {
		if _, ok := before[p]; !ok {
			changed, n = append(changed, p+" (created)"), n+a.size
		}
	}
	return changed, n
}

// procIO reads /proc/PID/io.
func procIO(t *testing.T, pid int) map[string]int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]int64)
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			m[k], _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	if _, ok := m["write_bytes"]; !ok {
		t.Fatalf("/proc/%d/io has no write_bytes:\n%s", pid, b)
	}
	return m
}
