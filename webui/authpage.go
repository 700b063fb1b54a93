package webui

// auth.htm, the redirect URI: it starts a grant for the admin's session and
// finishes it when the provider sends the browser back. Each grant is
// bound to the session that started it and to a grant cookie in that
// browser; a state is good once.

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"mailagent/appliance/agent"
	"mailagent/appliance/config"
)

// GrantCookie binds a started grant to the browser that started it. It is
// SameSite=Lax (the provider's redirect back is a cross-site top-level
// navigation, which carries no SameSite=Strict cookie) and sent only to
// /auth.htm.
const GrantCookie = "mailagent_grant"

// GrantTimeout is how long a started grant can be finished.
const GrantTimeout = 30 * time.Minute

const (
	maxGrants  = 16
	maxRetired = 64
)

type grant struct {
	session string   // sessionKeyOf the session that started it
	cookie  [32]byte // SHA-256 of the grant cookie's value
	created time.Time
}

// grants are the started grants by state, and the states that are done
// ("used", "replaced", "expired", "ended"), so a second visit gets a clear
// answer.
type grants struct {
	now func() time.Time

	mu         sync.Mutex
	byState    map[string]*grant
	retired    map[string]string
	retiredSeq []string
}

func newGrants(now func() time.Time) *grants {
	return &grants{now: now, byState: make(map[string]*grant), retired: make(map[string]string)}
}

func (g *grants) retireLocked(state, why string) {
	delete(g.byState, state)
	if _, ok := g.retired[state]; !ok {
		g.retiredSeq = append(g.retiredSeq, state)
	}
	g.retired[state] = why
	for len(g.retiredSeq) > maxRetired {
		delete(g.retired, g.retiredSeq[0])
		g.retiredSeq = g.retiredSeq[1:]
	}
}

// add records a grant the session started; an earlier one of the same
// session is replaced.
func (g *grants) add(state, session, cookie string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for st, gr := range g.byState {
		switch {
		case gr.session == session:
			g.retireLocked(st, "replaced")
		case now.Sub(gr.created) > GrantTimeout:
			g.retireLocked(st, "expired")
		}
	}
	for len(g.byState) >= maxGrants {
		oldest := ""
		for st, gr := range g.byState {
			if oldest == "" || gr.created.Before(g.byState[oldest].created) {
				oldest = st
			}
		}
		g.retireLocked(oldest, "expired")
	}
	g.byState[state] = &grant{session: session, cookie: sha256.Sum256([]byte(cookie)), created: now}
}

// forgetSession ends the grants of a session that logged out.
func (g *grants) forgetSession(session string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for st, gr := range g.byState {
		if gr.session == session {
			g.retireLocked(st, "ended")
		}
	}
}

// refusal is why a redirect may not finish a grant, in plain words.
type refusal struct{ what, hint string }

// take checks that state belongs to a grant of this session (session, ""
// for none) or this browser (cookie, "" for none) whose session is still
// live, and if so removes it: a state is good once. Otherwise it says why
// not, and keeps the grant.
func (g *grants) take(state, session, cookie string, live func(session string) bool) *refusal {
	g.mu.Lock()
	defer g.mu.Unlock()
	gr, ok := g.byState[state]
	if !ok {
		switch g.retired[state] {
		case "used":
			return &refusal{"This sign-in was already used: the box takes each authorisation once, so nothing was stored from this visit.",
				"If the status on the admin page does not say \"authorised\", press Authorise again."}
		case "replaced":
			return &refusal{"This sign-in belongs to an older attempt: Authorise was pressed again since, so nothing was stored.",
				"Finish the sign-in in the newest window, or press Authorise again."}
		case "expired":
			return &refusal{"This sign-in was started more than 30 minutes ago, so nothing was stored.",
				"Press Authorise on the admin page again and finish the sign-in within 30 minutes."}
		case "ended":
			return &refusal{"The admin session that started this sign-in has ended (logged out, timed out, or the password changed), so nothing was stored.",
				"Log in, then press Authorise again."}
		}
		return &refusal{"This sign-in does not belong to an authorisation started on this box (its state is unknown), so nothing was stored.",
			"Press Authorise on the admin page and use only the window it opens, or paste the address that window ends on."}
	}
	if g.now().Sub(gr.created) > GrantTimeout {
		g.retireLocked(state, "expired")
		return &refusal{"This sign-in was started more than 30 minutes ago, so nothing was stored.",
			"Press Authorise on the admin page again and finish the sign-in within 30 minutes."}
	}
	sum := sha256.Sum256([]byte(cookie))
	mine := (session != "" && subtle.ConstantTimeCompare([]byte(session), []byte(gr.session)) == 1) ||
		(cookie != "" && subtle.ConstantTimeCompare(sum[:], gr.cookie[:]) == 1)
	if !mine {
		return &refusal{"This sign-in was started by another admin session (another browser, or a login since), so nothing was stored.",
			"Finish the sign-in in the browser that started it, or press Authorise here and sign in again."}
	}
	if !live(gr.session) {
		g.retireLocked(state, "ended")
		return &refusal{"The admin session that started this sign-in has ended (logged out, timed out, or the password changed), so nothing was stored.",
			"Log in, then press Authorise again."}
	}
	g.retireLocked(state, "used")
	return nil
}

