package webui

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"mailagent/appliance/agent"
	"mailagent/appliance/config"
	"mailagent/appliance/limit"
)

// MaxAPIBody is the largest JSON body the API reads (a PEM key fits).
const MaxAPIBody = 256 << 10

// readJSON decodes r's JSON body into v, strictly; on failure it answers
// 400 or 415 and returns false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeJSONError(w, http.StatusUnsupportedMediaType, "send application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSONError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request is larger than %d bytes", MaxAPIBody))
			return false
		}
		writeJSONError(w, http.StatusBadRequest, "the request is not the JSON expected: "+jsonProblem(err))
		return false
	}
	return true
}

// jsonProblem names what is wrong with a JSON body without quoting it.
func jsonProblem(err error) string {
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &ute):
		return fmt.Sprintf("field %q has the wrong type", ute.Field)
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	case errors.Is(err, io.EOF):
		return "empty body"
	}
	return "cannot decode it"
}

// apiSession answers who is logged in and the CSRF token the page sends
// back on every change.
func (s *Server) apiSession(w http.ResponseWriter, r *http.Request) {
	se := mustSession(r)
	writeJSON(w, http.StatusOK, struct {
		User  string `json:"user"`
		CSRF  string `json:"csrf"`
		Proxy bool   `json:"proxy"`
	}{se.User, se.CSRF, se.Proxy})
}

// apiStatus is GET /api/status.
func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	writeJSON(w, http.StatusOK, s.b.Status(ctx))
}

// keyJSON is one configuration key for the page. Secrets have no value:
// only Set says whether one is stored.
type keyJSON struct {
	Key     string   `json:"key"`
	Section string   `json:"section"`
	Name    string   `json:"name"`
	Kind    string   `json:"kind"`
	Help    string   `json:"help"`
	Enum    []string `json:"enum,omitempty"`
	Value   string   `json:"value"`
	Default string   `json:"default,omitempty"`
	Set     bool     `json:"set"`
}

// modeJSON is one OAuth2 mode and the keys its form shows.
type modeJSON struct {
	Name        string            `json:"name"`
	Grant       string            `json:"grant"`
	Interactive bool              `json:"interactive"`
	Needs       []string          `json:"needs"`
	Fields      []string          `json:"fields"`
	Help        map[string]string `json:"help"`
}

// configJSON is GET /api/config.
type configJSON struct {
	Keys  []keyJSON  `json:"keys"`
	Modes []modeJSON `json:"modes"`
	// RedirectURI is the redirect URI to register at the provider;
	// RedirectReachable tells whether the browser sent there reaches this
	// box's auth.htm, and RedirectNote what to do when not.
	RedirectURI       string   `json:"redirect_uri"`
	RedirectSuggested bool     `json:"redirect_suggested"`
	RedirectReachable bool     `json:"redirect_reachable"`
	RedirectNote      string   `json:"redirect_note,omitempty"`
	Imports           []string `json:"imports"`
}

// hiddenKeys are keys the API neither shows nor sets: the password hash
// changes only through /api/passwd.
var hiddenKeys = map[string]bool{"admin.password_hash": true}

// apiConfig is GET /api/config.
func (s *Server) apiConfig(w http.ResponseWriter, r *http.Request) {
	c, err := s.b.Config()
	if err != nil {
		s.apiFail(w, http.StatusInternalServerError, "the configuration cannot be read", err)
		return
	}
	eff := c.WithDefaults(s.b.Board())
	out := configJSON{Imports: agent.ImportKinds}
	for _, k := range config.Keys {
		if hiddenKeys[k.Name] {
			continue
		}
		kj := keyJSON{Key: k.Name, Section: k.Section, Name: k.Field, Kind: k.Kind.String(), Help: k.Help, Enum: k.Enum, Set: k.IsSet(&c)}
		if k.Kind != config.SecretKind {
			if kj.Set {
				kj.Value = k.Get(&c)
			}
			if d := k.Get(&eff); !kj.Set && k.IsSet(&eff) {
				kj.Default = d
			}
		}
		out.Keys = append(out.Keys, kj)
	}
	for _, m := range config.Modes {
		out.Modes = append(out.Modes, modeJSON{Name: m.Name, Grant: m.Grant, Interactive: m.Interactive, Needs: m.Needs,
			Fields: modeFields(m), Help: modeHelp[m.Name]})
	}
	out.RedirectURI = redirectURI(&eff)
	if out.RedirectURI == "" {
		out.RedirectURI, out.RedirectSuggested = s.pageURL(r).String()+"/auth.htm", true
	}
	mode, _ := config.LookupMode(eff.OAuth2.Mode)
	out.RedirectReachable, out.RedirectNote = s.redirectAdvice(r, out.RedirectURI, mode)
	writeJSON(w, http.StatusOK, out)
}

