package alarm

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// received is when the test messages arrive (testNow).
var received = testNow

func manySD(n int) string {
	var b strings.Builder
	b.WriteString("[big@1")
	for i := range n {
		fmt.Fprintf(&b, ` p%02d="%d"`, i, i)
	}
	return b.String() + "]"
}

var syslogTests = []struct {
	name string
	msg  string
	want Alarm
	err  string
}{
	// What util-linux logger 2.38 sends over the network.
	{
		name: "logger --rfc5424",
		msg:  `<27>1 2026-11-24T11:14:00.473847+00:00 vm myapp - - [timeQuality tzKnown="1" isSynced="0"] hello world`,
		want: Alarm{Time: time.Date(2026, 11, 24, 11, 14, 0, 473847000, time.UTC), Severity: Major, Code: "myapp",
			Source: "vm", Text: "hello world", Details: []Detail{{"priority", "daemon.err"}}},
	},
	{
		name: "logger --rfc3164",
		msg:  "<132>Nov 24 11:14:00 vm myapp[27546]: hi there\n",
		want: Alarm{Time: time.Date(2026, 11, 24, 11, 14, 0, 0, time.UTC), Severity: Warning, Code: "myapp",
			Source: "vm", Text: "hi there", Details: []Detail{{"priority", "local0.warning"}}},
	},
	{
		name: "logger --rfc5424=notq,notime,nohost",
		msg:  `<13>1 - - root - - - bare`,
		want: Alarm{Time: received, Severity: Info, Code: "root", Text: "bare", Details: []Detail{{"priority", "user.notice"}}},
	},
	// RFC 5424 §6.5.
	{
		name: "RFC 5424 example 1: MSGID is the code, BOM dropped",
		msg:  "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
		want: Alarm{Time: time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC), Severity: Critical, Code: "ID47",
			Source: "mymachine.example.com", Text: "'su root' failed for lonvick on /dev/pts/8",
			Details: []Detail{{"priority", "auth.crit"}, {"app", "su"}}},
	},
	{
		name: "RFC 5424 example 3: structured data",
		msg: `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource=` +
			`"Application" eventID="1011"] ` + "\xEF\xBB\xBFAn application event log entry...",
		want: Alarm{Time: time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC), Severity: Info, Code: "ID47",
			Source: "mymachine.example.com", Text: "An application event log entry...",
			Details: []Detail{{"priority", "local4.notice"}, {"app", "evntslog"}, {"exampleSDID@32473.iut", "3"},
				{"exampleSDID@32473.eventSource", "Application"}, {"exampleSDID@32473.eventID", "1011"}}},
	},
	{
		name: "RFC 5424 example 4: two elements, no MSG",
		msg:  `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"][examplePriority@32473 class="high"]`,
		want: Alarm{Time: time.Date(2003, 10, 11, 22, 14, 15, 3e6, time.UTC), Severity: Info, Code: "ID47",
			Source: "mymachine.example.com",
			Details: []Detail{{"priority", "local4.notice"}, {"app", "evntslog"}, {"exampleSDID@32473.iut", "3"},
				{"examplePriority@32473.class", "high"}}},
	},
	{
		name: "structured data escapes",
		msg:  `<11>1 2026-11-24T10:00:00Z box app 42 - [x@1 a="q\"uo\\te\]d" b="back\slash" c="" d="]"] text`,
		want: Alarm{Time: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), Severity: Major, Code: "app", Source: "box", Text: "text",
			Details: []Detail{{"priority", "user.err"}, {"x@1.a", `q"uo\te]d`}, {"x@1.b", `back\slash`}, {"x@1.c", ""}, {"x@1.d", "]"}}},
	},
	{
		name: "structured data left out, no dash",
		msg:  `<13>1 - host app - - hello there`,
		want: Alarm{Time: received, Severity: Info, Code: "app", Source: "host", Text: "hello there", Details: []Detail{{"priority", "user.notice"}}},
	},
	{
		name: "message ends after MSGID",
		msg:  `<8>1 - host app - M1`,
		want: Alarm{Time: received, Severity: Critical, Code: "M1", Source: "host", Details: []Detail{{"priority", "user.emerg"}, {"app", "app"}}},
	},
	{
		name: "every part nil",
		msg:  `<191>1 - - - - - -`,
		want: Alarm{Time: received, Severity: Info, Code: "syslog", Details: []Detail{{"priority", "local7.debug"}}},
	},
	{
		name: "octet-counted message keeps its lines",
		msg:  "<11>1 - h app - - - line 1\r\nline 2\n",
		want: Alarm{Time: received, Severity: Major, Code: "app", Source: "h", Text: "line 1\nline 2", Details: []Detail{{"priority", "user.err"}}},
	},
	{
		name: "too many parameters: cut, counted",
		msg:  `<13>1 - h app - - ` + manySD(40),
		want: func() Alarm {
			a := Alarm{Time: received, Severity: Info, Code: "app", Source: "h", Details: []Detail{{"priority", "user.notice"}}}
			for i := range MaxDetails - 2 {
				a.Details = append(a.Details, Detail{fmt.Sprintf("big@1.p%02d", i), fmt.Sprint(i)})
			}
			a.Details = append(a.Details, Detail{omittedKey, "10 more details"})
			return a
		}(),
	},
	{
		name: "long parts cut",
		msg:  "<13>1 - " + strings.Repeat("h", 255) + " app - " + strings.Repeat("M", 32) + strings.Repeat("m", 40) + ` [x@1 v="` + strings.Repeat("v", 600) + `"] ` + strings.Repeat("t", MaxText+10),
	},
	{
		name: "BOM, then bytes that are not UTF-8",
		msg:  "<13>1 - h a - - - \xEF\xBB\xBFcaf\xE9",
		want: Alarm{Time: received, Severity: Info, Code: "a", Source: "h", Text: "caf\uFFFD", Details: []Detail{{"priority", "user.notice"}}},
	},

	// RFC 3164 as senders write it.
	{
		name: "3164 without host",
		msg:  "<13>Nov 24 11:14:00 myapp: hello",
		want: Alarm{Time: time.Date(2026, 11, 24, 11, 14, 0, 0, time.UTC), Severity: Info, Code: "myapp", Text: "hello", Details: []Detail{{"priority", "user.notice"}}},
	},
	{
		name: "3164 without host, with pid",
		msg:  "<13>Nov  4 09:05:01 cron[1]: job done",
		want: Alarm{Time: time.Date(2026, 11, 4, 9, 5, 1, 0, time.UTC), Severity: Info, Code: "cron", Text: "job done", Details: []Detail{{"priority", "user.notice"}}},
	},
	{
		name: "3164 single-digit day, tag with slash",
		msg:  "<18>Nov 4 09:05:01 mx1 postfix/smtpd[812]: lost connection",
		want: Alarm{Time: time.Date(2026, 11, 4, 9, 5, 1, 0, time.UTC), Severity: Critical, Code: "postfix/smtpd", Source: "mx1",
			Text: "lost connection", Details: []Detail{{"priority", "mail.crit"}}},
	},
	{
		name: "rsyslog RFC 3339 time stamp",
		msg:  "<35>2026-11-24T12:14:00.5+01:00 gw.example sshd[99]: failed password",
		want: Alarm{Time: time.Date(2026, 11, 24, 11, 14, 0, 5e8, time.UTC), Severity: Major, Code: "sshd", Source: "gw.example",
			Text: "failed password", Details: []Detail{{"priority", "auth.err"}}},
	},
	{
		name: "3164 with year and milliseconds",
		msg:  "<12>Nov 24 2025 11:14:00.250 pbx alarmd: trunk 2 down",
		want: Alarm{Time: time.Date(2025, 11, 24, 11, 14, 0, 25e7, time.UTC), Severity: Warning, Code: "alarmd", Source: "pbx",
			Text: "trunk 2 down", Details: []Detail{{"priority", "user.warning"}}},
	},
	{
		name: "Cisco: unsynchronised clock, message id as tag",
		msg:  "<189>*Nov 24 11:14:00.123: %SYS-5-CONFIG_I: Configured from console",
		want: Alarm{Time: time.Date(2026, 11, 24, 11, 14, 0, 123e6, time.UTC), Severity: Info, Code: "%SYS-5-CONFIG_I",
			Text: "Configured from console", Details: []Detail{{"priority", "local7.notice"}}},
	},
	{
		name: "3164 no time stamp",
		msg:  "<14>myapp: started",
		want: Alarm{Time: received, Severity: Info, Code: "myapp", Text: "started", Details: []Detail{{"priority", "user.info"}}},
	},
	{
		name: "3164 nothing but text",
		msg:  "<14>just some text",
		want: Alarm{Time: received, Severity: Info, Code: "syslog", Text: "just some text", Details: []Detail{{"priority", "user.info"}}},
	},
	{
		name: "3164 host, no tag",
		msg:  "<14>Nov 24 11:14:00 host just some text",
		want: Alarm{Time: time.Date(2026, 11, 24, 11, 14, 0, 0, time.UTC), Severity: Info, Code: "syslog", Source: "host",
			Text: "just some text", Details: []Detail{{"priority", "user.info"}}},
	},
	{
		name: "3164 not a time stamp",
		msg:  "<14>Nov 31 11:14:00 host app: x",
		want: Alarm{Time: received, Severity: Info, Code: "syslog", Text: "Nov 31 11:14:00 host app: x", Details: []Detail{{"priority", "user.info"}}},
	},
	{
		name: "3164 time stamp out of range is not a time stamp",
		msg:  "<14>0000-01-01T00:00:00+01:00 host app: x",
		want: Alarm{Time: received, Severity: Info, Code: "0000-01-01T00", Text: "00:00+01:00 host app: x", Details: []Detail{{"priority", "user.info"}}},
	},
	{
		name: "3164 Latin-1 text, control characters",
		msg:  "<13>Nov 24 11:14:00 h app: caf\xe9 \x1b[31mred\x00\n",
		want: Alarm{Time: time.Date(2026, 11, 24, 11, 14, 0, 0, time.UTC), Severity: Info, Code: "app", Source: "h",
			Text: "café [31mred", Details: []Detail{{"priority", "user.notice"}}},
	},
	{
		name: "leading zeros in PRI",
		msg:  "<013>x: y",
		want: Alarm{Time: received, Severity: Info, Code: "x", Text: "y", Details: []Detail{{"priority", "user.notice"}}},
	},

	{name: "empty", msg: "\r\n", err: "message is empty"},
	{name: "no PRI", msg: "hello", err: "priority: the message does not start with <PRI>"},
	{name: "PRI out of range", msg: "<192>x", err: `priority: "<192>" is not <0> to <191>`},
	{name: "PRI not a number", msg: "<1a>x", err: "priority:"},
	{name: "PRI unclosed", msg: "<13", err: "priority:"},
	{name: "PRI with sign", msg: "<+1>x", err: "priority:"},
	{name: "5424 bad time stamp", msg: "<13>1 yesterday host app - - - x", err: `timestamp: "yesterday" is not an RFC 3339 time`},
	{name: "5424 time stamp out of range", msg: "<13>1 9999-12-31T23:00:00-02:00 host app - - - x", err: "timestamp: \"9999-12-31T23:00:00-02:00\" is outside the years 0 to 9999"},
	{name: "5424 header cut short", msg: "<13>1 - host", err: "app-name: missing"},
	{name: "5424 two spaces", msg: "<13>1 -  host app - - - x", err: "hostname: empty"},
	{name: "SD not closed", msg: `<13>1 - h a - - [x@1 a="b"`, err: `structured data: element "x@1" is not closed by ]`},
	{name: "SD value without quotes", msg: `<13>1 - h a - - [x@1 a=b] m`, err: `element "x@1": a parameter is not name="value"`},
	{name: "SD value not closed", msg: `<13>1 - h a - - [x@1 a="b] m`, err: `the value of "a" has no closing quote`},
	{name: "SD without id", msg: `<13>1 - h a - - [ a="b"] m`, err: "element 1 has no SD-ID"},
	{name: "SD followed by junk", msg: `<13>1 - h a - - [x@1]junk`, err: `structured data: "junk" after the last element`},
}

