// Package oauthtest is a strict fake OAuth2 authorization server for tests.
//
// It imitates three flavours of provider ([Generic], [Microsoft], [Google]):
// their endpoint paths, their error bodies and the rules that bite (see
// PROVIDERS.md beside the specification). Every protocol violation by the
// client under test is reported (by default with t.Errorf) and kept in
// [Server.Violations], and answered the way the provider would answer it.
//
// Situations a correct client meets in the field are answered the same way
// but are not violations: a wrong client secret or password, an unknown
// user or service account, missing domain-wide delegation, a code redeemed
// after its 10 minutes, the first use of an expired or revoked refresh
// token, a declined authorization or device code, an expired device code,
// and injected faults. What the client does next can be one: using a
// refused refresh token again, polling a finished device code, or sending a
// failed request again within a second (x/oauth2's AuthStyleAutoDetect).
//
// A test registers its clients and plays the user:
//
//	s := oauthtest.NewServer(t, oauthtest.Options{
//		Flavour:  oauthtest.Microsoft,
//		Rotation: oauthtest.Rotate,
//		Clients: []oauthtest.Client{{ID: "app", Secret: "s", Auth: oauthtest.AuthPost,
//			RedirectURIs: []string{"https://box.example.test/auth.htm"}}},
//	})
//	pasted := s.Authorize(t, authURL) // authURL as the client made it
//
// Implemented:
//   - authorization code with PKCE (RFC 6749 §4.1, RFC 7636, RFC 9700
//     §2.1.1): state, S256 only, exact redirect URIs, single-use codes bound
//     to client, redirect URI, challenge and (Microsoft) tenant, 10 minutes;
//     [Server.Authorize] plays the browser and the user who consents.
//   - refresh tokens with three rotation policies ([Rotation]), inactivity
//     expiry, revocation of a whole grant.
//   - resource owner password credentials (Microsoft flavour only).
//   - client credentials (RFC 6749 §4.4), no refresh token.
//   - JWT bearer grant (RFC 7523 §2.1) for Google service accounts.
//   - device authorization (RFC 8628) with slow_down.
//   - client authentication by client_secret_post, client_secret_basic,
//     none (public clients) and private_key_jwt (RFC 7523 §2.2, RS256 or
//     PS256, kid, x5t#S256, single-use jti).
//   - POST /introspect (RFC 7662 §2): HTTP Basic client authentication with
//     [ClientID] and [ClientSecret], form field "token". A live token gives
//     200 {"active":true,"username":…,"scope":…,"token_type":"Bearer","exp":…};
//     an unknown, revoked or expired one gives 200 {"active":false}, the
//     answer Dovecot 2.3 needs to fail the AUTH with 535 instead of 454.
//     Every token the server issues or mints is live for introspection, so
//     the Postfix + Dovecot rig accepts it.
//   - fault injection ([Server.FailNext]) and observation ([Server.Requests],
//     [Server.LiveRefreshTokens], [Server.Violations]).
//
// The server reads the clock with time.Now (moved on by [Server.Advance]),
// so inside a testing/synctest bubble it runs on the bubble's clock. Create it inside the bubble with
// [Options.InProcess] (no socket, whose goroutines would keep the bubble's
// clock from advancing) and reach it with [Server.HTTPClient].
//
// Import it from _test.go files only.
package oauthtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The client credentials introspection requests must carry.
const (
	ClientID     = "rig-client"
	ClientSecret = "rig-secret"
)

// DefaultTenant is the Microsoft tenant the server stands for when
// [Options.Tenant] is empty.
const DefaultTenant = "example.onmicrosoft.com"

// Grant types, as token requests name them in grant_type.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantPassword          = "password"
	GrantClientCredentials = "client_credentials"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
)

// Flavour selects the provider the server imitates.
type Flavour int

