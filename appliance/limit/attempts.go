package limit

// Tries at a password: a token bucket per client.

import (
	"net/netip"
	"sync"
	"time"
)

// Attempts defaults (AttemptOptions): 5 failures, then one more every
// minute, for up to 1024 clients.
const (
	DefaultBurst   = 5
	DefaultRefill  = time.Minute
	DefaultClients = 1024
)

// AttemptOptions configure NewAttempts; zero fields take the defaults.
type AttemptOptions struct {
	// Burst is how many failed tries a client has before it must wait. If
	// zero, DefaultBurst.
	Burst int
	// Refill is how often a client gets one try back. If zero,
	// DefaultRefill.
	Refill time.Duration
	// Clients is the most clients tracked. If zero, DefaultClients.
	Clients int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// Attempts limits tries at a password per client with a token bucket each:
// a try takes a token, time puts them back, a success forgets the client,
// so only failures add up. The table is bounded: when full, the clients
// closest to a full bucket are forgotten first. It is safe for concurrent
// use.
type Attempts struct {
	burst   float64
	refill  time.Duration
	clients int
	now     func() time.Time

	mu sync.Mutex
	m  map[netip.Addr]*bucket
}

// NewAttempts returns a limiter that remembers nobody yet.
func NewAttempts(o AttemptOptions) *Attempts {
	l := &Attempts{burst: float64(o.Burst), refill: o.Refill, clients: o.Clients, now: o.Now,
		m: make(map[netip.Addr]*bucket)}
	if l.burst <= 0 {
		l.burst = DefaultBurst
	}
	if l.refill <= 0 {
		l.refill = DefaultRefill
	}
	if l.clients <= 0 {
		l.clients = DefaultClients
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

// refresh brings b's tokens up to now.
func (l *Attempts) refresh(b *bucket, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(l.burst, b.tokens+float64(d)/float64(l.refill))
		b.at = now
	}
}

// Take reports whether client may try now and, if so, counts the try (a
// success then forgets it, see Success). If not, it says how long until
// the client may. Taking before checking the password keeps parallel
// guesses within the limit too.
func (l *Attempts) Take(client netip.Addr) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.m[client]
	if !ok {
		if len(l.m) >= l.clients {
			l.evictLocked(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.m[client] = b
	}
	l.refresh(b, now)
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * float64(l.refill))
	}
	b.tokens--
	return true, 0
}

// Success forgets client's failures.
func (l *Attempts) Success(client netip.Addr) {
	l.mu.Lock()
	delete(l.m, client)
	l.mu.Unlock()
}

// tracked is how many clients the table holds.
func (l *Attempts) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// evictLocked forgets the clients whose bucket is full again, or else the
// one with the most tokens left.
func (l *Attempts) evictLocked(now time.Time) {
	var most netip.Addr
	best := -1.0
	for a, b := range l.m {
		l.refresh(b, now)
		if b.tokens >= l.burst {
			delete(l.m, a)
			continue
		}
		if b.tokens > best {
			most, best = a, b.tokens
		}
	}
	if len(l.m) >= l.clients {
		delete(l.m, most)
	}
}

// RetryAfter is wait as a Retry-After header's seconds: rounded up, at
// least 1.
func RetryAfter(wait time.Duration) int {
	return max(1, int((wait+time.Second-1)/time.Second))
}
