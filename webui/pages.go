package webui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"

	"mailagent/appliance/agent"
	"mailagent/appliance/limit"
)

// render fills the page file name with vals (fill) and answers it; a page
// that does not fill becomes a clean 500, never half a page.
func (s *Server) render(w http.ResponseWriter, code int, name string, vals map[string]string) {
	b, err := fs.ReadFile(s.static, name)
	if err == nil {
		var out string
		if out, err = fill(string(b), vals); err == nil {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(code)
			io.WriteString(w, out)
			return
		}
	}
	s.log.Error("page not rendered", "page", name, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// fill renders a page without html/template, which would cost the binary
// some 2 MB: {{?name}}…{{/name}} is kept when vals[name] is not empty and
// dropped otherwise (sections of different names nest); {{name}} becomes
// vals[name], HTML-escaped, and must be in vals.
func fill(page string, vals map[string]string) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(page, "{{")
		if i < 0 {
			b.WriteString(page)
			return b.String(), nil
		}
		b.WriteString(page[:i])
		page = page[i+2:]
		j := strings.Index(page, "}}")
		if j < 0 {
			return "", errors.New("page: {{ without }}")
		}
		tag := page[:j]
		page = page[j+2:]
		switch {
		case strings.HasPrefix(tag, "?"):
			end := "{{/" + tag[1:] + "}}"
			k := strings.Index(page, end)
			if k < 0 {
				return "", fmt.Errorf("page: {{%s}} without %s", tag, end)
			}
			if vals[tag[1:]] == "" {
				page = page[k+len(end):]
			} else {
				page = page[:k] + page[k+len(end):]
			}
		case strings.HasPrefix(tag, "/"):
			return "", fmt.Errorf("page: {{%s}} without its start", tag)
		default:
			v, ok := vals[tag]
			if !ok {
				return "", fmt.Errorf("page: no value for {{%s}}", tag)
			}
			b.WriteString(html.EscapeString(v))
		}
	}
}

// file serves one embedded static file.
func (s *Server) file(name, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(s.static, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(b)
	}
}

// index is the admin page; the script fills it from the API.
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	b, err := fs.ReadFile(s.static, "index.html")
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// loginPage is the login form, or the setup form while no password is set.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.sessions.lookup(r); ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	setup := s.b.PasswordHash() == ""
	s.render(w, http.StatusOK, "login.html", map[string]string{"setup": yes(setup), "login": yes(!setup)})
}

// login checks the password (LoginHandler).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	LoginHandler(LoginOptions{Sessions: s.sessions, Limiter: s.limiter, PasswordHash: s.b.PasswordHash, Log: s.log}).ServeHTTP(w, r)
}

// apiError is the JSON answer of a failed API request: a message, what to
// do, and the problems by key or form field.
type apiError struct {
	Error  string            `json:"error"`
	Hint   string            `json:"hint,omitempty"`
	Errors map[string]string `json:"errors,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		writeJSONError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// limited takes a try from the login limiter for r's client, or answers
// 429 and returns false.
func (s *Server) limited(w http.ResponseWriter, r *http.Request) bool {
	ok, wait := s.limiter.Take(limit.Client(r.RemoteAddr))
	if ok {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfter(wait)))
	writeJSONError(w, http.StatusTooManyRequests, "too many failed attempts; try again later")
	return true
}

// setupPassword sets the first password with the one-time setup code
// (form fields code, password, password2) and logs in.
func (s *Server) setupPassword(w http.ResponseWriter, r *http.Request) {
	if s.limited(w, r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		writeJSONError(w, http.StatusBadRequest, "cannot read the setup form")
		return
	}
	if s.b.PasswordHash() != "" {
		writeJSON(w, http.StatusConflict, apiError{Error: "an admin password is already set: log in with it"})
		return
	}
	pw, pw2 := r.PostForm.Get("password"), r.PostForm.Get("password2")
	hash, err := agent.HashPassword(pw)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "the password was not set", Errors: map[string]string{"password": passwordMessage(err)}})
		return
	}
	if pw != pw2 {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "the password was not set", Errors: map[string]string{"password2": "the two passwords differ"}})
		return
	}
	if !s.setup.Use(r.PostForm.Get("code"), false) {
		s.log.Warn("wrong or used setup code", "remote", r.RemoteAddr)
		writeJSON(w, http.StatusUnauthorized, apiError{Error: "the password was not set",
			Errors: map[string]string{"code": "wrong setup code, or it was used already: take the code \"mailagent run\" printed at its start"}})
		return
	}
	if err := s.b.SetPasswordHash(hash); err != nil {
		s.log.Error("admin password not saved", "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "the password could not be saved",
			Hint: "check that the data directory is writable, then restart \"mailagent run\" for a new setup code"})
		return
	}
	s.limiter.Success(limit.Client(r.RemoteAddr))
	s.log.Info("admin password set with the setup code", "remote", r.RemoteAddr)
	se := s.sessions.Login(w, r, AdminUser)
	writeJSON(w, http.StatusOK, struct {
		CSRF string `json:"csrf"`
	}{se.CSRF})
}

// passwordMessage is agent.HashPassword's refusal for a form field.
func passwordMessage(err error) string {
	switch {
	case errors.Is(err, agent.ErrPasswordTooShort), errors.Is(err, agent.ErrPasswordTooLong):
		return err.Error()
	}
	return "the password cannot be used"
}

// logout ends the session.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	s.grants.forgetSession(sessionKeyOf(mustSession(r)))
	s.sessions.Logout(w, r)
	writeJSON(w, http.StatusOK, struct {
		OK bool `json:"ok"`
	}{true})
}

// yes is a fill condition: "1" for true.
func yes(b bool) string {
	if b {
		return "1"
	}
	return ""
}

// mustSession is the session RequireSession found.
func mustSession(r *http.Request) Session {
	se, _ := SessionFrom(r)
	return se
}
