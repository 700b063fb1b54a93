package console

import (
	"bytes"
	"sync"
)

// Ring keeps the last lines written to it, for the console's log command.
// It is an io.Writer for a log handler; a line longer than MaxLine is cut.
type Ring struct {
	mu      sync.Mutex
	lines   []string
	next    int
	full    bool
	partial []byte
}

// NewRing returns a Ring keeping n lines.
func NewRing(n int) *Ring { return &Ring{lines: make([]string, n)} }

// Write adds the complete lines of p; a line without its end waits for
// the rest.
func (r *Ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(r.partial) < MaxLine {
				r.partial = append(r.partial, p[:min(len(p), MaxLine-len(r.partial))]...)
			}
			break
		}
		line := append(r.partial, p[:min(i, MaxLine)]...)
		r.partial = nil
		r.lines[r.next] = string(line)
		r.next = (r.next + 1) % len(r.lines)
		r.full = r.full || r.next == 0
		p = p[i+1:]
	}
	return n, nil
}

// Last returns up to n of the newest lines, oldest first.
func (r *Ring) Last(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []string
	if r.full {
		all = append(all, r.lines[r.next:]...)
	}
	all = append(all, r.lines[:r.next]...)
	if n < len(all) {
		all = all[len(all)-n:]
	}
	return all
}
