package webui

// The password login: POST /login.

import (
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"mailagent/appliance/agent"
	"mailagent/appliance/limit"
)

// AdminUser is the session user of a password login.
const AdminUser = "admin"

// LoginOptions configure LoginHandler.
type LoginOptions struct {
	// Sessions receives the new session. It must be set.
	Sessions *Sessions
	// Limiter limits failed logins per client. It must be set.
	Limiter *limit.Attempts
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
//     (limit.Attempts); a success resets the count.
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
		client := limit.Client(r.RemoteAddr)
		if ok, wait := o.Limiter.Take(client); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfter(wait)))
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
		se := o.Sessions.login(w, r, AdminUser, false, sha256.Sum256([]byte(hash)))
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(struct {
			CSRF string `json:"csrf"`
		}{se.CSRF})
	})
}