// authResult is what auth.htm shows.
type authResult struct {
	OK      bool
	Account string
	// Headline and Hint are plain words; Code and Description are what the
	// provider sent (escaped by the template).
	Headline, Hint    string
	Code, Description string
	// Continue is the provider's address when the page explains first
	// why the admin will have to paste the address back.
	Continue, Redirect, Note string
}

// renderAuth answers auth.html with res.
func (s *Server) renderAuth(w http.ResponseWriter, code int, res authResult) {
	s.render(w, code, "auth.html", res.vals())
}

// vals are the values of auth.html.
func (r authResult) vals() map[string]string {
	result := "failed"
	switch {
	case r.Continue != "":
		result = "continue"
	case r.OK:
		result = "ok"
	}
	return map[string]string{"result": result, "continue": r.Continue, "note": r.Note, "redirect": r.Redirect,
		"ok": yes(result == "ok"), "failed": yes(result == "failed"), "headline": r.Headline,
		"code": r.Code, "description": r.Description, "hint": r.Hint}
}

// authPage serves GET /auth.htm: without code, state or error it starts a
// grant for the session; with them it finishes it.
func (s *Server) authPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("code") == "" && q.Get("error") == "" && q.Get("state") == "" {
		s.sessions.RequireSession(http.HandlerFunc(s.authStart)).ServeHTTP(w, r)
		return
	}
	s.authFinish(w, r, q)
}