// modeFields are the oauth2 keys the form shows for m: what it needs, the
// secret's expiry date with a client secret, and the redirect URI for a
// sign-in.
func modeFields(m config.Mode) []string {
	var f []string
	for _, n := range m.Needs {
		for k := range strings.SplitSeq(n, "|") {
			f = append(f, k)
			if k == "oauth2.client_secret" {
				f = append(f, "oauth2.secret_expires")
			}
		}
	}
	if m.Interactive {
		f = append(f, "oauth2.redirect_url")
	}
	if m.Name == "google-service-account" {
		f = append(f, "oauth2.private_key_id")
	}
	return f
}

// Where each value is found at the provider, per mode.
var (
	entra = map[string]string{
		"oauth2.tenant":         "Microsoft Entra admin center → App registrations → your app → Overview: Directory (tenant) ID",
		"oauth2.client_id":      "Microsoft Entra admin center → App registrations → your app → Overview: Application (client) ID",
		"oauth2.client_secret":  "App registrations → your app → Certificates & secrets → Client secrets: the Value column (shown once), not the Secret ID",
		"oauth2.secret_expires": "App registrations → your app → Certificates & secrets: the Expires column",
		"oauth2.redirect_url":   "App registrations → your app → Authentication → Web platform → Redirect URIs: register exactly this address",
		"oauth2.private_key":    "the PEM private key whose certificate is uploaded under Certificates & secrets → Certificates",
		"oauth2.certificate":    "the PEM certificate uploaded under App registrations → your app → Certificates & secrets → Certificates",
		"oauth2.username":       "the mailbox's sign-in name (user@domain)",
		"oauth2.password":       "the mailbox's password (no multi-factor authentication possible in this mode)",
	}
	google = map[string]string{
		"oauth2.client_id":      "Google Cloud console → APIs & Services → Credentials → OAuth 2.0 Client IDs: Client ID (or import the downloaded JSON)",
		"oauth2.client_secret":  "Google Cloud console → APIs & Services → Credentials → your OAuth client: Client secret (or import the JSON)",
		"oauth2.secret_expires": "the client secret's expiry date, if your organisation sets one",
		"oauth2.redirect_url":   "Credentials → your OAuth client (type Web application) → Authorised redirect URIs: register exactly this address",
		"oauth2.client_email":   "the service account's JSON key: client_email (import the JSON key)",
		"oauth2.private_key":    "the service account's JSON key: private_key (import the JSON key)",
		"oauth2.private_key_id": "the service account's JSON key: private_key_id",
		"oauth2.subject":        "the Workspace mailbox to send as; Admin console → Security → API controls → Domain-wide delegation must allow https://mail.google.com/",
	}
	generic = map[string]string{
		"oauth2.auth_url":       "the provider's authorization endpoint (its discovery document: authorization_endpoint)",
		"oauth2.token_url":      "the provider's token endpoint (discovery document: token_endpoint)",
		"oauth2.client_id":      "the client ID the provider gave the registered application",
		"oauth2.client_secret":  "the client secret of the registered application",
		"oauth2.secret_expires": "the client secret's expiry date, if it has one",
		"oauth2.redirect_url":   "the redirect URI registered for the application: register exactly this address",
		"oauth2.private_key":    "the PEM private key whose public key or certificate is registered at the provider",
		"oauth2.key_id":         "the key ID (kid) under which the public key is registered",
		"oauth2.certificate":    "the PEM certificate registered at the provider",
	}
	modeHelp = map[string]map[string]string{
		"exchange": entra, "microsoft365": entra, "microsoft-app": entra,
		"gmail": google, "google-service-account": google,
		"client-secret-post": generic, "private-key-jwt": generic,
	}
)

