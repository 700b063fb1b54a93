package ingest

// The alarm endpoints over HTTP, both behind HTTP Basic credentials
// ([http] alarm_user and alarm_password):
//
//	POST /alarm         one alarm or an array (application/json), or one
//	                    alarm as form fields (application/x-www-form-urlencoded)
//	POST /alertmanager  the Prometheus Alertmanager webhook, version 4
//
// An endpoint answers success only once every alarm of the request is safe,
// and a retryable 503 otherwise; see HTTP. The admin page (webui) serves
// this handler on its listener; a build without the page serves it alone.

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"mailagent/appliance/alarm"
	"mailagent/appliance/limit"
	"mailagent/appliance/lograte"
)

// MaxFormBody is the largest form body POST /alarm reads.
const MaxFormBody = 64 << 10

// RetryAfter is the Retry-After, in seconds, of a 503 answer.
const RetryAfter = 60

// HTTPOptions configure HTTP.
type HTTPOptions struct {
	// Sink takes each alarm; it returns once the alarm is safe, or an error.
	// It must be set.
	Sink Sink
	// User and Password are the HTTP Basic credentials senders must give
	// ([http] alarm_user and alarm_password, the password revealed). While
	// either is empty every request is refused.
	User     string
	Password string
	// Log receives a line per refused request; nil discards it.
	Log *slog.Logger
	// Attempts limits the tries at the credentials per client; nil means
	// one of limit's defaults (5 failures, then one a minute), as the
	// page's login has.
	Attempts *limit.Attempts
}

