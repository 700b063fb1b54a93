//go:build rig

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailagent/appliance/agent"
	"mailagent/appliance/ingest"
)

// TestFDBurst runs the agent as its own process under prlimit
// --nofile=256:256 and opens a burst of connections that would take every
// file descriptor it has: 300 idle HTTP connections from 300 addresses, 40
// silent syslog TCP connections and 60 silent clients of the local socket.
// Once the burst ends the socket, the page and syslog (TCP and UDP) all
// answer again, without a restart. Before, one EMFILE ended the socket's
// accept loop for good: "mailagent alarm" fell back to the spool forever
// and status said the agent was not running.
func TestFDBurst(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Fatal("prlimit (util-linux) is missing: run make deps")
	}
	bin := buildAgent(t)
	data := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	udpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp"))
	tcpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	agentConfig(t, data, httpAddr, udpAddr, tcpAddr)
	p := startAgentProcess(t, bin, data, "prlimit", "--nofile=256:256")
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.pid))
	if err != nil || !strings.Contains(strings.Join(strings.Fields(string(limits)), " "), "Max open files 256 256") {
		t.Fatalf("the agent does not run with 256 file descriptors:\n%s", limits)
	}
	socket := filepath.Join(data, "run", ingest.SocketName)
	fdsBefore := openFDs(t, p.pid)

	// The burst, held open together.
	var burst []net.Conn
	dialFrom := func(network, addr string, from net.Addr) {
		d := net.Dialer{LocalAddr: from, Timeout: 10 * time.Second}
		c, err := d.Dial(network, addr)
		if err != nil {
			t.Fatalf("burst connection %d to %s: %v", len(burst), addr, err)
		}
		burst = append(burst, c)
	}
	for i := range 300 {
		dialFrom("tcp", httpAddr, &net.TCPAddr{IP: net.IPv4(127, 2, byte(i/250), byte(1+i%250))})
	}
	for i := range 40 {
		dialFrom("tcp", tcpAddr, &net.TCPAddr{IP: net.IPv4(127, 3, 0, byte(1+i))})
	}
	for range 60 {
		dialFrom("unix", socket, nil)
	}
	// What the agent holds now: the burst is accepted in order, so a
	// status request behind it answers once the agent has seen it all.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	var during agent.LiveStatus
	errDuring := ingest.Ask(ctx, socket, "status", &during)
	cancel()
	fdsPeak := openFDs(t, p.pid)
	for _, c := range burst {
		c.Close()
	}
	t.Logf("burst of %d connections: the agent held %d file descriptors (%d before, limit 256); socket during the burst: %v; accept errors logged: %d",
		len(burst), fdsPeak, fdsBefore, errDuring, strings.Count(p.log.String(), "accept failed"))

	// After the burst: the socket, the page and syslog answer.
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var st agent.LiveStatus
	if err := ingest.Ask(ctx, socket, "status", &st); err != nil {
		t.Fatalf("the socket after the burst: %v", err)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get("http://" + httpAddr + "/login")
	if err != nil {
		t.Fatalf("the page after the burst: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the page after the burst: %s, want 200", resp.Status)
	}
	// A syslog alarm over TCP and one over UDP, each followed by a message
	// that is not syslog: the agent logs that one (at debug level) once it
	// has handed the alarm before it to the queue.
	c, err := net.DialTimeout("tcp", tcpAddr, 10*time.Second)
	if err != nil {
		t.Fatalf("syslog tcp after the burst: %v", err)
	}
	fmt.Fprint(c, "<27>Nov 24 11:32:49 vm burst: after the burst over tcp\nnot syslog\n")
	c.Close()
	p.waitFor(t, "transport=tcp", 1)
	u, err := net.Dial("udp", udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(u, "<27>Nov 24 11:32:49 vm burst: after the burst over udp")
	fmt.Fprint(u, "not syslog")
	u.Close()
	p.waitFor(t, "transport=udp", 1)
	var after agent.LiveStatus
	if err := ingest.Ask(ctx, socket, "status", &after); err != nil {
		t.Fatal(err)
	}
	if got := (after.Memory + after.Spooled) - (st.Memory + st.Spooled); got != 2 {
		t.Errorf("syslog after the burst: %d alarms queued, want 2 (one over TCP, one over UDP)", got)
	}
	// And "mailagent alarm" reaches the agent, not the spool.
	out := mustRun(t, nil, "--data", data, "alarm", "--severity", "major", "--code", "AFTER-BURST", "after the burst")
	if !strings.Contains(out, "taken") {
		t.Errorf("mailagent alarm after the burst: %q, want it taken by the agent", out)
	}
}

// openFDs counts the file descriptors the process has open.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