// authStart starts a grant and sends the browser to the provider, or
// first explains why the address must be pasted back.
func (s *Server) authStart(w http.ResponseWriter, r *http.Request) {
	se := mustSession(r)
	c, err := s.b.Config()
	if err != nil {
		s.log.Error("configuration not read", "err", err)
		s.renderAuth(w, http.StatusInternalServerError, authResult{Headline: "The box cannot read its configuration.", Hint: s.b.Hint(err)})
		return
	}
	eff := c.WithDefaults(s.b.Board())
	mode, ok := config.LookupMode(eff.OAuth2.Mode)
	switch {
	case !ok:
		s.renderAuth(w, http.StatusBadRequest, authResult{Headline: "No OAuth2 mode is chosen yet.",
			Hint: "Choose the mode and fill in its fields on the admin page, save, then press Authorise."})
		return
	case !mode.Interactive:
		s.renderAuth(w, http.StatusBadRequest, authResult{Headline: "Mode " + mode.Name + " needs no sign-in.",
			Hint: "Press Authorise on the admin page: the box gets its token directly."})
		return
	}
	authURL, state, err := s.b.StartAuthorize()
	if err != nil {
		s.log.Warn("authorisation not started", "err", err)
		s.renderAuth(w, http.StatusBadRequest, authResult{Headline: "The authorisation could not start.", Hint: startHint(s.b, err)})
		return
	}
	if u, err := url.Parse(authURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		s.renderAuth(w, http.StatusBadRequest, authResult{Headline: "The authorisation address is not a web address.",
			Hint: "Check the authorisation endpoint (oauth2.auth_url or oauth2.authority) on the admin page."})
		return
	}
	cookie := randToken(32)
	s.grants.add(state, sessionKeyOf(se), cookie)
	http.SetCookie(w, &http.Cookie{Name: GrantCookie, Value: cookie, Path: "/auth.htm", MaxAge: int(GrantTimeout / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	redirect := redirectURI(&eff)
	if reach, note := s.redirectAdvice(r, redirect, mode); !reach {
		s.renderAuth(w, http.StatusOK, authResult{Continue: authURL, Redirect: redirect, Note: note})
		return
	}
	http.Redirect(w, r, authURL, http.StatusSeeOther)
}

// startHint says what to do when a grant cannot start.
func startHint(b Backend, err error) string {
	if h := b.Hint(err); h != "" {
		return h
	}
	if strings.Contains(err.Error(), "redirect_url") {
		return "Set the redirect URI on the admin page (the address registered at the provider), save, then press Authorise again."
	}
	return "Check the OAuth2 fields on the admin page, save, then press Authorise again."
}

// authFinish finishes a grant from the provider's redirect.
func (s *Server) authFinish(w http.ResponseWriter, r *http.Request, q url.Values) {
	state := q.Get("state")
	if state == "" {
		res := authResult{Headline: "The provider sent the browser back without a state, so nothing was stored.",
			Hint: "Press Authorise on the admin page again."}
		if code := q.Get("error"); code != "" {
			res.Headline = "The provider did not authorise the box."
			res.Code, res.Description = oneLine(code, 100), oneLine(q.Get("error_description"), 400)
		}
		s.renderAuth(w, http.StatusBadRequest, res)
		return
	}
	session := ""
	if se, ok := s.sessions.lookup(r); ok {
		session = sessionKeyOf(se)
	}
	cookie := ""
	if c, err := r.Cookie(GrantCookie); err == nil {
		cookie = c.Value
	}
	if session == "" && cookie == "" {
		s.authLog.Log(s.log, slog.LevelWarn, "auth.htm visited without session or grant cookie", "remote", r.RemoteAddr)
		s.renderAuth(w, http.StatusForbidden, authResult{
			Headline: "This browser did not start the authorisation (no admin session here), so nothing was stored.",
			Hint:     "Log in to the admin page and paste this page's whole address into \"Paste the address\", or press Authorise there."})
		return
	}
	if ref := s.grants.take(state, session, cookie, s.sessions.live); ref != nil {
		s.authLog.Log(s.log, slog.LevelWarn, "auth.htm refused a redirect", "why", ref.what, "remote", r.RemoteAddr)
		s.renderAuth(w, http.StatusBadRequest, authResult{Headline: ref.what, Hint: ref.hint})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: GrantCookie, Value: "", Path: "/auth.htm", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	res, code := s.finish(r.Context(), state, "?"+r.URL.RawQuery)
	s.renderAuth(w, code, res)
}

// finish asks the backend to finish the grant and puts the outcome into
// words; err.Error() is logged, never shown.
func (s *Server) finish(ctx context.Context, state, redirected string) (authResult, int) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	account, err := s.b.FinishAuthorize(ctx, state, redirected)
	if err == nil {
		s.log.Info("authorised from the web page", "account", account)
		return authResult{OK: true, Account: account, Headline: "The box is authorised to send mail as " + account + "."}, http.StatusOK
	}
	s.log.Warn("authorisation failed", "err", err)
	res := authResult{Headline: "The box could not finish the authorisation; no token was stored.", Hint: s.b.Hint(err)}
	var ae *agent.AuthorizeError
	if errors.As(err, &ae) {
		if ae.Hint != "" {
			res.Hint = ae.Hint
		}
		if ae.Code != "" {
			res.Headline = "The provider did not authorise the box; no token was stored."
			res.Code, res.Description = ae.Code, ae.Description
		}
	}
	if res.Hint == "" {
		res.Hint = "Press Authorise on the admin page and sign in again."
	}
	return res, http.StatusBadRequest
}

// oneLine cuts s to one line of at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// redirectURI is the redirect URI the grant uses: oauth2.redirect_url, or
// http.base_url + "/auth.htm".
func redirectURI(c *config.Config) string {
	if c.OAuth2.RedirectURL != "" {
		return c.OAuth2.RedirectURL
	}
	if c.HTTP.BaseURL != "" {
		return strings.TrimSuffix(c.HTTP.BaseURL, "/") + "/auth.htm"
	}
	return ""
}

// origin is scheme://host:port with the default port written out.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return strings.ToLower(u.Scheme + "://" + u.Hostname() + ":" + port)
}

// pageURL is the page's own address as the browser sees it.
func (s *Server) pageURL(r *http.Request) *url.URL {
	if s.baseURL != "" {
		if u, err := url.Parse(s.baseURL); err == nil && u.Host != "" {
			return u
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return &url.URL{Scheme: scheme, Host: r.Host}
}

// redirectAdvice says whether the browser, sent to redirect after the
// sign-in, reaches this box's auth.htm, and if not, in words, what to do;
// it also names the providers' rules the address breaks.
func (s *Server) redirectAdvice(r *http.Request, redirect string, mode config.Mode) (bool, string) {
	if redirect == "" {
		return false, "No redirect URI is set: register " + s.pageURL(r).String() + "/auth.htm at the provider and set it as the redirect URI."
	}
	u, err := url.Parse(redirect)
	if err != nil || u.Host == "" {
		return false, "The redirect URI is not an address (it should look like https://box.example.com/auth.htm)."
	}
	var notes []string
	reach := origin(u) == origin(s.pageURL(r)) && u.Path == "/auth.htm"
	if !reach {
		notes = append(notes, "After the sign-in the provider sends the browser to "+redirect+", which is not this box's auth.htm, so that page will not load. That is expected: copy the whole address from the browser's address bar and paste it into \"Paste the address\" on the admin page.")
	}
	host := u.Hostname()
	ip, ipErr := netip.ParseAddr(strings.Trim(host, "[]"))
	loop := host == "localhost" || (ipErr == nil && ip.IsLoopback())
	if (mode.Name == "gmail" || strings.HasPrefix(mode.Name, "google")) && ipErr == nil && !loop {
		notes = append(notes, "Google refuses redirect URIs with an IP address: register http://localhost/auth.htm (and paste the address back) or give the box a DNS name.")
	}
	if mode.Microsoft && u.Scheme == "http" && !loop {
		notes = append(notes, "Microsoft accepts http:// redirect URIs only for localhost: use https:// or register http://localhost/auth.htm and paste the address back.")
	}
	return reach, strings.Join(notes, " ")
}
