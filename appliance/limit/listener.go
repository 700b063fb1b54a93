package limit

// Connections: a listener that hands out at most so many, and survives
// running out of file descriptors.

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"mailagent/appliance/lograte"
)

// Backoff of Accept after an error: it starts at minBackoff and doubles up
// to maxBackoff, as net/http's Server does for temporary errors.
const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = time.Second
)

// roomWait is how long a new connection waits for room when the listener
// is full of busy connections.
const roomWait = 5 * time.Second

// logEvery spaces the log lines about refused and evicted connections and
// failed accepts.
const logEvery = 10 * time.Second

// ListenOptions configure Listen.
type ListenOptions struct {
	// Name says what listens, in log lines ("http", "syslog tcp").
	Name string
	// Max is the most connections open at once; it must be at least 1.
	Max int
	// PerClient is the most connections open at once from one client
	// (Client); 0 means no limit of its own. Connections without an IP (a
	// unix socket) are one client.
	PerClient int
	// Log receives a line now and then about refused and evicted
	// connections and failed accepts; nil discards it.
	Log *slog.Logger
	// Now is the clock that orders connections by age; nil means time.Now.
	Now func() time.Time
}

// ListenStats count what a Listener did.
type ListenStats struct {
	Open     int    // connections open now
	Accepted uint64 // connections handed out
	// Evicted counts connections closed to make room for a new one;
	// Refused new connections closed at once because every open one was
	// busy.
	Evicted, Refused uint64
	// AcceptErrors counts errors of the listener below, each followed by a
	// pause (out of file descriptors and the like).
	AcceptErrors uint64
}

// Listener wraps a net.Listener. Its Accept hands out at most Max
// connections at once and PerClient from one client. When a new
// connection would exceed either, it makes room by closing one that does
// nothing: first one that has not sent anything yet (quiet), then the one
// idle longest, from the same client when that client is at its limit,
// else from the client holding the most connections. A connection the
// server marks Active (serving a request) is never closed for room. A
// client whose connections are all active is refused its next one (closed
// at once); when the whole listener is busy, the new connection waits up to
// 5 s for one to end or fall idle (Accept waits with it, as the others
// could not get in either), and is refused after that. A connection
// counts until it is closed.
//
// Accept never gives up while the listener is open: after an error of the
// listener below (EMFILE, ENFILE, ECONNABORTED, …) it pauses, 5 ms
// doubling up to 1 s, and tries again, so a burst that exhausts file
// descriptors stops a way in for the burst only. Only Close ends it.
//
// Servers tell the Listener what a connection does with Active and Idle:
// net/http through its ConnState hook, syslog around each message.
type Listener struct {
	ln   net.Listener
	o    ListenOptions
	log  *slog.Logger
	now  func() time.Time
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	conns   map[*conn]struct{}
	client  map[netip.Addr]int
	changed chan struct{} // closed, and made anew, when room may have come

	accepted, evicted, refused, acceptErrors atomic.Uint64
	roomLog, errLog                          lograte.Limiter
}

// Listen wraps ln.
func Listen(ln net.Listener, o ListenOptions) *Listener {
	if o.Max < 1 {
		o.Max = 1
	}
	l := &Listener{ln: ln, o: o, log: o.Log, now: o.Now, done: make(chan struct{}),
		conns: make(map[*conn]struct{}), client: make(map[netip.Addr]int), changed: make(chan struct{})}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.roomLog.Period, l.errLog.Period = logEvery, logEvery
	return l
}

// The states of a connection.
const (
	quiet  = iota // accepted, nothing served yet
	idle          // between requests
	active        // serving a request
)

// conn is a connection the Listener handed out.
type conn struct {
	net.Conn
	l      *Listener
	client netip.Addr
	state  int
	since  time.Time // accepted, or became idle
	gone   bool      // no longer counted (l.mu)
	closed sync.Once
	err    error
}

// Close closes the connection and frees its place.
func (c *conn) Close() error {
	c.closed.Do(func() {
		c.err = c.Conn.Close()
		c.l.mu.Lock()
		c.l.removeLocked(c)
		c.l.mu.Unlock()
	})
	return c.err
}

// Accept waits for the next connection the limits let in.
func (l *Listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.isClosed() || errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			l.acceptErrors.Add(1)
			delay = min(max(2*delay, minBackoff), maxBackoff)
			if ok, held := l.errLog.Allow(); ok {
				l.log.Warn("accept failed; trying again", "listener", l.o.Name, "err", err, "pause", delay,
					"errors_total", l.acceptErrors.Load(), "not_logged", held)
			}
			t := time.NewTimer(delay)
			select {
			case <-l.done:
				t.Stop()
				return nil, net.ErrClosed
			case <-t.C:
			}
			continue
		}
		delay = 0
		if lc := l.admit(c); lc != nil {
			l.accepted.Add(1)
			return lc, nil
		}
	}
}

