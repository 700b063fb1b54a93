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
	// Screen is everything the console has written to the terminal.
	Screen

	t      testing.TB
	master *os.File
}

// Screen records what a console writes, for a test to wait for; it is
// safe for one writer and readers at once.
type Screen struct {
	mu      sync.Mutex
	b       strings.Builder
	written chan struct{} // closed at the next write
}

func (s *Screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written != nil {
		close(s.written)
		s.written = nil
	}
	return s.b.Write(p)
}

// next is the text so far, and a channel closed at the next write.
func (s *Screen) next() (string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written == nil {
		s.written = make(chan struct{})
	}
	return s.b.String(), s.written
}

// String is everything written so far.
func (s *Screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor waits until the screen holds want n times, at most wait; it
// looks again at every write.
func (s *Screen) WaitFor(t testing.TB, want string, n int, wait time.Duration) {
	t.Helper()
	timeout := time.After(wait)
	for {
		text, written := s.next()
		if strings.Count(text, want) >= n {
			return
		}
		select {
		case <-written:
		case <-timeout:
			t.Fatalf("waited %v for %d× %q on the console:\n%s", wait, n, want, s.String())
		}
	}
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
	go io.Copy(&term.Screen, m)
	return term
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
	term.Screen.WaitFor(term.t, want, n, wait)
}
