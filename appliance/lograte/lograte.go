// Package lograte keeps a storm of like events from flooding the log: one
// line of a kind per period, and the next line says how many were held
// back. On a box whose log goes to flash or a slow console, 10,000 refused
// alarms must not become 10,000 lines.
package lograte

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultPeriod is the period of a zero Limiter.
const DefaultPeriod = time.Minute

// Limiter lets one line through per Period. The zero value is ready to use
// and safe for concurrent use.
type Limiter struct {
	// Period is the least time between two lines; DefaultPeriod if zero.
	Period time.Duration
	// Now is the clock; time.Now if nil.
	Now func() time.Time

	mu   sync.Mutex
	next time.Time
	held int
}

// Allow reports whether a line may be written now and, if so, how many
// were held back since the last one.
func (l *Limiter) Allow() (ok bool, held int) {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	period := l.Period
	if period <= 0 {
		period = DefaultPeriod
	}
	t := now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.Before(l.next) {
		l.held++
		return false, 0
	}
	held, l.held = l.held, 0
	l.next = t.Add(period)
	return true, held
}

// Log writes the line to log if Allow lets it, adding "held_back" with
// the count of lines held back before it, when there were any.
func (l *Limiter) Log(log *slog.Logger, level slog.Level, msg string, args ...any) {
	ok, held := l.Allow()
	if !ok {
		return
	}
	if held > 0 {
		args = append(args, "held_back", held)
	}
	log.Log(context.Background(), level, msg, args...)
}