// configChange is POST /api/config.
type configChange struct {
	Set   map[string]string `json:"set"`
	Unset []string          `json:"unset"`
	// Password is the admin password, which a change of an access key
	// needs.
	Password string `json:"password,omitempty"`
}

// errBadConfig stops UpdateConfig; the problems are in the caller's map.
var errBadConfig = errors.New("the configuration has problems")

// errNeedPassword stops UpdateConfig: the change touches access keys and
// the request does not carry the password.
var errNeedPassword = errors.New("the change needs the admin password")

// AccessKeys are the keys whose change lets more people or places reach
// the box: who logs in without a password (trust_proxy), where the page and
// syslog listen, the names the page answers to, its certificate, the
// console. Changing one from the page needs the admin password again, so a
// session someone took over (an unlocked browser, a stolen cookie) cannot
// open a way in for after it ends.
var AccessKeys = []string{"http.trust_proxy", "http.listen", "http.base_url", "http.tls_cert", "http.tls_key",
	"syslog.listen_udp", "syslog.listen_tcp", "console.port", "console.require_login"}

// accessValues are c's values of AccessKeys.
func accessValues(c *config.Config) []string {
	vals := make([]string, len(AccessKeys))
	for i, name := range AccessKeys {
		if k, err := config.LookupKey(name); err == nil {
			vals[i] = k.Get(c)
		}
	}
	return vals
}

// apiSetConfig is POST /api/config: set and unset keys, judge the change
// (config.Change, as the console's commit and "mailagent config set" do),
// then save it atomically. An empty value unsets a key, except for a
// secret, where it keeps the stored one. Refused, with every problem by
// key and nothing written: a value that does not parse, an unknown key, a
// wrong value of a key of the request or one the change brings to another
// key, and a needed value the change takes away. Keys still to be filled
// in and problems the configuration had before do not block it; the
// answer lists them. A change of an access key (AccessKeys) needs the
// admin password in "password" (while one is set, or for a session the
// password opened): 403 with errors.password and nothing written without
// it, 403 with the wrong one, counted by the login limiter.
func (s *Server) apiSetConfig(w http.ResponseWriter, r *http.Request) {
	var req configChange
	if !readJSON(w, r, &req) {
		return
	}
	se := mustSession(r)
	cur := s.b.PasswordHash()
	authorized := cur == "" && se.Proxy // nothing to ask, as for /api/passwd
	if req.Password != "" && !authorized {
		if !s.passwordAgain(w, r, cur, req.Password, "password", "nothing was saved: wrong password") {
			return
		}
		authorized = true
	}
	board := s.b.Board()
	var errs map[string]string
	var remaining []agent.KeyProblem
	var needs []string
	err := s.b.UpdateConfig(func(c *config.Config) error {
		before := accessValues(c)
		var rest config.Problems
		errs, rest = config.Change{Set: req.Set, Unset: req.Unset, Refuse: func(name string) string {
			if hiddenKeys[name] {
				return "change the admin password with the password form"
			}
			return ""
		}}.Apply(c, board)
		for _, e := range rest {
			remaining = append(remaining, agent.KeyProblem{Key: e.Key, Message: e.Err.Error()})
		}
		if len(errs) > 0 {
			return errBadConfig
		}
		needs = nil
		for i, v := range accessValues(c) {
			if v != before[i] {
				needs = append(needs, AccessKeys[i])
			}
		}
		if len(needs) > 0 && !authorized {
			return errNeedPassword
		}
		return nil
	})
	switch {
	case errors.Is(err, errNeedPassword):
		msg := "enter the admin password to change " + strings.Join(needs, ", ")
		writeJSON(w, http.StatusForbidden, apiError{Error: "nothing was saved: " + msg,
			Hint:   "these keys decide who can reach the box; the page asks for the password again before it changes them",
			Errors: map[string]string{"password": msg}})
		return
	case errors.Is(err, errBadConfig):
		writeJSON(w, http.StatusBadRequest, apiError{Error: "nothing was saved: fix the fields marked", Errors: errs})
		return
	case err != nil:
		s.apiFail(w, http.StatusInternalServerError, "the configuration could not be saved; nothing was changed", err)
		return
	}
	s.log.Info("configuration changed from the web page", "keys", len(req.Set)+len(req.Unset), "access_keys", needs)
	writeJSON(w, http.StatusOK, struct {
		Saved    bool               `json:"saved"`
		Problems []agent.KeyProblem `json:"problems,omitempty"`
	}{true, remaining})
}