const (
	// Generic serves /authorize, /token and /device with RFC 6749 errors.
	Generic Flavour = iota
	// Microsoft serves the identity platform v2.0 paths
	// /{tenant}/oauth2/v2.0/authorize, /token and /devicecode, answers with
	// AADSTS codes in error_codes, and gives a refresh token only for the
	// offline_access scope.
	Microsoft
	// Google serves /o/oauth2/auth, /token and /device/code with Google's
	// error texts, and gives a refresh token only with access_type=offline
	// on the first consent or with prompt=consent.
	Google
)

func (f Flavour) String() string {
	switch f {
	case Generic:
		return "generic"
	case Microsoft:
		return "microsoft"
	case Google:
		return "google"
	}
	return fmt.Sprintf("Flavour(%d)", int(f))
}

// Rotation is what the server does with a refresh token it accepts.
type Rotation int

const (
	// NoRotation keeps the refresh token: the answer has none, as Google's
	// does, and the client goes on with the one it has.
	NoRotation Rotation = iota
	// Rotate answers every refresh with a new refresh token and leaves the
	// old one valid, as Microsoft does. A use of an old one is counted in
	// [Server.Reuses].
	Rotate
	// RotateRevokeOnReuse answers every refresh with a new refresh token; a
	// later use of a rotated-out one is a violation and revokes the whole
	// grant (RFC 9700 §4.14.2).
	RotateRevokeOnReuse
)

// ClientAuth is how a client is registered to authenticate at the token
// endpoint. The server accepts that method only.
type ClientAuth int

const (
	// AuthPost is client_secret_post: client_id and client_secret in the body.
	AuthPost ClientAuth = iota
	// AuthBasic is client_secret_basic: HTTP Basic with the form-encoded
	// client_id and client_secret (RFC 6749 §2.3.1).
	AuthBasic
	// AuthNone is a public client: client_id in the body, no secret.
	AuthNone
	// AuthPrivateKeyJWT is private_key_jwt: client_assertion_type and a
	// signed client_assertion (RFC 7523 §2.2).
	AuthPrivateKeyJWT
)

func (a ClientAuth) String() string {
	switch a {
	case AuthPost:
		return "client_secret_post"
	case AuthBasic:
		return "client_secret_basic"
	case AuthNone:
		return "none"
	case AuthPrivateKeyJWT:
		return "private_key_jwt"
	}
	return fmt.Sprintf("ClientAuth(%d)", int(a))
}

// Client is an application registered at the server.
type Client struct {
	ID     string     // client_id
	Secret string     // client secret, for AuthPost and AuthBasic
	Auth   ClientAuth // how the client authenticates at the token endpoint

	// PublicKey verifies the client assertions of an AuthPrivateKeyJWT
	// client. If nil, Certificate's key is used.
	PublicKey *rsa.PublicKey
	// Certificate, if set, is the client's registered certificate: every
	// assertion must carry its x5t#S256 thumbprint in the header.
	Certificate *x509.Certificate
	// KeyID, if set, is the kid every assertion header must carry.
	KeyID string

	// RedirectURIs are the registered redirect URIs, compared as exact
	// strings; only the port of an http loopback URI is ignored (RFC 9700
	// §2.1).
	RedirectURIs []string
	// Mailbox is the username introspection reports for the client's
	// app-only (client_credentials) tokens; the client ID if empty.
	Mailbox string
}

// ServiceAccount is a Google service account allowed the JWT bearer grant.
type ServiceAccount struct {
	Email     string         // client_email: the assertion's iss
	KeyID     string         // private_key_id: the assertion's kid, if set
	PublicKey *rsa.PublicKey // verifies the RS256 signature
	// Subjects are the mailboxes domain-wide delegation lets the account
	// act as (the assertion's sub).
	Subjects []string
}

