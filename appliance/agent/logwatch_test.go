package agent

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// logWatch is a log destination the test reads, and waits on, while the
// agent writes: every write wakes a waiter, so a test waits for the line
// that says something happened instead of polling for its effects.
type logWatch struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // a token sent, without blocking, on every write
}

func newLogWatch() *logWatch { return &logWatch{wrote: make(chan struct{}, 1)} }

func (l *logWatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	n, err := l.b.Write(p)
	l.mu.Unlock()
	select {
	case l.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (l *logWatch) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits until the log holds s at least n times. It fails the test
// after ten seconds, a bound for a broken agent, not a pace.
func (l *logWatch) waitFor(t *testing.T, s string, n int) {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for strings.Count(l.String(), s) < n {
		select {
		case <-l.wrote:
		case <-timeout.C:
			t.Fatalf("waiting for %d lines with %q; the log:\n%s", n, s, l.String())
		}
	}
}
