package oauthtest

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"time"
)

// req is one request being served: what it is, its parameters, and the
// violations found in it so far.
type req struct {
	r      *http.Request
	what   string // "token request (refresh_token)", for violation messages
	now    time.Time
	form   url.Values // query for the authorization endpoint, body for the others
	tenant string     // Microsoft path tenant
	viol   []string
}

func (s *Server) newReq(r *http.Request, what string) *req {
	return &req{r: r, what: what, now: s.now()}
}

// violate records a violation by the client.
func (q *req) violate(format string, args ...any) {
	q.viol = append(q.viol, q.what+": "+fmt.Sprintf(format, args...))
}

// reply is an answer: JSON, a redirect or a page.
type reply struct {
	status   int // 200 if zero (302 with location)
	header   http.Header
	body     map[string]any // JSON body
	location string         // redirect
	page     string         // text/html body, when neither body nor location
	none     bool           // write nothing: the request was cancelled
}

func (rp reply) failed() bool { return rp.status >= 400 }

func (rp reply) write(w http.ResponseWriter) {
	if rp.none {
		return
	}
	for k, v := range rp.header {
		w.Header()[k] = v
	}
	status := rp.status
	if status == 0 {
		status = http.StatusOK
	}
	switch {
	case rp.location != "":
		w.Header().Set("Location", rp.location)
		w.WriteHeader(http.StatusFound)
	case rp.body != nil:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(rp.body)
	default:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<!doctype html><title>%d</title><p>%s</p>\n", status, html.EscapeString(rp.page))
	}
}

// refusal is an error answer, worded per flavour.
type refusal struct {
	status int    // HTTP status; 400 if zero
	code   string // RFC 6749 error
	desc   string // what is wrong: the generic text and the violation message
	aad    int    // Microsoft's AADSTS number, if any
	ms     string // Microsoft's wording after "AADSTSnnn: "; desc if empty
	mcode  string // Microsoft's error, when it differs from code
	mstat  int    // Microsoft's HTTP status, when it differs from status
	gcode  string // Google's error, when it differs from code
	gdesc  string // Google's wording; desc if empty
	basic  bool   // the request used HTTP Basic: a 401 names the scheme
}

// refuse answers with e; not a violation.
func (s *Server) refuse(e refusal) reply {
	status := e.status
	if s.o.Flavour == Microsoft && e.mstat != 0 {
		status = e.mstat
	}
	if status == 0 {
		status = http.StatusBadRequest
	}
	rp := reply{status: status}
	if e.basic && status == http.StatusUnauthorized {
		rp.header = http.Header{"Www-Authenticate": {`Basic realm="oauthtest"`}}
	}
	code, desc := e.code, e.desc
	switch s.o.Flavour {
	case Microsoft:
		if e.mcode != "" {
			code = e.mcode
		}
		if e.ms != "" {
			desc = e.ms
		}
		if e.aad != 0 {
			desc = fmt.Sprintf("AADSTS%d: %s", e.aad, desc)
		}
		rp.body = s.microsoftError(code, desc, []int{e.aad})
		return rp
	case Google:
		if e.gcode != "" {
			code = e.gcode
		}
		if e.gdesc != "" {
			desc = e.gdesc
		}
	}
	rp.body = map[string]any{"error": code, "error_description": desc}
	return rp
}

// bad answers with e and records e.desc as a violation.
func (s *Server) bad(q *req, e refusal) reply {
	q.violate("%s", e.desc)
	return s.refuse(e)
}

// microsoftError is the shape of the identity platform's error bodies:
// desc (which starts with "AADSTSnnn: " when there is a code) gets the
// trace lines Microsoft appends.
func (s *Server) microsoftError(code, desc string, codes []int) map[string]any {
	now := s.now().UTC()
	trace, corr := guid(), guid()
	desc += fmt.Sprintf("\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", trace, corr, now.Format("2006-01-02 15:04:05Z"))
	body := map[string]any{
		"error":             code,
		"error_description": desc,
		"timestamp":         now.Format("2006-01-02 15:04:05Z"),
		"trace_id":          trace,
		"correlation_id":    corr,
	}
	var nonzero []int
	for _, c := range codes {
		if c != 0 {
			nonzero = append(nonzero, c)
		}
	}
	if len(nonzero) > 0 {
		body["error_codes"] = nonzero
		body["error_uri"] = fmt.Sprintf("%s/error?code=%d", s.base, nonzero[0])
	}
	return body
}

// missing is the refusal of a request without a required parameter.
func missing(name string) refusal {
	return refusal{code: "invalid_request", desc: "missing parameter " + name,
		aad: 900144, ms: fmt.Sprintf("The request body must contain the following parameter: '%s'.", name),
		gdesc: "Missing required parameter: " + name}
}

func guid() string {
	b := []byte(randomString(32))
	const hex = "0123456789abcdef"
	for i := range b {
		b[i] = hex[b[i]%16]
	}
	return fmt.Sprintf("%s-%s-%s-%s-%s", b[0:8], b[8:12], b[12:16], b[16:20], b[20:32])
}
