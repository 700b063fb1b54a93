package ingest

import (
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/limit"
)

const (
	testUser     = "pbx-17"
	testPassword = "canary-Pw-4f1e9c" // must never show in an answer or a log
)

// testServer serves HTTP on 127.0.0.1 and keeps every answer and
// log line for the canary check at the end of the test.
type testServer struct {
	t       *testing.T
	url     string
	logs    *syncBuffer
	answers strings.Builder
}

func newHTTPForTest(t *testing.T, o HTTPOptions) *testServer {
	t.Helper()
	ts := &testServer{t: t, logs: new(syncBuffer)}
	o.Log = slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), ts.logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(HTTP(o))
	t.Cleanup(srv.Close)
	ts.url = srv.URL
	t.Cleanup(func() {
		for _, secret := range secrets() {
			if strings.Contains(ts.answers.String(), secret) {
				t.Errorf("an answer holds the secret %q:\n%s", secret, ts.answers.String())
			}
			if strings.Contains(ts.logs.String(), secret) {
				t.Errorf("the log holds the secret %q:\n%s", secret, ts.logs.String())
			}
		}
	})
	return ts
}

// secrets are the strings no answer or log may hold: the password, wrong
// passwords tried, and the Authorization values carrying them.
func secrets() []string {
	var s []string
	for _, p := range []string{testPassword, "wrong-" + testPassword} {
		s = append(s, p, base64.StdEncoding.EncodeToString([]byte(testUser+":"+p)))
	}
	return s
}