// admit counts c in, making room if needed; nil when c was refused.
func (l *Listener) admit(c net.Conn) *conn {
	lc := &conn{Conn: c, l: l, client: ClientOf(c.RemoteAddr()), state: quiet, since: l.now()}
	var wait <-chan time.Time
	timedOut := false
	for {
		l.mu.Lock()
		if l.isClosed() {
			l.mu.Unlock()
			c.Close()
			return nil
		}
		room, victim, waitable := l.roomLocked(lc.client)
		if room || victim != nil {
			if victim != nil {
				l.removeLocked(victim)
			}
			l.conns[lc] = struct{}{}
			l.client[lc.client]++
			l.mu.Unlock()
			if victim != nil {
				l.evict(victim, c)
			}
			return lc
		}
		if !waitable || timedOut {
			l.mu.Unlock()
			l.refuse(c)
			return nil
		}
		changed := l.changed
		l.mu.Unlock()
		if wait == nil {
			t := time.NewTimer(roomWait)
			defer t.Stop()
			wait = t.C
		}
		select {
		case <-changed:
		case <-wait:
			timedOut = true
		case <-l.done:
			c.Close()
			return nil
		}
	}
}

// roomLocked says whether a new connection of client fits, else which
// connection to close for it; waitable when neither and the whole
// listener, not the client, is full: room may come.
func (l *Listener) roomLocked(client netip.Addr) (room bool, victim *conn, waitable bool) {
	switch {
	case l.o.PerClient > 0 && l.client[client] >= l.o.PerClient:
		return false, l.victimLocked(client, true), false
	case len(l.conns) >= l.o.Max:
		return false, l.victimLocked(netip.Addr{}, false), true
	}
	return true, nil, false
}

// evict closes victim to make room for c.
func (l *Listener) evict(victim *conn, c net.Conn) {
	victim.Close()
	l.evicted.Add(1)
	if ok, held := l.roomLog.Allow(); ok {
		l.log.Info("connection closed to make room", "listener", l.o.Name, "closed_peer", victim.RemoteAddr().String(),
			"new_peer", c.RemoteAddr().String(), "evicted_total", l.evicted.Load(), "not_logged", held)
	}
}

// refuse closes c: there is no room for it.
func (l *Listener) refuse(c net.Conn) {
	c.Close()
	l.refused.Add(1)
	if ok, held := l.roomLog.Allow(); ok {
		l.log.Warn("connection refused: every open one is busy", "listener", l.o.Name, "peer", c.RemoteAddr().String(),
			"max", l.o.Max, "per_client", l.o.PerClient, "refused_total", l.refused.Load(), "evicted_total", l.evicted.Load(), "not_logged", held)
	}
}

// victimLocked picks the connection to close for room: of client when
// own, else of any client, preferring the one holding the most
// connections. Quiet ones go before idle ones, the oldest first; active
// ones never. nil when there is none.
func (l *Listener) victimLocked(client netip.Addr, own bool) *conn {
	var v *conn
	better := func(c *conn) bool {
		if v == nil {
			return true
		}
		if c.state != v.state {
			return c.state < v.state
		}
		if !own {
			if n, m := l.client[c.client], l.client[v.client]; n != m {
				return n > m
			}
		}
		return c.since.Before(v.since)
	}
	for c := range l.conns {
		if c.state == active || (own && c.client != client) {
			continue
		}
		if better(c) {
			v = c
		}
	}
	return v
}

// removeLocked stops counting c.
func (l *Listener) removeLocked(c *conn) {
	if c.gone {
		return
	}
	c.gone = true
	delete(l.conns, c)
	if l.client[c.client]--; l.client[c.client] <= 0 {
		delete(l.client, c.client)
	}
	l.changedLocked()
}

// changedLocked wakes an admit waiting for room.
func (l *Listener) changedLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// own finds the connection of l that c is or wraps (a *tls.Conn, through
// its NetConn method); nil if none.
func (l *Listener) own(c net.Conn) *conn {
	for c != nil {
		if lc, ok := c.(*conn); ok && lc.l == l {
			return lc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// Active marks c as serving a request: it is not closed to make room.
func (l *Listener) Active(c net.Conn) { l.mark(c, active) }

// Idle marks c as waiting for its next request: it may be closed to make
// room, the longest idle first.
func (l *Listener) Idle(c net.Conn) { l.mark(c, idle) }

func (l *Listener) mark(c net.Conn, state int) {
	lc := l.own(c)
	if lc == nil {
		return
	}
	l.mu.Lock()
	if lc.state != state {
		lc.state = state
		if state == idle {
			lc.since = l.now()
			l.changedLocked()
		}
	}
	l.mu.Unlock()
}

// Addr is the address listened on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops listening; connections already handed out stay open.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.ln.Close()
}

func (l *Listener) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// Stats returns the counts so far.
func (l *Listener) Stats() ListenStats {
	l.mu.Lock()
	open := len(l.conns)
	l.mu.Unlock()
	return ListenStats{Open: open, Accepted: l.accepted.Load(), Evicted: l.evicted.Load(), Refused: l.refused.Load(),
		AcceptErrors: l.acceptErrors.Load()}
}