// Options configures a [Server]. The zero value is a Generic server without
// clients, enough for introspection of minted tokens.
type Options struct {
	Flavour  Flavour  // the provider imitated
	Rotation Rotation // refresh token policy

	Clients         []Client
	ServiceAccounts []ServiceAccount

	// Users maps the accounts that exist to their passwords (for the
	// password grant).
	Users map[string]string
	// Account is who signs in at the authorization endpoint and approves
	// device codes. If empty: the login_hint when it names a user (or any
	// login_hint when Users is empty), else the first user by name, else
	// "user@example.test".
	Account string

	// AccessTTL is the access tokens' lifetime; 1 h if zero.
	AccessTTL time.Duration
	// AccessSize is the access tokens' length in characters; 1500 if zero
	// (Microsoft's are 1–2.5 KB).
	AccessSize int
	// RefreshTTL, if set, expires a refresh token that has not been used
	// for that long (Microsoft: 90 days; Google: 6 months).
	RefreshTTL time.Duration

	// Tenant is the Microsoft tenant (ID or domain) the server stands for;
	// DefaultTenant if empty. The paths accept it and "organizations",
	// "common" and "consumers", with Microsoft's rules for each.
	Tenant string
	// AuthParams are the query parameters the generic flavour's
	// authorization URL carries itself ([Server.AuthURL] includes them);
	// every authorization request must still carry them unchanged.
	AuthParams url.Values

	// NoPublicClientFlows is an app registration with "Allow public client
	// flows" = No (Microsoft flavour): a device code poll without client
	// credentials is refused with invalid_client, AADSTS7000218
	// (PROVIDERS.md §1 ROPC and Device code; learn.microsoft.com
	// v2-oauth2-device-code, scenario-desktop-app-registration).
	NoPublicClientFlows bool

	// DeviceInterval is the device flow's polling interval, in whole
	// seconds (at least one); 5 s if zero.
	DeviceInterval time.Duration
	// DeviceTTL is how long a device code lives; 15 min if zero.
	DeviceTTL time.Duration

	// InProcess serves only through [Server.HTTPClient], without a socket;
	// [Server.URL] is then https://oauthtest.invalid (no TLS is spoken: the
	// scheme is that of real endpoints, which the validator wants unless
	// the host is a loopback address). Use it when creating
	// the server inside a testing/synctest bubble.
	InProcess bool

	// Report, if set, receives each violation instead of t.Errorf, so a
	// test can expect violations without failing.
	Report func(violation string)

	// Hub, if set, is another server at which every access token this one
	// issues is live as well, revoked with it: one Postfix + Dovecot rig,
	// introspecting at the hub, accepts the tokens of several providers.
	Hub *Server
}

// Fault is an answer the server gives instead of the normal one.
type Fault struct {
	// Status is the HTTP status of the answer; 400 if zero and Error is set.
	Status int
	// Error and Description are the answer's error and error_description.
	// A 5xx status without Error gives an HTML page, not JSON.
	Error, Description string
	// ErrorCodes are Microsoft's error_codes (Microsoft flavour only).
	ErrorCodes []int
	// Delay holds the answer back this long (until the request is
	// cancelled). With neither Status nor Error the normal answer follows.
	Delay time.Duration
	// OmitRefreshToken leaves the refresh token out of an otherwise normal
	// answer; no refresh token is issued or rotated then.
	OmitRefreshToken bool
	// Grant, if set, limits the fault to token requests of that grant type.
	Grant string
}

// Server is a running fake authorization server. It is safe for concurrent
// use.
type Server struct {
	t      testing.TB
	o      Options
	base   string
	mux    *http.ServeMux
	report func(string)

	ahead atomic.Int64 // how far Advance moved the clock, in nanoseconds

	mu             sync.Mutex
	tokens         map[string]grant // access tokens, for introspection
	introspections int
	codes          map[string]*authCode
	states         map[string]bool // state values seen at the authorization endpoint
	challenges     map[string]bool // code challenges seen
	consented      map[string]bool // client "\x00" account, after a consent (Google)
	refresh        map[string]*refreshToken
	refreshOrder   []*refreshToken
	revoked        map[int]bool // grant families revoked
	public         map[int]bool // grant families of a public client (Microsoft device code)
	families       int
	devices        map[string]*deviceCode // by device_code
	userCodes      map[string]*deviceCode // by normalised user_code
	deviceOrder    []*deviceCode
	jtis           map[string]bool // client "\x00" jti of accepted assertions
	faults         []Fault
	denyNext       int
	requests       map[string]int
	failed         map[string]time.Time // token request key -> time of its last failure
	violations     []string
	issued         int
	reuses         int
}