type request struct {
	method, path, contentType, body string
	user, password                  string // no Authorization header when both are empty
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (ts *testServer) do(rq request) answer {
	ts.t.Helper()
	if rq.method == "" {
		rq.method = http.MethodPost
	}
	r, err := http.NewRequest(rq.method, ts.url+rq.path, strings.NewReader(rq.body))
	if err != nil {
		ts.t.Fatal(err)
	}
	if rq.contentType != "" {
		r.Header.Set("Content-Type", rq.contentType)
	}
	if rq.user != "" || rq.password != "" {
		r.SetBasicAuth(rq.user, rq.password)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	resp.Header.Write(&ts.answers)
	ts.answers.Write(b)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

const (
	jsonType = "application/json"
	formType = "application/x-www-form-urlencoded"
)

const amFiring = `{"receiver":"mailagent","status":"firing","alerts":[
 {"status":"firing","labels":{"alertname":"InstanceDown","instance":"gw-17:9100","job":"node","severity":"critical"},
  "annotations":{"summary":"Instance gw-17:9100 down"},"startsAt":"2026-11-24T10:59:30Z","endsAt":"0001-01-01T00:00:00Z",
  "generatorURL":"","fingerprint":"b3e1c7a0e2f0d6c1"},
 {"status":"firing","labels":{"alertname":"DiskFull","instance":"gw-17:9100","severity":"page"},
  "annotations":{"summary":"Disk almost full"},"startsAt":"2026-11-24T11:00:00Z","endsAt":"0001-01-01T00:00:00Z",
  "generatorURL":"","fingerprint":"0f1e2d3c4b5a6978"}],
 "groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://alertmanager:9093",
 "version":"4","groupKey":"{}:{}","truncatedAlerts":0}`

var amResolved = strings.NewReplacer(`"status":"firing"`, `"status":"resolved"`,
	`"endsAt":"0001-01-01T00:00:00Z"`, `"endsAt":"2026-11-24T11:05:00Z"`).Replace(amFiring)

func TestAlarmRequests(t *testing.T) {
	form := url.Values{"severity": {"major"}, "code": {"LINK-DOWN"}, "source": {"port 3"}, "text": {"no carrier"},
		"detail": {"speed=1000", "duplex=full"}}.Encode()
	tests := []struct {
		name     string
		rq       request
		status   int
		body     string   // the answer must hold it
		codes    []string // what the sink got
		severity alarm.Severity
	}{
		{"json one", request{path: "/alarm", contentType: jsonType,
			body: `{"severity":"major","code":"LINK-DOWN","source":"port 3","text":"no carrier"}`},
			200, `{"accepted":1}`, []string{"LINK-DOWN"}, alarm.Major},
		{"json with charset", request{path: "/alarm", contentType: "application/json; charset=utf-8",
			body: `{"severity":"critical","code":"FAN"}`},
			200, `{"accepted":1}`, []string{"FAN"}, alarm.Critical},
		{"json array", request{path: "/alarm", contentType: jsonType,
			body: `[{"severity":"minor","code":"A"},{"severity":"minor","code":"B"},{"severity":"minor","code":"C"}]`},
			200, `{"accepted":3}`, []string{"A", "B", "C"}, alarm.Minor},
		{"form", request{path: "/alarm", contentType: formType, body: form},
			200, `{"accepted":1}`, []string{"LINK-DOWN"}, alarm.Major},
		{"alertmanager firing", request{path: "/alertmanager", contentType: jsonType, body: amFiring},
			200, `{"accepted":2}`, []string{"InstanceDown", "DiskFull"}, alarm.Critical},
		{"alertmanager resolved", request{path: "/alertmanager", contentType: jsonType, body: amResolved},
			200, `{"accepted":2}`, []string{"InstanceDown", "DiskFull"}, alarm.Cleared},
		{"alertmanager no alerts", request{path: "/alertmanager", contentType: jsonType,
			body: `{"version":"4","status":"firing","alerts":[]}`},
			200, `{"accepted":0}`, nil, 0},

		{"json bad field", request{path: "/alarm", contentType: jsonType,
			body: `[{"severity":"major","code":"A"},{"severity":"major","code":"B","time":"yesterday"}]`},
			400, "[1].time", nil, 0},
		{"json unknown severity", request{path: "/alarm", contentType: jsonType, body: `{"severity":"bad","code":"A"}`},
			400, "severity", nil, 0},
		{"json not json", request{path: "/alarm", contentType: jsonType, body: `severity=major`},
			400, "not JSON", nil, 0},
		{"json empty", request{path: "/alarm", contentType: jsonType}, 400, "empty", nil, 0},
		{"form without code", request{path: "/alarm", contentType: formType, body: "severity=major"},
			400, "code", nil, 0},
		{"form unknown field", request{path: "/alarm", contentType: formType, body: "severity=major&code=A&colour=red"},
			400, `"colour"`, nil, 0},
		{"form bad escape", request{path: "/alarm", contentType: formType, body: "severity=major&code=%zz"},
			400, "form", nil, 0},
		{"alertmanager wrong version", request{path: "/alertmanager", contentType: jsonType,
			body: strings.Replace(amFiring, `"version":"4"`, `"version":"3"`, 1)},
			400, "version", nil, 0},
		{"alertmanager bad time", request{path: "/alertmanager", contentType: jsonType,
			body: strings.Replace(amFiring, `"2026-11-24T11:00:00Z"`, `"soon"`, 1)},
			400, "alerts[1].startsAt", nil, 0},

		{"json too large", request{path: "/alarm", contentType: jsonType,
			body: `{"severity":"major","code":"A","text":"` + strings.Repeat("x", alarm.MaxJSONBody) + `"}`},
			413, "too large", nil, 0},
		{"form too large", request{path: "/alarm", contentType: formType,
			body: "severity=major&code=A&text=" + strings.Repeat("x", MaxFormBody)},
			413, "too large", nil, 0},
		{"alertmanager too large", request{path: "/alertmanager", contentType: jsonType,
			body: amFiring + strings.Repeat(" ", alarm.MaxAlertmanagerBody)},
			413, "too large", nil, 0},

		{"text plain", request{path: "/alarm", contentType: "text/plain", body: "major LINK-DOWN"},
			415, "application/json", nil, 0},
		{"no content type", request{path: "/alarm", body: `{"severity":"major","code":"A"}`},
			415, "application/json", nil, 0},
		{"form to alertmanager", request{path: "/alertmanager", contentType: formType, body: form},
			415, "application/json", nil, 0},
		{"bad content type", request{path: "/alarm", contentType: "application/json; charset", body: `{}`},
			415, "application/json", nil, 0},

		{"get alarm", request{method: "GET", path: "/alarm"}, 405, "", nil, 0},
		{"put alertmanager", request{method: "PUT", path: "/alertmanager", contentType: jsonType, body: amFiring},
			405, "", nil, 0},
		{"other path", request{path: "/alarms", contentType: jsonType, body: `{"severity":"major","code":"A"}`},
			404, "", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(fakeSink)
			ts := newHTTPForTest(t, HTTPOptions{Sink: sink.take, User: testUser, Password: testPassword})
			tt.rq.user, tt.rq.password = testUser, testPassword
			got := ts.do(tt.rq)
			if got.status != tt.status || !strings.Contains(got.body, tt.body) {
				t.Errorf("%s %s = %d %q, want %d with %q", tt.rq.method, tt.rq.path, got.status, got.body, tt.status, tt.body)
			}
			if cc := got.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
			if ct := got.header.Get("Content-Type"); tt.status == 200 && ct != "application/json" || tt.status >= 400 && !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q for %d", ct, tt.status)
			}
			if tt.status == 405 && got.header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", got.header.Get("Allow"))
			}
			if tt.status == 415 && got.header.Get("Accept-Post") == "" {
				t.Errorf("415 without Accept-Post")
			}
			taken := sink.alarms()
			var codes []string
			for _, a := range taken {
				codes = append(codes, a.Code)
				if a.Severity != tt.severity {
					t.Errorf("alarm %s: severity %v, want %v", a.Code, a.Severity, tt.severity)
				}
			}
			if strings.Join(codes, ",") != strings.Join(tt.codes, ",") {
				t.Errorf("sink got %q, want %q", codes, tt.codes)
			}
			if tt.name == "form" && (len(taken[0].Details) != 2 || taken[0].Source != "port 3" || taken[0].Text != "no carrier") {
				t.Errorf("form alarm = %+v", taken[0])
			}
		})
	}
}