func TestParseSyslog(t *testing.T) {
	for _, tt := range syslogTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSyslog([]byte(tt.msg), received)
			checkErr(t, err, tt.err)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "parse syslog: ") {
					t.Errorf("error %q does not say what failed", err)
				}
				return
			}
			mustValidate(t, got)
			got.Time = got.Time.UTC()
			if tt.want.Code != "" && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseSyslog(%q) =\n%#v\nwant\n%#v", tt.msg, got, tt.want)
			}
		})
	}
}

func TestSyslogLongPartsAreCut(t *testing.T) {
	msg := "<13>1 - " + strings.Repeat("h", 255) + " app - " + strings.Repeat("M", 80) + ` [x@1 v="` + strings.Repeat("v", 600) + `"] ` + strings.Repeat("é", MaxText)
	a, err := ParseSyslog([]byte(msg), received)
	if err != nil {
		t.Fatal(err)
	}
	mustValidate(t, a)
	if a.Code != strings.Repeat("M", MaxCode) {
		t.Errorf("code %q, want MSGID cut to %d bytes", a.Code, MaxCode)
	}
	if len(a.Source) > MaxSource || !strings.HasSuffix(a.Source, ellipsis) {
		t.Errorf("source %q is not cut with an ellipsis", a.Source)
	}
	if len(a.Text) > MaxText || !strings.HasSuffix(a.Text, "é"+ellipsis) {
		t.Errorf("text of %d bytes ends %q, want cut on a character with an ellipsis", len(a.Text), a.Text[len(a.Text)-8:])
	}
	last := a.Details[len(a.Details)-1]
	if last.Key != "x@1.v" || len(last.Key)+len(last.Value) != MaxDetail || !strings.HasSuffix(last.Value, ellipsis) {
		t.Errorf("detail %q of %d bytes, want it cut to %d", last.Key, len(last.Key)+len(last.Value), MaxDetail)
	}
}

