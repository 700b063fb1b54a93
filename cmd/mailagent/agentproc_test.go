//go:build rig || bench

package main

// "mailagent run" as its own process, for the tests that measure it or
// starve it of file descriptors.

import (
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildAgent builds the binary as make cross does for the host.
func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mailagent")
	if out, err := exec.Command("go", "build", "-tags", "nethttpomithttp2", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// procLog is a process's output that a test reads, and waits on, while it
// runs.
type procLog struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // a token sent, without blocking, on every write
}

func (l *procLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	n, err := l.b.Write(p)
	l.mu.Unlock()
	select {
	case l.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// agentProcess is a running "mailagent run".
type agentProcess struct {
	pid    int
	log    *procLog
	exited chan error
}

// startAgentProcess runs bin's "mailagent -v --data data run", under the
// command wrap (e.g. prlimit) if given, until the test ends, and returns
// once it says it runs.
func startAgentProcess(t *testing.T, bin, data string, wrap ...string) *agentProcess {
	t.Helper()
	args := append(wrap, bin, "-v", "--data", data, "run")
	cmd := exec.Command(args[0], args[1:]...)
	p := &agentProcess{log: &procLog{wrote: make(chan struct{}, 1)}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.pid = cmd.Process.Pid
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("agent output:\n%s", p.log.String())
		}
	})
	p.waitFor(t, "running on board", 1)
	return p
}

// waitFor waits until the agent's output holds s at least n times. It
// fails the test when the agent exits first, or after a minute, a bound
// for a broken agent, not a pace.
func (p *agentProcess) waitFor(t *testing.T, s string, n int) {
	t.Helper()
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	for strings.Count(p.log.String(), s) < n {
		select {
		case <-p.log.wrote:
		case err := <-p.exited:
			p.exited <- err
			t.Fatalf("the agent exited (%v) before it said %q", err, s)
		case <-timeout.C:
			t.Fatalf("the agent did not say %q %d times in a minute", s, n)
		}
	}
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// agentConfig writes mailagent.toml for an agent that listens, and is
// measured or starved, but sends no mail: the page on addr, syslog on udp
// and tcp where set, and an SMTP server that is never reached (the digest
// window holds every alarm for 30 s, and nothing listens there).
func agentConfig(t *testing.T, data, addr, udp, tcp string) {
	t.Helper()
	doc := fmt.Sprintf(`[mail]
from = "alarm@example.test"
to = ["ops@example.test"]
[smtp]
host = "127.0.0.1"
port = %d
tls = "none"
[http]
listen = %q
[syslog]
listen_udp = %q
listen_tcp = %q
`, closedPort(t), addr, udp, tcp)
	writeConfig(t, data, doc)
}
