package webui

// The login rate limit: a token bucket per client address.

import (
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Login rate limit defaults (LimiterOptions): 5 failures, then one more
// every minute.
const (
	DefaultLoginBurst   = 5
	DefaultLoginRefill  = time.Minute
	DefaultLoginClients = 1024
)

// LimiterOptions configure NewLoginLimiter; zero fields take the defaults.
type LimiterOptions struct {
	// Burst is how many failed logins a client has before it must wait. If
	// zero, DefaultLoginBurst.
	Burst int
	// Refill is how often a client gets one attempt back. If zero,
	// DefaultLoginRefill.
	Refill time.Duration
	// Clients is the most clients tracked. If zero, DefaultLoginClients.
	Clients int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// LoginLimiter limits logins per client address with a token bucket each:
// a try takes a token, time puts them back, a success forgets the client, so
// only failures add up. IPv6 clients count per /64. The table is bounded: when full, the
// clients closest to a full bucket are forgotten first.
type LoginLimiter struct {
	burst   float64
	refill  time.Duration
	clients int
	now     func() time.Time

	mu sync.Mutex
	m  map[netip.Addr]*bucket
}

// NewLoginLimiter returns a limiter that remembers nobody yet.
func NewLoginLimiter(o LimiterOptions) *LoginLimiter {
	l := &LoginLimiter{burst: float64(o.Burst), refill: o.Refill, clients: o.Clients, now: o.Now,
		m: make(map[netip.Addr]*bucket)}
	if l.burst <= 0 {
		l.burst = DefaultLoginBurst
	}
	if l.refill <= 0 {
		l.refill = DefaultLoginRefill
	}
	if l.clients <= 0 {
		l.clients = DefaultLoginClients
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

// ClientAddr is the client of r as the limiter counts it: the remote IP,
// IPv6 cut to its /64. It is the zero Addr when RemoteAddr is not an IP.
func ClientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	var a netip.Addr
	if err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(r.RemoteAddr); err != nil {
		return netip.Addr{}
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	return a
}

// refresh brings b's tokens up to now.
func (l *LoginLimiter) refresh(b *bucket, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(l.burst, b.tokens+float64(d)/float64(l.refill))
		b.at = now
	}
}

// Take reports whether client may try a login now and, if so, counts the
// try (a success then forgets it, see Success). If not, it says how long
// until the client may. Taking before checking the password keeps parallel
// guesses within the limit too.
func (l *LoginLimiter) Take(client netip.Addr) (bool, time.Duration) {
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
func (l *LoginLimiter) Success(client netip.Addr) {
	l.mu.Lock()
	delete(l.m, client)
	l.mu.Unlock()
}

// evictLocked forgets the clients whose bucket is full again, or else the
// one with the most tokens left.
func (l *LoginLimiter) evictLocked(now time.Time) {
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