// Advance moves the server's clock d ahead, as if d had passed for the
// server alone. It is for tests outside a synctest bubble, whose client
// runs on the real clock, that need the server's rules to see time pass
// without waiting for it: a person's deliberate retry after a failed token
// request rather than x/oauth2's double send a moment later. The client's
// clock does not move, so keep d small beside the lifetimes the client
// checks (access tokens, assertions).
func (s *Server) Advance(d time.Duration) { s.ahead.Add(int64(d)) }

// now is the server's clock.
func (s *Server) now() time.Time { return time.Now().Add(time.Duration(s.ahead.Load())) }

// grant is what introspection knows of an access token.
type grant struct {
	user    string
	scope   string
	expires time.Time
	revoked bool
	family  int // the grant it belongs to; 0 for minted ones and grants without refresh
}

// New starts a Generic server without clients on 127.0.0.1 and closes it
// when the test ends. It is enough for minted tokens and introspection.
func New(t testing.TB) *Server {
	t.Helper()
	return NewServer(t, Options{})
}

// NewServer starts a server on 127.0.0.1 (or in process, see
// [Options.InProcess]) and closes it when the test ends.
func NewServer(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Tenant == "" {
		o.Tenant = DefaultTenant
	}
	if o.AccessTTL <= 0 {
		o.AccessTTL = time.Hour
	}
	if o.AccessSize <= 0 {
		o.AccessSize = 1500
	}
	if o.DeviceInterval <= 0 {
		o.DeviceInterval = 5 * time.Second
	}
	o.DeviceInterval = max(o.DeviceInterval.Round(time.Second), time.Second)
	if o.DeviceTTL <= 0 {
		o.DeviceTTL = 15 * time.Minute
	}
	// Copies, so the test cannot change them under a running server.
	o.Users = maps.Clone(o.Users)
	o.AuthParams = url.Values(maps.Clone(map[string][]string(o.AuthParams)))
	o.ServiceAccounts = slices.Clone(o.ServiceAccounts)
	o.Clients = slices.Clone(o.Clients)
	for i := range o.Clients {
		c := &o.Clients[i]
		if c.PublicKey == nil && c.Certificate != nil {
			if k, ok := c.Certificate.PublicKey.(*rsa.PublicKey); ok {
				c.PublicKey = k
			}
		}
		if c.Auth == AuthPrivateKeyJWT && c.PublicKey == nil {
			t.Fatalf("oauthtest: client %q uses private_key_jwt without an RSA public key", c.ID)
		}
	}
	s := &Server{
		t:          t,
		o:          o,
		tokens:     make(map[string]grant),
		codes:      make(map[string]*authCode),
		states:     make(map[string]bool),
		challenges: make(map[string]bool),
		consented:  make(map[string]bool),
		refresh:    make(map[string]*refreshToken),
		revoked:    make(map[int]bool),
		public:     make(map[int]bool),
		devices:    make(map[string]*deviceCode),
		userCodes:  make(map[string]*deviceCode),
		jtis:       make(map[string]bool),
		requests:   make(map[string]int),
		failed:     make(map[string]time.Time),
	}
	s.report = o.Report
	if s.report == nil {
		s.report = func(v string) { t.Errorf("oauthtest: %s", v) }
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/introspect", s.introspect)
	s.mux.HandleFunc("/", s.unknownPath)
	switch o.Flavour {
	case Microsoft:
		s.mux.HandleFunc("/{tenant}/oauth2/v2.0/authorize", s.authorize)
		s.mux.HandleFunc("/{tenant}/oauth2/v2.0/token", s.token)
		s.mux.HandleFunc("/{tenant}/oauth2/v2.0/devicecode", s.deviceAuth)
		s.mux.HandleFunc("/devicelogin", s.devicePage)
	case Google:
		s.mux.HandleFunc("/o/oauth2/auth", s.authorize)
		s.mux.HandleFunc("/o/oauth2/v2/auth", s.authorize) // the documented path
		s.mux.HandleFunc("/token", s.token)
		s.mux.HandleFunc("/device/code", s.deviceAuth)
		s.mux.HandleFunc("/device", s.devicePage)
	default:
		s.mux.HandleFunc("/authorize", s.authorize)
		s.mux.HandleFunc("/token", s.token)
		s.mux.HandleFunc("/device", s.deviceAuth)
		s.mux.HandleFunc("/activate", s.devicePage)
	}
	if o.InProcess {
		s.base = "https://oauthtest.invalid"
	} else {
		srv := httptest.NewServer(s.mux)
		t.Cleanup(srv.Close)
		s.base = srv.URL
	}
	return s
}

// URL is the server's base address, http://127.0.0.1:PORT; for the
// Microsoft flavour it is the authority the tenant paths hang under.
func (s *Server) URL() string { return s.base }

// Tenant is the Microsoft tenant the server stands for.
func (s *Server) Tenant() string { return s.o.Tenant }

// AuthURL is the authorization endpoint; for the generic flavour it carries
// [Options.AuthParams].
func (s *Server) AuthURL() string {
	switch s.o.Flavour {
	case Microsoft:
		return s.base + "/" + s.o.Tenant + "/oauth2/v2.0/authorize"
	case Google:
		return s.base + "/o/oauth2/auth"
	}
	if len(s.o.AuthParams) > 0 {
		return s.base + "/authorize?" + s.o.AuthParams.Encode()
	}
	return s.base + "/authorize"
}

// TokenURL is the token endpoint.
func (s *Server) TokenURL() string {
	if s.o.Flavour == Microsoft {
		return s.base + "/" + s.o.Tenant + "/oauth2/v2.0/token"
	}
	return s.base + "/token"
}

// DeviceAuthURL is the device authorization endpoint.
func (s *Server) DeviceAuthURL() string {
	switch s.o.Flavour {
	case Microsoft:
		return s.base + "/" + s.o.Tenant + "/oauth2/v2.0/devicecode"
	case Google:
		return s.base + "/device/code"
	}
	return s.base + "/device"
}

// IntrospectURL is the introspection endpoint with the client credentials
// in it, http://rig-client:rig-secret@127.0.0.1:PORT/introspect, the form
// Dovecot's oauth2 passdb takes for HTTP Basic authentication.
func (s *Server) IntrospectURL() string {
	scheme, host, _ := strings.Cut(s.base, "://")
	return scheme + "://" + ClientID + ":" + ClientSecret + "@" + host + "/introspect"
}

// Mint returns a new random opaque access token for user, live for ttl.
func (s *Server) Mint(user string, ttl time.Duration, scopes ...string) string {
	return s.MintSize(user, 32, ttl, scopes...)
}

// MintSize is [Server.Mint] with a token of size characters (at least 16),
// for tokens as long as real providers' (Microsoft's are 1–2.5 KB).
func (s *Server) MintSize(user string, size int, ttl time.Duration, scopes ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mintLocked(user, size, ttl, strings.Join(scopes, " "))
}

func (s *Server) mintLocked(user string, size int, ttl time.Duration, scope string) string {
	tok := randomString(max(size, 16))
	g := grant{user: user, scope: scope, expires: s.now().Add(ttl)}
	s.tokens[tok] = g
	if h := s.o.Hub; h != nil && h != s {
		h.mu.Lock()
		h.tokens[tok] = g
		h.mu.Unlock()
	}
	return tok
}

// Revoke makes token inactive from now on.
func (s *Server) Revoke(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.tokens[token]; ok {
		g.revoked = true
		s.tokens[token] = g
	}
}

// Introspections counts the well-formed introspection requests answered.
func (s *Server) Introspections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.introspections
}