// passwordAgain checks the admin password a request carries for a change
// that needs it again (given, in the form's field), against the hash cur,
// counted by the login limiter. It answers 429 or 403 with refused and
// returns false when it is not right.
func (s *Server) passwordAgain(w http.ResponseWriter, r *http.Request, cur, given, field, refused string) bool {
	if s.limited(w, r) {
		return false
	}
	if !agent.CheckPassword(cur, given) {
		s.log.Warn("admin password wrong", "path", r.URL.Path, "remote", r.RemoteAddr)
		writeJSON(w, http.StatusForbidden, apiError{Error: refused, Errors: map[string]string{field: "wrong password"}})
		return false
	}
	s.limiter.Success(limit.Client(r.RemoteAddr))
	return true
}

// apiFail logs err and answers msg with the backend's hint; err.Error()
// goes to the log only.
func (s *Server) apiFail(w http.ResponseWriter, code int, msg string, err error) {
	s.log.Error(msg, "err", err)
	writeJSON(w, code, apiError{Error: msg, Hint: s.b.Hint(err)})
}

// apiAuthorize is POST /api/authorize. In a mode with a sign-in it answers
// the auth.htm address to open in a popup, and whether the admin will
// have to paste the final address back; in a mode without one it gets the
// token now.
func (s *Server) apiAuthorize(w http.ResponseWriter, r *http.Request) {
	c, err := s.b.Config()
	if err != nil {
		s.apiFail(w, http.StatusInternalServerError, "the configuration cannot be read", err)
		return
	}
	eff := c.WithDefaults(s.b.Board())
	mode, ok := config.LookupMode(eff.OAuth2.Mode)
	if !ok {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "no OAuth2 mode is chosen", Hint: "choose the mode, fill in its fields and save first",
			Errors: map[string]string{"oauth2.mode": "choose a mode"}})
		return
	}
	if !mode.Interactive {
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		defer cancel()
		account, err := s.b.ObtainNow(ctx)
		if err != nil {
			s.log.Warn("token not obtained", "err", err)
			writeJSON(w, http.StatusBadGateway, apiError{Error: "the provider gave no token", Hint: s.b.Hint(err)})
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Account string `json:"account"`
		}{account})
		return
	}
	redirect := redirectURI(&eff)
	reach, note := s.redirectAdvice(r, redirect, mode)
	writeJSON(w, http.StatusOK, struct {
		URL         string `json:"url"`
		RedirectURI string `json:"redirect_uri"`
		Paste       bool   `json:"paste"`
		Note        string `json:"note,omitempty"`
	}{"/auth.htm", redirect, !reach, note})
}

