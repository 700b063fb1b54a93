package oauthtest

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// slowDown is what a slow_down adds to a device code's interval (RFC 8628
// §3.5).
const slowDown = 5 * time.Second

type deviceState int

const (
	devicePending deviceState = iota
	deviceApproved
	deviceDenied
)

// deviceCode is a device authorization (RFC 8628 §3.2).
type deviceCode struct {
	code     string // device_code
	user     string // user_code as shown
	client   string
	scope    string
	refresh  bool // the grant includes a refresh token
	expires  time.Time
	interval time.Duration
	last     time.Time // the authorization or the last poll
	state    deviceState
	account  string
	final    *refusal // the final error given, once there is one
	redeemed bool
}

func (s *Server) deviceAuth(w http.ResponseWriter, r *http.Request) {
	q := s.newReq(r, "device authorization request")
	rp := s.deviceAuthorization(q)
	s.flush(q.viol)
	rp.write(w)
}

// deviceAuthorization serves the device authorization endpoint (RFC 8628
// §3.1).
func (s *Server) deviceAuthorization(q *req) reply {
	r := q.r
	if r.Method != http.MethodPost {
		q.violate("%s, want POST", r.Method)
		return reply{status: http.StatusMethodNotAllowed, header: http.Header{"Allow": {http.MethodPost}}, page: "method not allowed"}
	}
	if s.o.Flavour == Microsoft && !s.knownTenant(q) {
		return s.bad(q, unknownTenant(q.tenant))
	}
	if rp, ok := s.parseForm(q); !ok {
		return rp
	}
	f := q.form
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests["device_authorization"]++

	// RFC 8628 §3.1: client_id, unless the client authenticates; x/oauth2
	// and Microsoft send client_id alone.
	var c *Client
	_, hasSecret := f["client_secret"]
	_, hasAssertion := f["client_assertion"]
	if _, _, basic := r.BasicAuth(); basic || hasSecret || hasAssertion {
		var rp reply
		var ok bool
		if c, rp, ok = s.authenticate(q); !ok {
			return rp
		}
	} else {
		id := f.Get("client_id")
		if id == "" {
			return s.bad(q, missing("client_id"))
		}
		if c = s.client(id); c == nil {
			return s.bad(q, unknownClient(id, s.o.Tenant, false))
		}
	}
	scope := f.Get("scope")
	if scope == "" {
		return s.bad(q, missing("scope"))
	}
	refresh := true
	switch s.o.Flavour {
	case Google:
		for _, w := range strings.Fields(scope) {
			if w == "https://mail.google.com/" || strings.HasPrefix(w, "https://www.googleapis.com/auth/gmail.") {
				return s.bad(q, refusal{code: "invalid_scope", desc: "Invalid device flow scope: " + w})
			}
		}
	case Microsoft:
		if !hasWord(scope, "offline_access") {
			q.violate("scope %q without offline_access: Microsoft gives no refresh token", scope)
			refresh = false
		}
	}

	d := &deviceCode{
		code:     randomString(120),
		user:     userCode(s.o.Flavour),
		client:   c.ID,
		scope:    scope,
		refresh:  refresh,
		expires:  q.now.Add(s.o.DeviceTTL),
		interval: s.o.DeviceInterval,
		last:     q.now,
	}
	s.devices[d.code] = d
	s.userCodes[normUserCode(d.user)] = d
	s.deviceOrder = append(s.deviceOrder, d)

	body := map[string]any{
		"device_code": d.code,
		"user_code":   d.user,
		"expires_in":  int(s.o.DeviceTTL / time.Second),
		"interval":    int(d.interval / time.Second),
	}
	switch s.o.Flavour {
	case Microsoft:
		page := s.base + "/devicelogin"
		body["verification_uri"] = page
		body["message"] = fmt.Sprintf("To sign in, use a web browser to open the page %s and enter the code %s to authenticate.", page, d.user)
	case Google:
		body["verification_url"] = s.base + "/device" // sic: Google's name
	default:
		body["verification_uri"] = s.base + "/activate"
		body["verification_uri_complete"] = s.base + "/activate?user_code=" + d.user
	}
	return reply{body: body}
}