// FailNext answers the next n token requests (of f.Grant only, if set) with
// the fault f instead of the normal answer. Faults queue up in call order.
func (s *Server) FailNext(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// DenyNext makes the user decline the next authorization request: the
// browser comes back with error=access_denied.
func (s *Server) DenyNext() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denyNext++
}

// ExpireRefreshTokens expires every refresh token issued so far: using one
// gives invalid_grant (Microsoft: AADSTS700082).
func (s *Server) ExpireRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rt := range s.refreshOrder {
		rt.expired = true
	}
}

// RevokeAll revokes every grant, refresh token and access token issued or
// minted so far, as a password reset or an admin's revocation does.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for f := 1; f <= s.families; f++ {
		s.revoked[f] = true
	}
	for tok, g := range s.tokens {
		g.revoked = true
		s.tokens[tok] = g
		if h := s.o.Hub; h != nil && h != s {
			h.Revoke(tok)
		}
	}
}

// Requests counts the token requests of a grant type (one of the Grant
// constants), refused ones included; "" counts all of them, and
// "device_authorization" the requests to the device authorization endpoint.
func (s *Server) Requests(grant string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[grant]
}

// Issued counts the access tokens the token endpoint has issued.
func (s *Server) Issued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Reuses counts the uses of refresh tokens that had already been rotated
// out, whatever the policy.
func (s *Server) Reuses() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reuses
}

