// Package ptytest opens pseudo-terminals for tests of the serial console.
package ptytest

import (
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Terminal is the master side of a pseudo-terminal, driven as a
// technician's terminal program would drive a serial line; Port is the
// slave's path, which the console opens as its serial port.
type Terminal struct {
	Port string

	t      testing.TB
	master *os.File
	mu     sync.Mutex
	screen strings.Builder
}

// Open opens a pseudo-terminal and records everything the console writes
// to it; it is closed when the test ends. It skips the test where there
// are no pseudo-terminals.
func Open(t testing.TB) *Terminal {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	term := &Terminal{Port: "/dev/pts/" + strconv.Itoa(n), t: t, master: m}
	go io.Copy(term, m)
	return term
}

func (term *Terminal) Write(p []byte) (int, error) {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.screen.Write(p)
}

// Screen is everything the console has written so far.
func (term *Terminal) Screen() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.screen.String()
}

// Type sends s as typed keys.
func (term *Terminal) Type(s string) {
	term.t.Helper()
	if _, err := term.master.WriteString(s); err != nil {
		term.t.Fatalf("typing on the terminal: %v", err)
	}
}

// WaitFor waits until the screen holds want n times, at most wait.
func (term *Terminal) WaitFor(want string, n int, wait time.Duration) {
	term.t.Helper()
	deadline := time.Now().Add(wait)
	for strings.Count(term.Screen(), want) < n {
		if time.Now().After(deadline) {
			term.t.Fatalf("waited %v for %d× %q on the console:\n%s", wait, n, want, term.Screen())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
