package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"mailagent/appliance/config"
)

// TestApplyMemoryLimit: run gives the runtime the board's memory limit and
// says so, leaves one GOMEMLIMIT set, and puts the old limit back.
func TestApplyMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetMemoryLimit(-1)
	said, restore := applyMemoryLimit(20 << 20)
	if got := debug.SetMemoryLimit(-1); got != 20<<20 {
		t.Errorf("limit while running = %d, want %d", got, 20<<20)
	}
	if said != "memory limit 20 MiB" {
		t.Errorf("said %q", said)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("limit after = %d, want %d as before", got, before)
	}

	t.Setenv("GOMEMLIMIT", "64MiB")
	said, restore = applyMemoryLimit(20 << 20)
	defer restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("with GOMEMLIMIT the limit is %d, want %d left as it was", got, before)
	}
	if said != "memory limit 64MiB (GOMEMLIMIT)" {
		t.Errorf("said %q", said)
	}
}

// startAgent runs "mailagent run" in-process until the test ends.
func startAgent(t *testing.T, data string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdoutR, stdoutW := io.Pipe()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"--data", data, "run"}, strings.NewReader(""), stdoutW, &stderr)
		stdoutW.Close()
		done <- code
	}()
	sc := bufio.NewScanner(stdoutR)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "mailagent ") && strings.Contains(sc.Text(), "running on board") {
			break
		}
	}
	go io.Copy(io.Discard, stdoutR)
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("mailagent run: exit %d\n%s", code, stderr.String())
		}
	})
}

// writeConfig writes mailagent.toml into data.
func writeConfig(t *testing.T, data, doc string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(data, config.FileName), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRunHTTPLimits: "mailagent run" bounds what one client takes of the
// web listener. A header beyond 16 KiB gets 431 (Go's default let each
// request hold 1 MiB: 200 of them took the agent from 10 MB to 326 MB).
// One client gets 16 connections: the 17th closes the client's quiet one
// for room, and when all 16 serve a request (here POST /alarm bodies that
// do not come) the 17th is refused, while another client is still served.
func TestRunHTTPLimits(t *testing.T) {
	data := t.TempDir()
	port := closedPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	writeConfig(t, data, fmt.Sprintf(`[http]
listen = %q
alarm_user = "poster"
alarm_password = "poster-password-1"
`, addr))
	startAgent(t, data)

	get := func(c net.Conn, header string) string {
		t.Helper()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET /login HTTP/1.1\r\nHost: %s\r\n%s\r\n", addr, header)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err.Error()
		}
		resp.Body.Close()
		return resp.Status
	}
	dial := func(from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	if got := get(dial("127.0.0.3"), "X-Big: "+strings.Repeat("a", 32<<10)+"\r\n"); !strings.HasPrefix(got, "431") {
		t.Errorf("a 32 KiB header: %s, want 431", got)
	}
	if got := get(dial("127.0.0.3"), "X-Small: "+strings.Repeat("a", 8<<10)+"\r\n"); !strings.HasPrefix(got, "200") {
		t.Errorf("an 8 KiB header: %s, want 200", got)
	}

	// 16 quiet connections, then a request on a 17th: served, and the
	// oldest quiet one is closed for it.
	var quiet []net.Conn
	for range 16 {
		quiet = append(quiet, dial("127.0.0.1"))
	}
	if got := get(dial("127.0.0.1"), ""); !strings.HasPrefix(got, "200") {
		t.Fatalf("the 17th connection of a client, 16 quiet: %s, want 200", got)
	}
	quiet[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := quiet[0].Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the oldest quiet connection: Read = %v, want it closed for room (EOF)", err)
	}
	for _, c := range quiet {
		c.Close()
	}

	// 16 connections busy with a request, then a 17th: refused. The
	// handler asks for the body, which never comes: "100 Continue" says
	// that the server has read the header and serves the request.
	for i := range 16 {
		c := dial("127.0.0.4")
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "POST /alarm HTTP/1.1\r\nHost: %s\r\nAuthorization: Basic cG9zdGVyOnBvc3Rlci1wYXNzd29yZC0x\r\n"+
			"Content-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n", addr)
		if line, err := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("busy connection %d: %q, %v; want 100 Continue", i, line, err)
		}
	}
	if got := get(dial("127.0.0.2"), ""); !strings.HasPrefix(got, "200") {
		t.Errorf("another client while one has 16 busy: %s, want 200", got)
	}
	if got := get(dial("127.0.0.4"), ""); strings.HasPrefix(got, "200") {
		t.Errorf("the 17th connection of a client with 16 busy: %s, want it refused", got)
	}
}

// TestExposureNotes: run says at start which listeners take connections on
// every interface (the gateway's and PBX's default http.listen ":8443"),
// and what to set instead; loopback and LAN addresses get no note.
func TestExposureNotes(t *testing.T) {
	var c config.Config
	c.HTTP.Listen, c.Syslog.ListenUDP, c.Syslog.ListenTCP = ":8443", "0.0.0.0:514", "192.168.1.1:514"
	notes := exposureNotes(&c)
	if len(notes) != 2 || !strings.Contains(notes[0], "http.listen :8443") || !strings.Contains(notes[0], "192.168.1.1:8443") ||
		!strings.Contains(notes[1], "syslog.listen_udp 0.0.0.0:514") {
		t.Errorf("notes for :8443, 0.0.0.0:514 and 192.168.1.1:514 = %q, want the first two, each with what to set", notes)
	}
	c.HTTP.Listen, c.Syslog.ListenUDP, c.Syslog.ListenTCP = "127.0.0.1:8080", "[::]:514", ""
	if notes := exposureNotes(&c); len(notes) != 1 || !strings.Contains(notes[0], "[::]:514") {
		t.Errorf("notes for 127.0.0.1:8080 and [::]:514 = %q, want one for syslog", notes)
	}
}