// LiveRefreshTokens lists the refresh tokens the server would still accept,
// oldest first: with [Rotate] the rotated-out ones stay live, with
// [RotateRevokeOnReuse] only the newest of each grant is.
func (s *Server) LiveRefreshTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var live []string
	for _, rt := range s.refreshOrder {
		if s.refreshState(rt, now) == rtLive {
			live = append(live, rt.token)
		}
	}
	return live
}

// Violations lists the protocol violations seen so far, in order.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

// flush records and reports the violations found while serving a request.
// Call it without the lock held: Report may call back into the server.
func (s *Server) flush(vs []string) {
	if len(vs) == 0 {
		return
	}
	s.mu.Lock()
	s.violations = append(s.violations, vs...)
	s.mu.Unlock()
	for _, v := range vs {
		s.report(v)
	}
}

func (s *Server) client(id string) *Client {
	for i := range s.o.Clients {
		if s.o.Clients[i].ID == id {
			return &s.o.Clients[i]
		}
	}
	return nil
}

// account is who signs in, given the request's login_hint.
func (s *Server) account(hint string) string {
	if s.o.Account != "" {
		return s.o.Account
	}
	if _, ok := s.o.Users[hint]; hint != "" && (ok || len(s.o.Users) == 0) {
		return hint
	}
	if len(s.o.Users) > 0 {
		names := make([]string, 0, len(s.o.Users))
		for u := range s.o.Users {
			names = append(names, u)
		}
		slices.Sort(names)
		return names[0]
	}
	return "user@example.test"
}

// HTTPClient returns a client whose transport calls the server's handler
// directly, in the caller's goroutine, without a socket: tests inside a
// testing/synctest bubble can use it. It reaches only this server, and does
// not follow redirects, so a GET of an authorization URL gives the 302.
func (s *Server) HTTPClient() *http.Client {
	return &http.Client{
		Transport: transport{s},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

type transport struct{ s *Server }

func (tr transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		defer r.Body.Close()
	}
	if r.URL.Scheme+"://"+r.URL.Host != tr.s.base {
		return nil, fmt.Errorf("oauthtest: the in-process transport reaches %s only, not %s://%s", tr.s.base, r.URL.Scheme, r.URL.Host)
	}
	sr := r.Clone(r.Context())
	sr.RequestURI = r.URL.RequestURI()
	sr.RemoteAddr = "127.0.0.1:49152"
	if sr.Host == "" {
		sr.Host = r.URL.Host
	}
	if sr.Body == nil {
		sr.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	tr.s.mux.ServeHTTP(rec, sr)
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// randomString returns n random base64url characters.
func randomString(n int) string {
	b := make([]byte, base64.RawURLEncoding.DecodedLen(n)+1)
	rand.Read(b) // never returns an error
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}