func TestAlarmAuth(t *testing.T) {
	body := `{"severity":"major","code":"A"}`
	tests := []struct {
		name           string
		user, password string // configured
		rq             request
		status         int
		log            string // a log line must hold it
	}{
		{"right", testUser, testPassword, request{user: testUser, password: testPassword}, 200, ""},
		{"no credentials", testUser, testPassword, request{}, 401, "no credentials"},
		{"wrong password", testUser, testPassword, request{user: testUser, password: "wrong-" + testPassword}, 401, "wrong user or password"},
		{"password prefix", testUser, testPassword, request{user: testUser, password: testPassword[:5]}, 401, "wrong user or password"},
		{"wrong user", testUser, testPassword, request{user: "pbx-18", password: testPassword}, 401, "wrong user or password"},
		{"user and password swapped", testUser, testPassword, request{user: testPassword, password: testUser}, 401, "wrong user or password"},
		{"nothing configured", "", "", request{user: testUser, password: testPassword}, 401, "alarm_user is not set"},
		{"nothing configured, empty credentials sent", "", "", request{user: "", password: ""}, 401, "alarm_user is not set"},
		{"no password configured", testUser, "", request{user: testUser, password: ""}, 401, "alarm_password is not set"},
		{"no user configured", "", testPassword, request{user: "", password: testPassword}, 401, "alarm_user is not set"},
	}
	for _, tt := range tests {
		for _, path := range []string{"/alarm", "/alertmanager"} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				sink := new(fakeSink)
				ts := newHTTPForTest(t, HTTPOptions{Sink: sink.take, User: tt.user, Password: tt.password})
				rq := tt.rq
				rq.path, rq.contentType, rq.body = path, jsonType, body
				if path == "/alertmanager" {
					rq.body = amFiring
				}
				got := ts.do(rq)
				if got.status != tt.status {
					t.Errorf("status = %d %q, want %d", got.status, got.body, tt.status)
				}
				if tt.status == 401 {
					if wa := got.header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Basic realm=") {
						t.Errorf("WWW-Authenticate = %q", wa)
					}
					if len(sink.alarms()) != 0 || sink.offers != 0 {
						t.Errorf("sink was offered %d alarms without authentication", sink.offers)
					}
				}
				if !strings.Contains(ts.logs.String(), tt.log) {
					t.Errorf("log lacks %q:\n%s", tt.log, ts.logs.String())
				}
			})
		}
	}
	// An empty Authorization header sent explicitly when nothing is
	// configured: still refused.
	t.Run("empty basic when nothing configured", func(t *testing.T) {
		ts := newHTTPForTest(t, HTTPOptions{Sink: new(fakeSink).take})
		r, _ := http.NewRequest("POST", ts.url+"/alarm", strings.NewReader(body))
		r.Header.Set("Content-Type", jsonType)
		r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(":")))
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("status = %d, want 401", resp.StatusCode)
		}
	})
}

