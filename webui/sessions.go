package webui

// Admin sessions in memory, their cookie and CSRF token, and RequireSession,
// which guards every page and API route.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
)

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
	// PasswordHash returns the admin password hash as it is now, wherever
	// it was changed (the page, the console, another process); a session
	// ends once it is not the one the session began under. nil ties
	// sessions to no password.
	PasswordHash func() string
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
	hash          [32]byte // SHA-256 of the password hash at login
}

// Sessions is the in-memory store of admin sessions. Session IDs are 32
// random bytes; the store keeps only their SHA-256, so a memory dump does
// not give away a usable cookie.
type Sessions struct {
	max            int
	idle, absolute time.Duration
	now            func() time.Time
	log            *slog.Logger
	passwordHash   func() string

	mu sync.Mutex
	m  map[[32]byte]*session
}

// NewSessions returns an empty store.
func NewSessions(o SessionOptions) *Sessions {
	s := &Sessions{max: o.Max, idle: o.Idle, absolute: o.Absolute, now: o.Now, log: o.Log, passwordHash: o.PasswordHash,
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
// session, whose CSRF token the page needs. The session lasts while the
// password hash is the one there is now.
func (s *Sessions) Login(w http.ResponseWriter, r *http.Request, user string) Session {
	return s.login(w, r, user, false, s.currentHash())
}

// currentHash is the SHA-256 of the password hash as it is now.
func (s *Sessions) currentHash() [32]byte {
	if s.passwordHash == nil {
		return [32]byte{}
	}
	return sha256.Sum256([]byte(s.passwordHash()))
}

// login starts a session that lasts while the password hash's SHA-256 is
// hash: the one the password was checked against.
func (s *Sessions) login(w http.ResponseWriter, r *http.Request, user string, proxy bool, hash [32]byte) Session {
	id := randToken(32)
	now := s.now()
	se := &session{Session: Session{User: user, CSRF: randToken(32), Proxy: proxy}, created: now, seen: now, hash: hash}
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

// lookup returns the live session of r's cookie and marks it used. A
// session begun under another password hash than the current one ends.
func (s *Sessions) lookup(r *http.Request) (Session, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return Session{}, false
	}
	k := sha256.Sum256([]byte(c.Value))
	now := s.now()
	hash := s.currentHash()
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
	if se.hash != hash {
		delete(s.m, k)
		s.log.Info("session ended: the admin password changed", "user", se.User, "remote", r.RemoteAddr)
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
				se, ok = s.login(w, r, pu, true, s.currentHash()), true
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