// apiPaste is POST /api/authorize/paste {"url": …}: it finishes a grant
// this session started from the address the browser ended on.
func (s *Server) apiPaste(w http.ResponseWriter, r *http.Request) {
	var req struct {
		URL string `json:"url"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	q, err := agent.PastedParams(req.URL)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error(), Errors: map[string]string{"url": err.Error()},
			Hint: "copy the whole address from the browser's address bar after signing in"})
		return
	}
	state := q.Get("state")
	if state == "" {
		msg := "the address has no state parameter"
		if code := q.Get("error"); code != "" {
			msg = "the provider did not authorise the box (" + oneLine(code, 100) + ")"
		}
		writeJSON(w, http.StatusBadRequest, apiError{Error: msg, Errors: map[string]string{"url": msg},
			Hint: "copy the whole address from the browser's address bar after signing in"})
		return
	}
	if ref := s.grants.take(state, sessionKeyOf(mustSession(r)), "", s.sessions.live); ref != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: ref.what, Hint: ref.hint, Errors: map[string]string{"url": ref.what}})
		return
	}
	res, code := s.finish(r.Context(), state, req.URL)
	if !res.OK {
		writeJSON(w, code, struct {
			apiError
			Code        string `json:"provider_error,omitempty"`
			Description string `json:"provider_error_description,omitempty"`
		}{apiError{Error: res.Headline, Hint: res.Hint}, res.Code, res.Description})
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Account string `json:"account"`
	}{res.Account})
}

// step is one step of a test mail.
type step struct {
	Step   string `json:"step"`
	Detail string `json:"detail"`
}

// apiTest is POST /api/test: send a test mail now and report each step,
// and the server's reply or what went wrong and what to do.
func (s *Server) apiTest(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	var steps []step
	reply, err := s.b.SendTest(ctx, func(st, detail string) { steps = append(steps, step{st, detail}) })
	type answer struct {
		OK    bool   `json:"ok"`
		Steps []step `json:"steps"`
		Reply string `json:"reply,omitempty"`
		Error string `json:"error,omitempty"`
		Hint  string `json:"hint,omitempty"`
	}
	if err != nil {
		s.log.Warn("test mail failed", "err", err)
		hint := s.b.Hint(err)
		if errors.Is(err, agent.ErrNotConfigured) {
			hint = "fill in what the status names as missing, save, then send the test mail again"
		}
		writeJSON(w, http.StatusBadGateway, answer{Steps: steps, Error: err.Error(), Hint: hint})
		return
	}
	writeJSON(w, http.StatusOK, answer{OK: true, Steps: steps, Reply: reply})
}

// apiAlarms is GET /api/alarms.
func (s *Server) apiAlarms(w http.ResponseWriter, r *http.Request) {
	list := s.b.RecentAlarms()
	if list == nil {
		list = []agent.RecentAlarm{}
	}
	writeJSON(w, http.StatusOK, struct {
		Alarms []agent.RecentAlarm `json:"alarms"`
	}{list})
}

// apiImport is POST /api/import {"kind": "google-client", "data": "<the
// downloaded JSON>"}.
func (s *Server) apiImport(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Kind string `json:"kind"`
		Data string `json:"data"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if !slices.Contains(agent.ImportKinds, req.Kind) {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "unknown kind of file", Errors: map[string]string{"kind": "choose one of " + strings.Join(agent.ImportKinds, ", ")}})
		return
	}
	if err := s.b.Import(req.Kind, []byte(req.Data)); err != nil {
		s.log.Warn("import failed", "kind", req.Kind, "err", err)
		writeJSON(w, http.StatusBadRequest, apiError{Error: "the file was not imported; nothing was changed", Hint: importHint(s.b, err),
			Errors: map[string]string{"data": importHint(s.b, err)}})
		return
	}
	s.log.Info("provider file imported from the web page", "kind", req.Kind)
	writeJSON(w, http.StatusOK, struct {
		OK bool `json:"ok"`
	}{true})
}

func importHint(b Backend, err error) string {
	if h := b.Hint(err); h != "" {
		return h
	}
	return "choose the JSON file downloaded from the Google Cloud console (Credentials → your OAuth client → Download JSON, or the service account's key)"
}

// apiPasswd is POST /api/passwd {"old", "new", "new2"}: change the admin
// password. Every other session ends; this one goes on with a new cookie
// and CSRF token, which the answer carries.
func (s *Server) apiPasswd(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Old  string `json:"old"`
		New  string `json:"new"`
		New2 string `json:"new2"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	se := mustSession(r)
	if cur := s.b.PasswordHash(); cur != "" || !se.Proxy {
		if !s.passwordAgain(w, r, cur, req.Old, "old", "the password was not changed") {
			return
		}
	}
	hash, err := agent.HashPassword(req.New)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "the password was not changed", Errors: map[string]string{"new": passwordMessage(err)}})
		return
	}
	if req.New != req.New2 {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "the password was not changed", Errors: map[string]string{"new2": "the two passwords differ"}})
		return
	}
	if err := s.b.SetPasswordHash(hash); err != nil {
		s.apiFail(w, http.StatusInternalServerError, "the password could not be saved; the old one still works", err)
		return
	}
	s.limiter.Success(limit.Client(r.RemoteAddr))
	s.log.Info("admin password changed", "user", se.User, "remote", r.RemoteAddr)
	s.sessions.Clear()
	nse := s.sessions.login(w, r, se.User, se.Proxy, sha256.Sum256([]byte(hash)))
	writeJSON(w, http.StatusOK, struct {
		CSRF string `json:"csrf"`
	}{nse.CSRF})
}
