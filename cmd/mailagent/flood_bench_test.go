//go:build bench

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailagent/appliance/agent"
	"mailagent/appliance/ingest"
	"mailagent/board"
)

// TestHeaderFlood: 200 connections from 200 addresses each send 1 MiB of
// request header at once to the agent on the host board, running as its
// own process. It reports the agent's peak resident memory against the
// board's limit (before: 326 MB) and fails beyond it, and checks that the
// page and the socket answer afterwards. Run by make bench:
//
//	MAILAGENT_HEADERS_RESULT=build/headers.txt go test -tags bench -run '^TestHeaderFlood$' ./cmd/mailagent
func TestHeaderFlood(t *testing.T) {
	const conns, headerBytes = 200, 1 << 20
	host, err := board.Lookup("host")
	if err != nil {
		t.Fatal(err)
	}
	budget := host.MemoryLimit
	bin := buildAgent(t)
	data := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", closedPort(t))
	agentConfig(t, data, addr, "", "")
	p := startAgentProcess(t, bin, data)
	before := procStatus(t, p.pid, "VmRSS")

	line := "X-Pad: " + strings.Repeat("a", 1000) + "\r\n"
	header := "GET / HTTP/1.1\r\nHost: " + addr + "\r\n" + strings.Repeat(line, headerBytes/len(line)) + "\r\n"
	var mu sync.Mutex
	answers := map[string]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range conns {
		wg.Go(func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 4, 0, byte(1+i))}, Timeout: 30 * time.Second}
			<-start
			c, err := d.Dial("tcp", addr)
			what := ""
			if err != nil {
				what = "dial failed"
			} else {
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				io.WriteString(c, header) // the agent may stop reading and close
				if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
					what = resp.Status
					resp.Body.Close()
				} else {
					what = "closed without an answer"
				}
			}
			mu.Lock()
			answers[what]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	peak := procStatus(t, p.pid, "VmHWM")

	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get("http://" + addr + "/login")
	if err != nil {
		t.Fatalf("the page after the flood: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the page after the flood: %s, want 200", resp.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var st agent.LiveStatus
	if err := ingest.Ask(ctx, filepath.Join(data, "run", ingest.SocketName), "status", &st); err != nil {
		t.Errorf("the socket after the flood: %v", err)
	}
	result := fmt.Sprintf("header flood: %d connections × 1 MiB of headers at once: peak RSS %.1f MiB (%.1f before; budget %d, the host board's limit); answers %v; page and socket answer afterwards",
		conns, float64(peak)/(1<<20), float64(before)/(1<<20), budget>>20, answers)
	t.Log(result)
	if out := os.Getenv("MAILAGENT_HEADERS_RESULT"); out != "" {
		os.WriteFile(out, []byte(result+"\n"), 0o644)
	}
	if peak > budget {
		t.Errorf("peak RSS %.1f MiB is over the board's limit of %d MiB", float64(peak)/(1<<20), budget>>20)
	}
}

// TestUDPFlood: with the spool full of 50 alarms raised by "mailagent
// alarm", 500 spoofed syslog criticals a second arrive over UDP for 20 s
// (before: 20,005 write syscalls and 388 MB written, and the real alarms
// pushed out). It reports the bytes the agent wrote (/proc/PID/io
// write_bytes) and its write syscalls, fails beyond 1 MiB, and fails if an
// authenticated alarm left the queue. Run by make bench:
//
//	MAILAGENT_UDP_RESULT=build/udpflood.txt go test -tags bench -run '^TestUDPFlood$' ./cmd/mailagent
func TestUDPFlood(t *testing.T) {
	const perSecond, seconds, authenticated = 500, 20, 50
	const budget = 1 << 20
	bin := buildAgent(t)
	data := t.TempDir()
	udp := fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp"))
	agentConfig(t, data, fmt.Sprintf("127.0.0.1:%d", closedPort(t)), udp, "")
	p := startAgentProcess(t, bin, data)
	for i := range authenticated {
		if out, err := exec.Command(bin, "--data", data, "alarm", "--severity", "major", "--code", fmt.Sprintf("AUTH-%d", i), "raised on the box").CombinedOutput(); err != nil || !strings.Contains(string(out), "taken") {
			t.Fatalf("mailagent alarm: %v\n%s", err, out)
		}
	}
	io0 := procIO(t, p.pid)

	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tick := time.NewTicker(10 * time.Millisecond) // the flood's pace, 5 datagrams a tick
	sent := 0
	for sent < perSecond*seconds {
		<-tick.C
		for range perSecond / 100 {
			fmt.Fprintf(c, "<10>Nov 24 11:32:49 spoofed panic: fake critical %d", sent)
			sent++
		}
	}
	tick.Stop()
	// A datagram that is not syslog: the agent logs it (at debug level)
	// once it has taken the flood before it.
	io.WriteString(c, "not syslog")
	p.waitFor(t, "transport=udp", 1)
	io1 := procIO(t, p.pid)

	out, err := exec.Command(bin, "--data", data, "queue").CombinedOutput()
	if err != nil {
		t.Fatalf("mailagent queue: %v\n%s", err, out)
	}
	missing, spoofed := 0, strings.Count(string(out), "spoofed")
	for i := range authenticated {
		if !strings.Contains(string(out), fmt.Sprintf(" AUTH-%d:", i)) {
			missing++
		}
	}
	written, syscalls := io1["write_bytes"]-io0["write_bytes"], io1["syscw"]-io0["syscw"]
	result := fmt.Sprintf("UDP flood: %d spoofed criticals (%d/s for %d s): %d bytes written (write_bytes; budget %d), %d write syscalls; %d of them on flash; %d of %d authenticated alarms still queued",
		sent, perSecond, seconds, written, budget, syscalls, spoofed, authenticated-missing, authenticated)
	t.Log(result)
	if out := os.Getenv("MAILAGENT_UDP_RESULT"); out != "" {
		os.WriteFile(out, []byte(result+"\n"), 0o644)
	}
	if missing > 0 {
		t.Errorf("%d authenticated alarms were pushed out by the flood:\n%s", missing, out)
	}
	if written > budget {
		t.Errorf("the flood had the agent write %d bytes, budget %d", written, budget)
	}
}