func TestSyslogManyParametersCounted(t *testing.T) {
	a, err := ParseSyslog([]byte(`<13>1 - h app - - `+manySD(40)), received)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Details) != MaxDetails {
		t.Fatalf("%d details, want %d", len(a.Details), MaxDetails)
	}
	// priority + 40 parameters = 41; 31 kept, the 32nd says 10 more.
	if got, want := a.Details[MaxDetails-1], (Detail{omittedKey, "10 more details"}); got != want {
		t.Errorf("last detail %v, want %v", got, want)
	}
}

func TestSyslogYear(t *testing.T) {
	tests := []struct {
		received time.Time
		stamp    string
		want     time.Time
	}{
		{time.Date(2027, 1, 1, 0, 0, 10, 0, time.UTC), "Dec 31 23:59:59", time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)},
		{time.Date(2026, 12, 31, 23, 59, 50, 0, time.UTC), "Jan  1 00:00:05", time.Date(2027, 1, 1, 0, 0, 5, 0, time.UTC)},
		{time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), "Jan  1 00:00:05", time.Date(2026, 1, 1, 0, 0, 5, 0, time.UTC)},
		{time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC), "Feb 29 12:00:00", time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC)},
		{time.Date(2026, 6, 1, 0, 0, 0, 0, time.FixedZone("CEST", 7200)), "Jun  1 01:00:00", time.Date(2026, 5, 31, 23, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		a, err := ParseSyslog([]byte("<13>"+tt.stamp+" host app: x"), tt.received)
		if err != nil || !a.Time.Equal(tt.want) {
			t.Errorf("%q received %v: time %v, %v; want %v", tt.stamp, tt.received, a.Time, err, tt.want)
		}
	}
}

func TestSyslogSeverity(t *testing.T) {
	want := []Severity{Critical, Critical, Critical, Major, Warning, Info, Info, Info}
	for level, w := range want {
		a, err := ParseSyslog(fmt.Appendf(nil, "<%d>x: y", 3<<3|level), received)
		if err != nil || a.Severity != w {
			t.Errorf("level %d: %v, %v; want %v", level, a.Severity, err, w)
		}
	}
}

func FuzzParseSyslog(f *testing.F) {
	for _, tt := range syslogTests {
		f.Add([]byte(tt.msg))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		a, err := ParseSyslog(msg, received)
		if err == nil {
			mustValidate(t, a)
		}
	})
}