// TestAlarmAuthRateLimited: wrong Basic credentials are limited per
// client as the page's logins are (5,000 guesses on one connection went
// through, with one log line): after 5 failures a client gets 429 with
// Retry-After, the right password included, until a minute gives it one
// try back; the right password then resets the count. Another client is
// not affected, and a request without credentials counts for nothing.
func TestAlarmAuthRateLimited(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	sink := new(fakeSink)
	ts := newHTTPForTest(t, HTTPOptions{Sink: sink.take, User: testUser, Password: testPassword,
		Attempts: limit.NewAttempts(limit.AttemptOptions{Now: clock})})
	body := `{"severity":"major","code":"A"}`
	wrong := request{path: "/alarm", contentType: jsonType, body: body, user: testUser, password: "wrong-" + testPassword}
	right := request{path: "/alarm", contentType: jsonType, body: body, user: testUser, password: testPassword}
	for range 3 {
		if got := ts.do(request{path: "/alarm", contentType: jsonType, body: body}); got.status != 401 {
			t.Fatalf("no credentials: %d, want 401", got.status)
		}
	}
	for i := range limit.DefaultBurst {
		if got := ts.do(wrong); got.status != 401 {
			t.Fatalf("wrong password %d: %d %q, want 401", i+1, got.status, got.body)
		}
	}
	for _, rq := range []request{wrong, right} {
		got := ts.do(rq)
		if got.status != 429 || got.header.Get("Retry-After") != "60" {
			t.Errorf("after %d failures, password %q: %d Retry-After %q, want 429 and 60",
				limit.DefaultBurst, rq.password, got.status, got.header.Get("Retry-After"))
		}
	}
	if n := len(sink.alarms()); n != 0 {
		t.Errorf("%d alarms taken from a client over its limit", n)
	}
	if n := strings.Count(ts.logs.String(), "too many wrong credentials"); n != 1 {
		t.Errorf("%d log lines about the limit, want 1 a minute:\n%s", n, ts.logs.String())
	}
	mu.Lock()
	now = now.Add(limit.DefaultRefill)
	mu.Unlock()
	if got := ts.do(right); got.status != 200 {
		t.Fatalf("a minute later, the right password: %d %q, want 200", got.status, got.body)
	}
	for i := range limit.DefaultBurst { // the success reset the count
		if got := ts.do(wrong); got.status != 401 {
			t.Fatalf("after a success, wrong password %d: %d, want 401", i+1, got.status)
		}
	}
}

func TestAlarmSinkRefuses(t *testing.T) {
	batch := `[{"severity":"minor","code":"A"},{"severity":"minor","code":"FULL"},{"severity":"critical","code":"C"}]`
	tests := []struct {
		name   string
		refuse string
		rq     request
		taken  []string
		body   []string // the answer must hold each
	}{
		{"single refused", "*", request{path: "/alarm", contentType: jsonType, body: `{"severity":"minor","code":"A"}`},
			nil, []string{"alarm not taken", "queue is full"}},
		{"form refused", "*", request{path: "/alarm", contentType: formType, body: "severity=minor&code=A"},
			nil, []string{"alarm not taken", "queue is full"}},
		{"batch partly taken", "FULL", request{path: "/alarm", contentType: jsonType, body: batch},
			[]string{"A", "C"}, []string{"1 of 3 alarms not taken", "2 were taken", "send the whole request again", "queue is full"}},
		{"batch refused", "*", request{path: "/alarm", contentType: jsonType, body: batch},
			nil, []string{"3 of 3 alarms not taken", "0 were taken"}},
		{"alertmanager partly taken", "DiskFull", request{path: "/alertmanager", contentType: jsonType, body: amFiring},
			[]string{"InstanceDown"}, []string{"1 of 2 alarms not taken", "1 were taken"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &fakeSink{refuse: map[string]bool{tt.refuse: true}}
			ts := newHTTPForTest(t, HTTPOptions{Sink: sink.take, User: testUser, Password: testPassword})
			tt.rq.user, tt.rq.password = testUser, testPassword
			got := ts.do(tt.rq)
			if got.status != http.StatusServiceUnavailable {
				t.Errorf("status = %d %q, want 503", got.status, got.body)
			}
			if ra := got.header.Get("Retry-After"); ra != "60" {
				t.Errorf("Retry-After = %q, want 60", ra)
			}
			for _, w := range tt.body {
				if !strings.Contains(got.body, w) {
					t.Errorf("answer %q lacks %q", got.body, w)
				}
			}
			var codes []string
			for _, a := range sink.alarms() {
				codes = append(codes, a.Code)
			}
			if strings.Join(codes, ",") != strings.Join(tt.taken, ",") {
				t.Errorf("sink took %q, want %q (every alarm offered)", codes, tt.taken)
			}
			if !strings.Contains(ts.logs.String(), "alarms refused") {
				t.Errorf("no refusal in the log:\n%s", ts.logs.String())
			}
		})
	}
}