// devicePoll serves grant_type=urn:ietf:params:oauth:grant-type:device_code
// (RFC 8628 §3.4, §3.5). The lock is held.
func (s *Server) devicePoll(q *req, c *Client, omitRT bool) reply {
	code := q.form.Get("device_code")
	if code == "" {
		return s.bad(q, missing("device_code"))
	}
	d := s.devices[code]
	if d == nil {
		return s.bad(q, refusal{code: "invalid_grant", mcode: "bad_verification_code", desc: "unknown device_code"})
	}
	if d.client != c.ID {
		return s.bad(q, refusal{code: "invalid_grant", mcode: "bad_verification_code",
			desc: fmt.Sprintf("device_code issued to client %q, polled by %q", d.client, c.ID)})
	}
	if d.redeemed || d.final != nil {
		e := refusal{code: "invalid_grant", desc: "device_code used after its final answer",
			aad: 54005, ms: "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."}
		if d.final != nil {
			e = *d.final
			e.desc = "device_code polled again after its final answer (" + d.final.desc + ")"
		}
		return s.bad(q, e)
	}
	if !q.now.Before(d.expires) {
		// The user never answered: not the client's fault.
		d.final = &refusal{code: "expired_token", desc: "device code expired",
			aad: 70019, ms: "Verification code expired.", status: googleStatus(s.o.Flavour, http.StatusForbidden)}
		return s.refuse(*d.final)
	}
	since := q.now.Sub(d.last)
	d.last = q.now
	if since < d.interval {
		d.interval += slowDown
		return s.bad(q, refusal{code: "slow_down", status: googleStatus(s.o.Flavour, http.StatusForbidden),
			desc: fmt.Sprintf("polled %v after the last request, the interval is %v (RFC 8628 §3.5)", since, d.interval-slowDown)})
	}
	switch d.state {
	case devicePending:
		return s.refuse(refusal{code: "authorization_pending", desc: "the user has not answered yet",
			aad: 70016, ms: "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
			status: googleStatus(s.o.Flavour, http.StatusPreconditionRequired)})
	case deviceDenied:
		d.final = &refusal{code: "access_denied", mcode: "authorization_declined", desc: "the user declined",
			aad: 70000, ms: "The user declined the authorization request.", status: googleStatus(s.o.Flavour, http.StatusForbidden)}
		return s.refuse(*d.final)
	}
	d.redeemed = true
	s.families++
	if s.o.Flavour == Microsoft {
		// Public even when the poll authenticated the client
		// (canonical/authd#1881 sent its secret there too).
		s.public[s.families] = true
	}
	return s.issue(q, c.ID, d.account, d.scope, s.families, d.refresh && !omitRT)
}

// googleStatus is Google's HTTP status for device flow answers (428 while
// pending, 403 for slow_down and the final errors); 400 elsewhere.
func googleStatus(f Flavour, status int) int {
	if f == Google {
		return status
	}
	return http.StatusBadRequest
}

// ApproveDevice makes the account (see [Options.Account]) approve the
// pending device authorization with userCode; the next poll gets tokens.
func (s *Server) ApproveDevice(userCode string) { s.answerDevice(userCode, deviceApproved) }

// DenyDevice makes the user decline the pending device authorization with
// userCode: authorization_declined (Microsoft) or access_denied.
func (s *Server) DenyDevice(userCode string) { s.answerDevice(userCode, deviceDenied) }

func (s *Server) answerDevice(userCode string, st deviceState) {
	s.t.Helper()
	s.mu.Lock()
	d := s.userCodes[normUserCode(userCode)]
	ok := d != nil && d.state == devicePending && s.now().Before(d.expires)
	if ok {
		d.state = st
		d.account = s.account("")
	}
	s.mu.Unlock()
	if !ok {
		s.t.Errorf("oauthtest: no pending device authorization with user code %q", userCode)
	}
}

// PendingUserCodes lists the user codes of device authorizations the user
// has not answered yet and that have not expired, oldest first.
func (s *Server) PendingUserCodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var codes []string
	for _, d := range s.deviceOrder {
		if d.state == devicePending && now.Before(d.expires) {
			codes = append(codes, d.user)
		}
	}
	return codes
}

// devicePage is the verification page a user would open.
func (s *Server) devicePage(w http.ResponseWriter, r *http.Request) {
	reply{page: "Enter the code shown on your device."}.write(w)
}

// userCode makes a user code from RFC 8628 §6.1's base-20 alphabet:
// "XXXX-XXXX", or nine characters as Microsoft shows them.
func userCode(f Flavour) string {
	const alphabet = "BCDFGHJKLMNPQRSTVWXZ"
	n := 8
	if f == Microsoft {
		n = 9
	}
	b := make([]byte, n)
	rand.Read(b) // never returns an error
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	if f == Microsoft {
		return string(b)
	}
	return string(b[:4]) + "-" + string(b[4:])
}

// normUserCode is a user code as the user may type it.
func normUserCode(c string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(c))
}