// HTTP serves the alarm endpoints, POST /alarm and POST
// /alertmanager (other paths are not found, other methods 405):
//
//   - 401 with WWW-Authenticate without the right Basic credentials,
//     compared in constant time; always while none are configured;
//   - 429 with Retry-After once a client gave wrong credentials too often
//     (HTTPOptions.Attempts: 5, then one try a minute; the right ones
//     reset the count), the right credentials included, so that the
//     limit tells a guesser nothing;
//   - 415 for a Content-Type other than application/json (both routes) or
//     application/x-www-form-urlencoded (POST /alarm only);
//   - 413 for a body beyond alarm.MaxJSONBody, MaxFormBody or
//     alarm.MaxAlertmanagerBody;
//   - 400 with the parser's message, which names the field, as text/plain;
//   - 200 with {"accepted": n} once the sink has taken every alarm of the
//     request;
//   - 503 with Retry-After when the sink refused any of them (every alarm of
//     the request is still offered to the sink, so the more severe ones of a
//     batch get in). The answer says how many were taken: the sender sends
//     the whole request again, and the alarms taken twice are duplicates,
//     which the box allows, where a lost alarm it does not. Alertmanager
//     retries on 5xx and takes any 2xx as done.
//
// Every answer carries Cache-Control: no-store. Neither the password nor
// the Authorization header appears in an answer or a log line.
func HTTP(o HTTPOptions) http.Handler {
	h := &alarmHandler{sink: o.Sink, log: o.Log, attempts: o.Attempts}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.attempts == nil {
		h.attempts = limit.NewAttempts(limit.AttemptOptions{})
	}
	switch {
	case o.User == "":
		h.unset = "alarm_user"
	case o.Password == "":
		h.unset = "alarm_password"
	}
	h.user = sha256.Sum256([]byte(o.User))
	h.password = sha256.Sum256([]byte(o.Password))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /alarm", h.alarm)
	mux.HandleFunc("POST /alertmanager", h.alertmanager)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

type alarmHandler struct {
	sink           Sink
	log            *slog.Logger
	unset          string // the config key not set, "" when both are
	user, password [sha256.Size]byte
	attempts       *limit.Attempts
	// One line a minute about refused requests of each kind, so that a
	// storm or a password guesser cannot flood the log.
	authLog, limitLog, refusedLog lograte.Limiter
}

func (h *alarmHandler) alarm(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(w, r) {
		return
	}
	var as []alarm.Alarm
	var err error
	switch mediaType(r) {
	case "application/json":
		as, err = alarm.ParseJSON(http.MaxBytesReader(w, r.Body, alarm.MaxJSONBody+1))
	case "application/x-www-form-urlencoded":
		var a alarm.Alarm
		a, err = parseForm(http.MaxBytesReader(w, r.Body, MaxFormBody+1))
		as = []alarm.Alarm{a}
	default:
		unsupported(w, "application/json, application/x-www-form-urlencoded")
		return
	}
	if err != nil {
		badRequest(w, err)
		return
	}
	h.take(w, r, as)
}

func (h *alarmHandler) alertmanager(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(w, r) {
		return
	}
	if mediaType(r) != "application/json" {
		unsupported(w, "application/json")
		return
	}
	as, err := alarm.ParseAlertmanager(http.MaxBytesReader(w, r.Body, alarm.MaxAlertmanagerBody+1))
	if err != nil {
		badRequest(w, err)
		return
	}
	h.take(w, r, as)
}

// authorized checks the request's credentials and answers 401 if they are
// not right. Both sides are hashed before the constant-time comparison, so
// the time taken does not tell the length of the user name or password.
func (h *alarmHandler) authorized(w http.ResponseWriter, r *http.Request) bool {
	user, password, ok := r.BasicAuth()
	client := limit.Client(r.RemoteAddr)
	if ok && h.unset == "" {
		if allowed, wait := h.attempts.Take(client); !allowed {
			h.limitLog.Log(h.log, slog.LevelWarn, "alarm request refused: too many wrong credentials from this client",
				"path", r.URL.Path, "remote", r.RemoteAddr, "retry_after", limit.RetryAfter(wait))
			w.Header().Set("Retry-After", strconv.Itoa(limit.RetryAfter(wait)))
			http.Error(w, "too many wrong credentials: try again later", http.StatusTooManyRequests)
			return false
		}
	}
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(password))
	match := subtle.ConstantTimeCompare(u[:], h.user[:]) & subtle.ConstantTimeCompare(p[:], h.password[:])
	switch {
	case h.unset != "":
		h.authLog.Log(h.log, slog.LevelWarn, "alarm request refused: [http] "+h.unset+" is not set, so no alarm can be posted",
			"path", r.URL.Path, "remote", r.RemoteAddr)
	case !ok:
		h.authLog.Log(h.log, slog.LevelInfo, "alarm request refused: no credentials", "path", r.URL.Path, "remote", r.RemoteAddr)
	case match != 1:
		h.authLog.Log(h.log, slog.LevelWarn, "alarm request refused: wrong user or password", "path", r.URL.Path, "remote", r.RemoteAddr)
	default:
		h.attempts.Success(client)
		return true
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="mailagent alarms", charset="UTF-8"`)
	msg := "unauthorized: give the alarm user and password with HTTP Basic authentication"
	if h.unset != "" {
		msg = "unauthorized: this box takes no alarms until its alarm user and password are set"
	}
	http.Error(w, msg, http.StatusUnauthorized)
	return false
}

// take hands every alarm to the sink and answers.
func (h *alarmHandler) take(w http.ResponseWriter, r *http.Request, as []alarm.Alarm) {
	taken := 0
	var first error
	for _, a := range as {
		if err := h.sink(r.Context(), a); err != nil {
			if first == nil {
				first = err
			}
			if r.Context().Err() != nil {
				break
			}
			continue
		}
		taken++
	}
	if first != nil {
		h.refusedLog.Log(h.log, slog.LevelWarn, "alarms refused", "path", r.URL.Path, "remote", r.RemoteAddr,
			"alarms", len(as), "taken", taken, "err", first)
		msg := "alarm not taken: " + reason(first)
		if len(as) > 1 {
			msg = fmt.Sprintf("%d of %d alarms not taken: %s; %d were taken, send the whole request again (duplicates are harmless)",
				len(as)-taken, len(as), reason(first), taken)
		}
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	h.log.Debug("alarms taken", "path", r.URL.Path, "remote", r.RemoteAddr, "alarms", taken)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		Accepted int `json:"accepted"`
	}{taken})
}

// parseForm reads a form body of at most MaxFormBody bytes.
func parseForm(body io.Reader) (alarm.Alarm, error) {
	b, err := io.ReadAll(io.LimitReader(body, MaxFormBody+1))
	if err != nil {
		return alarm.Alarm{}, fmt.Errorf("read body: %w", err)
	}
	if len(b) > MaxFormBody {
		return alarm.Alarm{}, fmt.Errorf("%w: more than %d bytes", alarm.ErrTooLarge, MaxFormBody)
	}
	v, err := url.ParseQuery(string(b))
	if err != nil {
		return alarm.Alarm{}, fmt.Errorf("parse alarm form: %w", err)
	}
	return alarm.ParseForm(v)
}

// mediaType returns the request's media type without parameters, "" when
// missing or unreadable.
func mediaType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

func unsupported(w http.ResponseWriter, accept string) {
	w.Header().Set("Accept-Post", accept)
	http.Error(w, "unsupported content type: send "+accept, http.StatusUnsupportedMediaType)
}

func badRequest(w http.ResponseWriter, err error) {
	var tooLarge *http.MaxBytesError
	if errors.Is(err, alarm.ErrTooLarge) || errors.As(err, &tooLarge) {
		http.Error(w, reason(err), http.StatusRequestEntityTooLarge)
		return
	}
	http.Error(w, reason(err), http.StatusBadRequest)
}

// reason is err's message on one line of at most 300 bytes.
func reason(err error) string {
	s := oneLine(err.Error())
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}
