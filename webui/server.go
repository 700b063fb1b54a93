package webui

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"mailagent/appliance/agent"
	"mailagent/appliance/config"
	"mailagent/appliance/limit"
	"mailagent/appliance/lograte"
	"mailagent/board"
)

// Backend is what the page needs of the agent. agent.Admin is the real
// one; tests use a fake.
type Backend interface {
	// Board is the hardware profile, for the configuration's defaults.
	Board() board.Profile
	// Status gathers what the page shows at the top.
	Status(ctx context.Context) agent.Status
	// Config returns mailagent.toml as written (no defaults filled in).
	Config() (config.Config, error)
	// UpdateConfig runs change on the file's configuration as written and
	// saves the result atomically, or writes nothing when change fails.
	UpdateConfig(change func(c *config.Config) error) error
	// StartAuthorize begins an authorisation-code grant: the provider's
	// address and the grant's state, under which the backend keeps it.
	StartAuthorize() (authURL, state string, err error)
	// FinishAuthorize completes the grant started under state from the
	// address the browser was sent to (or its query); failures are
	// *agent.AuthorizeError.
	FinishAuthorize(ctx context.Context, state, redirected string) (account string, err error)
	// ObtainNow gets tokens at once in a mode that needs no person.
	ObtainNow(ctx context.Context) (account string, err error)
	// SendTest sends a test mail now; trace is told each step.
	SendTest(ctx context.Context, trace func(step, detail string)) (reply string, err error)
	// RecentAlarms lists the last alarms taken, newest first.
	RecentAlarms() []agent.RecentAlarm
	// Import reads a provider's downloaded file (kind as agent.ImportKinds).
	Import(kind string, data []byte) error
	// PasswordHash is [admin] password_hash, "" while none is set.
	PasswordHash() string
	// SetPasswordHash stores a new [admin] password_hash.
	SetPasswordHash(hash string) error
	// Hint says what to do about err, "" when nothing useful is known.
	Hint(err error) string
}

// Options configure New.
type Options struct {
	// Backend is the agent. It must be set.
	Backend Backend
	// Alarm serves POST /alarm and /alertmanager (ingest.HTTP); nil
	// answers them 404.
	Alarm http.Handler
	// SetupCode is the one-time code that lets the first password be set
	// from the page (agent.NewSetupCode); "" means none: the password must be
	// set on the console.
	SetupCode string
	// TrustProxy and ProxyHeader are [http] trust_proxy and the header the
	// proxy names the user in (DefaultProxyHeader if empty); see ProxyAuth.
	TrustProxy  []string
	ProxyHeader string
	// BaseURL is [http] base_url, the page's address as browsers see it;
	// "" means the address the browser used.
	BaseURL string
	// Hosts are names the page answers to besides IP addresses, localhost
	// and the hosts of http.base_url and oauth2.redirect_url: the listen
	// address's and the box's host name. A request for any other name is
	// refused (DNS rebinding) with what to set.
	Hosts []string
	// Log receives security events and failures; nil discards them.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// maxFormBody is the largest form body the page reads: the login and
// setup forms, and a form carrying the CSRF token.
const maxFormBody = 64 << 10

//go:embed static
var staticFS embed.FS

// Server is the whole web interface: the admin page, login, auth.htm, the
// JSON API and the alarm endpoints, behind SecurityHeaders. Every route is
// listed in routes.go.
type Server struct {
	b        Backend
	sessions *Sessions
	limiter  *limit.Attempts
	setup    *SetupGate
	log      *slog.Logger
	now      func() time.Time
	baseURL  string
	alarm    http.Handler
	grants   *grants
	static   fs.FS
	handler  http.Handler
	// authLog keeps auth.htm's refusals, which anyone can cause, to a
	// line a minute; hostLog does the same for requests for other hosts.
	authLog, hostLog lograte.Limiter
	hosts            map[string]bool
}

// New builds the Server.
func New(o Options) (*Server, error) {
	if o.Backend == nil {
		return nil, errors.New("webui: no backend")
	}
	s := &Server{b: o.Backend, log: o.Log, now: o.Now, baseURL: o.BaseURL, alarm: o.Alarm}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.authLog.Now, s.hostLog.Now = s.now, s.now
	s.hosts = make(map[string]bool)
	for _, h := range o.Hosts {
		if h = hostOf(h); h != "" {
			s.hosts[h] = true
		}
	}
	s.sessions = NewSessions(SessionOptions{Now: s.now, Log: s.log, PasswordHash: o.Backend.PasswordHash})
	s.limiter = limit.NewAttempts(limit.AttemptOptions{Now: s.now})
	s.setup = NewSetupGate(o.SetupCode)
	s.grants = newGrants(s.now)
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("webui: %w", err)
	}
	s.static = sub
	proxy, err := ProxyAuth(o.TrustProxy, o.ProxyHeader, s.log)
	if err != nil {
		return nil, fmt.Errorf("http.trust_proxy: %w", err)
	}
	s.handler = SecurityHeaders(s.hostGuard(proxy(s.routes())))
	return s, nil
}

// ServeHTTP serves every route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Sessions is the server's session store.
func (s *Server) Sessions() *Sessions { return s.sessions }

// sessionKey names a session to the grants without giving away its
// cookie or CSRF token.
func sessionKeyOf(se Session) string {
	sum := sha256.Sum256([]byte("grant-binding:" + se.CSRF))
	return hex.EncodeToString(sum[:16])
}

// live reports whether the session named by key (sessionKeyOf) is still
// live.
func (s *Sessions) live(key string) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, se := range s.m {
		if !s.expired(se, now) && sessionKeyOf(se.Session) == key {
			return true
		}
	}
	return false
}