// The sender retries a batch the box took part of: every alarm arrives at
// least once.
func TestAlarmRetryAfterPartialBatch(t *testing.T) {
	sink := &fakeSink{refuse: map[string]bool{"B": true}}
	ts := newHTTPForTest(t, HTTPOptions{Sink: sink.take, User: testUser, Password: testPassword})
	rq := request{path: "/alarm", contentType: jsonType, user: testUser, password: testPassword,
		body: `[{"severity":"minor","code":"A"},{"severity":"minor","code":"B"}]`}
	if got := ts.do(rq); got.status != 503 {
		t.Fatalf("first try: %d %q, want 503", got.status, got.body)
	}
	sink.mu.Lock()
	sink.refuse = nil
	sink.mu.Unlock()
	if got := ts.do(rq); got.status != 200 || !strings.Contains(got.body, `"accepted":2`) {
		t.Fatalf("retry: %d %q, want 200 accepted 2", got.status, got.body)
	}
	seen := map[string]int{}
	for _, a := range sink.alarms() {
		seen[a.Code]++
	}
	if seen["A"] != 2 || seen["B"] != 1 {
		t.Errorf("sink took %v, want A twice (a duplicate) and B once", seen)
	}
}

func TestReason(t *testing.T) {
	long := strings.Repeat("é", 400)
	tests := []struct {
		err  error
		want string
	}{
		{errors.New("a\r\nb"), "a  b"},
		{errors.New(long), long[:300] + "…"},
		{errors.New("x" + long), "x" + long[:298] + "…"},
	}
	for _, tt := range tests {
		if got := reason(tt.err); got != tt.want {
			t.Errorf("reason(%.20q) = %.20q…, want %.20q…", tt.err, got, tt.want)
		}
	}
}

// TestAlarmRefusalLogIsQuiet: a storm of refused requests, wrong passwords
// and full queues alike, is one log line of each kind, and every sender
// still gets its answer.
func TestAlarmRefusalLogIsQuiet(t *testing.T) {
	sink := &fakeSink{refuse: map[string]bool{"*": true}}
	ts := newHTTPForTest(t, HTTPOptions{Sink: sink.take, User: testUser, Password: testPassword})
	for range 50 {
		if got := ts.do(request{path: "/alarm", contentType: jsonType, body: `{"severity":"minor","code":"A"}`,
			user: testUser, password: "wrong-" + testPassword}); got.status != 401 {
			t.Fatalf("wrong password: status %d", got.status)
		}
		if got := ts.do(request{path: "/alarm", contentType: jsonType, body: `{"severity":"minor","code":"A"}`,
			user: testUser, password: testPassword}); got.status != 503 {
			t.Fatalf("full queue: status %d", got.status)
		}
	}
	logs := ts.logs.String()
	if n := strings.Count(logs, "wrong user or password"); n != 1 {
		t.Errorf("%d log lines for 50 wrong passwords, want 1:\n%s", n, logs)
	}
	if n := strings.Count(logs, "alarms refused"); n != 1 {
		t.Errorf("%d log lines for 50 refusals, want 1:\n%s", n, logs)
	}
}
