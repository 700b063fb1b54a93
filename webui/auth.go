package webui

// Admin authentication: the one-time setup code's gate, sessions with
// their CSRF tokens, the login rate limit, trust_proxy and the security
// headers. The pages themselves are wired elsewhere; everything here is a
// plain value or an http.Handler wrapper.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"mailagent/appliance/agent"
)

// normalizeSetupCode makes "k7qx m2pd-9trf" and "K7QXM2PD9TRF" equal.
func normalizeSetupCode(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if r == '-' || r == ' ' || r == '\t' {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// SetupGate guards the one-time setup code: it lets the first password be
// set from the page, once, and only while no password is set.
type SetupGate struct {
	mu   sync.Mutex
	sum  [32]byte
	used bool
}

// NewSetupGate returns a gate that opens for code (see agent.NewSetupCode). An
// empty code never opens it.
func NewSetupGate(code string) *SetupGate {
	g := &SetupGate{sum: sha256.Sum256([]byte(normalizeSetupCode(code)))}
	if normalizeSetupCode(code) == "" {
		g.used = true
	}
	return g
}

// Use reports whether code is the setup code, compared in constant time
// (case, spaces and dashes aside). passwordSet tells whether an admin
// password exists; while one does, every code is refused. A code is good
// once: a successful Use closes the gate for good.
func (g *SetupGate) Use(code string, passwordSet bool) bool {
	sum := sha256.Sum256([]byte(normalizeSetupCode(code)))
	g.mu.Lock()
	defer g.mu.Unlock()
	ok := subtle.ConstantTimeCompare(sum[:], g.sum[:]) == 1
	if !ok || g.used || passwordSet {
		return false
	}
	g.used = true
	return true
}

// Session defaults (SessionOptions).
const (
	DefaultMaxSessions     = 32
	DefaultSessionIdle     = 30 * time.Minute
	DefaultSessionAbsolute = 12 * time.Hour
)

// SessionCookie is the name of the session cookie.
const SessionCookie = "mailagent_session"

// CSRFHeader and CSRFField carry a session's CSRF token on a
// state-changing request.
const (
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf"
)

// SessionOptions configure NewSessions; zero fields take the defaults.
type SessionOptions struct {
	// Max is the most sessions kept; beyond it the least recently used one
	// ends. If zero, DefaultMaxSessions.
	Max int
	// Idle ends a session not used for this long. If zero,
	// DefaultSessionIdle.
	Idle time.Duration
	// Absolute ends a session this long after login whatever its use. If
	// zero, DefaultSessionAbsolute.
	Absolute time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives a line per refused request; nil discards it.
	Log *slog.Logger
}

// Session is what a request learns of its session (SessionFrom).
type Session struct {
	// User is who logged in: "admin" for the password, or the name the
	// trusted proxy gave.
	User string
	// CSRF is the token the page must send back on every change, in the
	// X-CSRF-Token header or the csrf form field.
	CSRF string
	// Proxy tells that the trusted proxy in front authenticated the user.
	Proxy bool
}

type session struct {
	Session
	created, seen time.Time
}

// Sessions is the in-memory store of admin sessions. Session IDs are 32
// random bytes; the store keeps only their SHA-256, so a memory dump does
// not give away a usable cookie.
type Sessions struct {
	max            int
	idle, absolute time.Duration
	now            func() time.Time
	log            *slog.Logger

	mu sync.Mutex
	m  map[[32]byte]*session
}

// NewSessions returns an empty store.
func NewSessions(o SessionOptions) *Sessions {
	s := &Sessions{max: o.Max, idle: o.Idle, absolute: o.Absolute, now: o.Now, log: o.Log,
		m: make(map[[32]byte]*session)}
	if s.max <= 0 {
		s.max = DefaultMaxSessions
	}
	if s.idle <= 0 {
		s.idle = DefaultSessionIdle
	}
	if s.absolute <= 0 {
		s.absolute = DefaultSessionAbsolute
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// randToken returns n random bytes as unpadded base64url.
func randToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("webui: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Login starts a session for user and sets its cookie on w (Secure when r
// came over TLS). A session cookie r already carries is ended first, so a
// login never continues a session someone planted. It returns the new
// session, whose CSRF token the page needs.
func (s *Sessions) Login(w http.ResponseWriter, r *http.Request, user string) Session {
	return s.login(w, r, user, false)
}

func (s *Sessions) login(w http.ResponseWriter, r *http.Request, user string, proxy bool) Session {
	id := randToken(32)
	now := s.now()
	se := &session{Session: Session{User: user, CSRF: randToken(32), Proxy: proxy}, created: now, seen: now}
	s.mu.Lock()
	if c, err := r.Cookie(SessionCookie); err == nil {
		delete(s.m, sha256.Sum256([]byte(c.Value)))
	}
	s.purgeLocked(now)
	for len(s.m) >= s.max {
		s.evictLocked()
	}
	s.m[sha256.Sum256([]byte(id))] = se
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    id,
		Path:     "/",
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	return se.Session
}

// purgeLocked drops the expired sessions.
func (s *Sessions) purgeLocked(now time.Time) {
	for k, se := range s.m {
		if s.expired(se, now) {
			delete(s.m, k)
		}
	}
}

// evictLocked drops the least recently used session.
func (s *Sessions) evictLocked() {
	var oldest [32]byte
	var at time.Time
	first := true
	for k, se := range s.m {
		if first || se.seen.Before(at) {
			oldest, at, first = k, se.seen, false
		}
	}
	delete(s.m, oldest)
}

func (s *Sessions) expired(se *session, now time.Time) bool {
	return now.Sub(se.seen) >= s.idle || now.Sub(se.created) >= s.absolute
}

// lookup returns the live session of r's cookie and marks it used.
func (s *Sessions) lookup(r *http.Request) (Session, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return Session{}, false
	}
	k := sha256.Sum256([]byte(c.Value))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.m[k]
	if !ok {
		return Session{}, false
	}
	if s.expired(se, now) {
		delete(s.m, k)
		return Session{}, false
	}
	se.seen = now
	return se.Session, true
}

// Logout ends r's session, if any, and clears the cookie on w.
func (s *Sessions) Logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		s.mu.Lock()
		delete(s.m, sha256.Sum256([]byte(c.Value)))
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

// Clear ends every session, e.g. after the password changed.
func (s *Sessions) Clear() {
	s.mu.Lock()
	clear(s.m)
	s.mu.Unlock()
}

// Len is the number of sessions held, expired ones included until purged.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

type sessionKey struct{}

// SessionFrom returns the session RequireSession found for r.
func SessionFrom(r *http.Request) (Session, bool) {
	se, ok := r.Context().Value(sessionKey{}).(Session)
	return se, ok
}

// stateChanging reports whether method changes state and so needs the CSRF
// token.
func stateChanging(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true // POST, PUT, PATCH, DELETE and anything unknown
}

// RequireSession lets a request through to h only with a live session:
//
//   - without one it answers 401 with {"error": …} for paths under /api/,
//     and 303 to /login for pages;
//   - a request the trusted proxy authenticated (ProxyAuth) counts as
//     logged in: it gets a session of its own, so it has a CSRF token too;
//   - a state-changing request (POST, PUT, PATCH, DELETE, …) must carry the
//     session's CSRF token in the X-CSRF-Token header or, in an
//     application/x-www-form-urlencoded body, the csrf field; otherwise 403
//     and h is not called. Tokens are compared in constant time.
//
// h finds the session with SessionFrom.
func (s *Sessions) RequireSession(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		se, ok := s.lookup(r)
		if pu, proxied := proxyUserFrom(r); proxied {
			if !ok || !se.Proxy || se.User != pu {
				se, ok = s.login(w, r, pu, true), true
			}
		} else if ok && se.Proxy {
			// the proxy no longer vouches for this session's user
			ok = false
		}
		if !ok {
			if isAPI(r) {
				writeJSONError(w, http.StatusUnauthorized, "not logged in")
				return
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if stateChanging(r.Method) && !csrfOK(w, r, se.CSRF) {
			s.log.Warn("csrf token missing or wrong", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			if isAPI(r) {
				writeJSONError(w, http.StatusForbidden, "missing or wrong CSRF token; reload the page")
			} else {
				http.Error(w, "missing or wrong CSRF token; reload the page", http.StatusForbidden)
			}
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, se)))
	})
}

// csrfOK checks r's CSRF token against want.
func csrfOK(w http.ResponseWriter, r *http.Request, want string) bool {
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt == "application/x-www-form-urlencoded" {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
			if err := r.ParseForm(); err == nil {
				got = r.PostForm.Get(CSRFField)
			}
		}
	}
	if got == "" || want == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func isAPI(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/")
}

// writeJSONError answers {"error": msg} with code.
func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}

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

// AdminUser is the session user of a password login.
const AdminUser = "admin"

// LoginOptions configure LoginHandler.
type LoginOptions struct {
	// Sessions receives the new session. It must be set.
	Sessions *Sessions
	// Limiter limits failed logins per client. It must be set.
	Limiter *LoginLimiter
	// PasswordHash returns the current admin password hash ([admin]
	// password_hash revealed), "" while none is set. It must be set.
	PasswordHash func() string
	// Log receives a line per failed login; nil discards it.
	Log *slog.Logger
}

// LoginHandler serves POST /login with the password in the form field
// "password" (application/x-www-form-urlencoded):
//
//   - 200 with {"csrf": token} and the session cookie when it matches;
//   - 401 with {"error": …} when it does not, or while no password is set;
//   - 429 with Retry-After (seconds) once the client failed too often
//     (LoginLimiter); a success resets the count.
//
// Other methods get 405. The password never appears in an answer or a log
// line.
func LoginHandler(o LoginOptions) http.Handler {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	checking := make(chan struct{}, 1)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeJSONError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		client := ClientAddr(r)
		if ok, wait := o.Limiter.Take(client); !ok {
			secs := int((wait + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
			writeJSONError(w, http.StatusTooManyRequests, "too many failed logins; try again later")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
		if err := r.ParseForm(); err != nil {
			writeJSONError(w, http.StatusBadRequest, "cannot read the login form")
			return
		}
		hash := o.PasswordHash()
		if hash == "" {
			writeJSONError(w, http.StatusUnauthorized, "no admin password is set; use the setup code or the console's passwd")
			return
		}
		select { // one bcrypt at a time: a flood must not starve delivery
		case checking <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		ok := agent.CheckPassword(hash, r.PostForm.Get("password"))
		<-checking
		if !ok {
			log.Warn("admin login failed", "remote", r.RemoteAddr)
			writeJSONError(w, http.StatusUnauthorized, "wrong password")
			return
		}
		o.Limiter.Success(client)
		se := o.Sessions.Login(w, r, AdminUser)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(struct {
			CSRF string `json:"csrf"`
		}{se.CSRF})
	})
}

// ContentSecurityPolicy is the page's CSP: nothing from outside the box, no
// inline script or style, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// SecurityHeaders sets the security headers on every answer of h: the CSP,
// Referrer-Policy no-referrer, X-Content-Type-Options nosniff,
// X-Frame-Options DENY, and Cache-Control no-store under /api/ and on
// /auth.htm.
func SecurityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", ContentSecurityPolicy)
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		if isAPI(r) || r.URL.Path == "/auth.htm" {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// DefaultProxyHeader is the header ProxyAuth reads when none is named.
const DefaultProxyHeader = "X-Remote-User"

type proxyUserKey struct{}

func proxyUserFrom(r *http.Request) (string, bool) {
	u, ok := r.Context().Value(proxyUserKey{}).(string)
	return u, ok && u != ""
}

// ParseTrusted parses [http] trust_proxy: IP addresses and CIDR prefixes.
func ParseTrusted(trusted []string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, t := range trusted {
		t = strings.TrimSpace(t)
		if strings.Contains(t, "/") {
			p, err := netip.ParsePrefix(t)
			if err != nil {
				return nil, fmt.Errorf("trust_proxy %q: %w", t, err)
			}
			ps = append(ps, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(t)
		if err != nil {
			return nil, fmt.Errorf("trust_proxy %q: %w", t, err)
		}
		a = a.Unmap()
		ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
	}
	return ps, nil
}

// ProxyAuth returns the trust_proxy middleware. When a request comes
// straight from one of the trusted addresses (IPs or CIDRs of [http]
// trust_proxy; RemoteAddr, never X-Forwarded-For) and header names a user,
// RequireSession lets it in as that user without a cookie. From any other
// address the header is ignored and the attempt logged. An empty header
// means DefaultProxyHeader; an empty trusted list trusts nobody.
func ProxyAuth(trusted []string, header string, log *slog.Logger) (func(http.Handler) http.Handler, error) {
	ps, err := ParseTrusted(trusted)
	if err != nil {
		return nil, err
	}
	if header == "" {
		header = DefaultProxyHeader
	}
	header = http.CanonicalHeaderKey(header)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user := strings.TrimSpace(r.Header.Get(header))
			if user == "" {
				h.ServeHTTP(w, r)
				return
			}
			if len(user) > 256 || strings.ContainsFunc(user, unicode.IsControl) {
				log.Warn("proxy user header malformed", "header", header, "remote", r.RemoteAddr)
				h.ServeHTTP(w, r)
				return
			}
			if !fromTrusted(r.RemoteAddr, ps) {
				log.Warn("proxy user header ignored from untrusted address", "header", header, "remote", r.RemoteAddr)
				h.ServeHTTP(w, r)
				return
			}
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), proxyUserKey{}, user)))
		})
	}, nil
}

func fromTrusted(remote string, ps []netip.Prefix) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
