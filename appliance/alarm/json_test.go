package alarm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// testNow is the clock of the parser tests.
var testNow = time.Date(2026, 11, 24, 11, 14, 30, 0, time.UTC)

// mustValidate fails the test for an alarm a parser should not have made.
func mustValidate(t testing.TB, as ...Alarm) {
	t.Helper()
	for i, a := range as {
		if err := a.Validate(); err != nil {
			t.Fatalf("alarm %d %+v does not validate: %v", i, a, err)
		}
		// What a parser returns must survive the spool and the socket.
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("alarm %d %+v cannot be written as JSON: %v", i, a, err)
		}
		var back Alarm
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("alarm %d %s cannot be read back: %v", i, b, err)
		}
		if !back.Time.Equal(a.Time) || back.Severity != a.Severity || back.Code != a.Code ||
			back.Source != a.Source || back.Text != a.Text || !slices.Equal(back.Details, a.Details) {
			t.Fatalf("alarm %d %+v read back as %+v", i, a, back)
		}
	}
}

// checkErr fails unless err is nil and want is "", or err contains want.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("error %v, want none", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q, want one containing %q", err, want)
	}
}

// inUTC returns the alarms with their times in UTC, to compare them.
func inUTC(as []Alarm) []Alarm {
	for i := range as {
		as[i].Time = as[i].Time.UTC()
	}
	return as
}

func manyJSONDetails(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%02d":"v"`, i)
	}
	return "{" + b.String() + "}"
}

var jsonTests = []struct {
	name string
	body string
	want []Alarm
	err  string
}{
	{
		name: "minimal",
		body: `{"severity":"major","code":"LINK-DOWN"}`,
		want: []Alarm{{Time: testNow, Severity: Major, Code: "LINK-DOWN"}},
	},
	{
		name: "every field, details in body order",
		body: `{"time":"2026-05-01T14:00:00.5+02:00","severity":"Critical","code":"FAN","source":"board 1",
			"text":"fan 2 stopped","details":{"rpm":"0","fan":"2"}}`,
		want: []Alarm{{
			Time: time.Date(2026, 5, 1, 12, 0, 0, 5e8, time.UTC), Severity: Critical, Code: "FAN",
			Source: "board 1", Text: "fan 2 stopped",
			Details: []Detail{{"rpm", "0"}, {"fan", "2"}},
		}},
	},
	{
		name: "array, details as a list",
		body: `[{"severity":"cleared","code":"FAN"},
			{"severity":"info","code":"BOOT","details":[{"key":"version","value":"1.2"},{"key":"slot"}],"time":null}]`,
		want: []Alarm{
			{Time: testNow, Severity: Cleared, Code: "FAN"},
			{Time: testNow, Severity: Info, Code: "BOOT", Details: []Detail{{"version", "1.2"}, {"slot", ""}}},
		},
	},
	{
		name: "control characters: text keeps lines and tabs, source and details one line",
		body: `{"severity":"warning","code":"X","source":"a\nb\u0000","text":"line 1\r\n\tline 2\u001b[0m\r\n",
			"details":{"k\n":"v\r\nw"}}`,
		want: []Alarm{{Time: testNow, Severity: Warning, Code: "X", Source: "a b",
			Text: "line 1\n\tline 2[0m", Details: []Detail{{"k", "v  w"}}}},
	},
	{name: "code at the limit", body: `{"severity":"info","code":"` + strings.Repeat("C", MaxCode) + `"}`,
		want: []Alarm{{Time: testNow, Severity: Info, Code: strings.Repeat("C", MaxCode)}}},
	{name: "max details", body: `{"severity":"info","code":"X","details":` + manyJSONDetails(MaxDetails) + `}`},

	{name: "empty body", body: " ", err: "body is empty"},
	{name: "not json", body: `{"severity":`, err: "body is not JSON"},
	{name: "a number", body: `42`, err: "not a JSON object or array"},
	{name: "two values", body: `{"severity":"info","code":"X"} {}`, err: "data after the JSON value"},
	{name: "empty array", body: `[]`, err: "holds no alarm"},
	{name: "array of numbers", body: `[1]`, err: "[0]: not an object"},
	{name: "unknown field", body: `{"severity":"info","code":"X","colour":"red"}`, err: `unknown field "colour"`},
	{name: "field names are lower case", body: `{"Severity":"info","code":"X"}`, err: `unknown field "Severity"`},
	{name: "unknown field in the second alarm", body: `[{"severity":"info","code":"X"},{"sev":"info"}]`, err: `[1]: unknown field "sev"`},
	{name: "no severity", body: `{"code":"X"}`, err: "severity: missing"},
	{name: "bad severity", body: `{"severity":"loud","code":"X"}`, err: `severity: "loud" is not one of cleared, info`},
	{name: "severity a number", body: `{"severity":3,"code":"X"}`, err: "severity: not a string"},
	{name: "no code", body: `{"severity":"info"}`, err: "code: missing"},
	{name: "code with a space", body: `{"severity":"info","code":"LINK DOWN"}`, err: `code: "LINK DOWN" contains spaces`},
	{name: "code too long", body: `{"severity":"info","code":"` + strings.Repeat("C", MaxCode+1) + `"}`, err: "code: longer than 64 bytes"},
	{name: "source too long", body: `{"severity":"info","code":"X","source":"` + strings.Repeat("s", MaxSource+1) + `"}`, err: "source: longer than"},
	{name: "text too long", body: `{"severity":"info","code":"X","text":"` + strings.Repeat("t", MaxText+1) + `"}`, err: "text: longer than"},
	{name: "bad time", body: `{"severity":"info","code":"X","time":"yesterday"}`, err: `time: "yesterday" is not an RFC 3339 time`},
	{name: "time out of range", body: `{"severity":"info","code":"X","time":"0000-01-01T00:00:00+01:00"}`, err: `time: "0000-01-01T00:00:00+01:00" is outside the years 0 to 9999`},
	{name: "Go's zero time is unset", body: `{"severity":"info","code":"X","time":"0001-01-01T00:00:00Z"}`,
		want: []Alarm{{Time: testNow, Severity: Info, Code: "X"}}},
	{name: "time in the second alarm", body: `[{"severity":"info","code":"X"},{"severity":"info","code":"X","time":"12:00"}]`, err: `[1].time: "12:00"`},
	{name: "detail not a string", body: `{"severity":"info","code":"X","details":{"port":3}}`, err: "details.port: not a string"},
	{name: "details a string", body: `{"severity":"info","code":"X","details":"port=3"}`, err: "details: not an object or an array"},
	{name: "detail without key", body: `{"severity":"info","code":"X","details":[{"value":"3"}]}`, err: "details[0]: key is empty"},
	{name: "detail with unknown field", body: `{"severity":"info","code":"X","details":[{"key":"a","val":"3"}]}`, err: `details[0]: unknown field "val"`},
	{name: "detail too long", body: `{"severity":"info","code":"X","details":{"k":"` + strings.Repeat("v", MaxDetail) + `"}}`, err: `details.k: "k" is longer than 512 bytes`},
	{name: "too many details", body: `{"severity":"info","code":"X","details":` + manyJSONDetails(MaxDetails+1) + `}`, err: "more than 32 details"},
}

func TestParseJSON(t *testing.T) {
	for _, tt := range jsonTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseJSON(strings.NewReader(tt.body), testNow)
			checkErr(t, err, tt.err)
			mustValidate(t, got...)
			if tt.want != nil && !reflect.DeepEqual(inUTC(got), tt.want) {
				t.Errorf("parseJSON(%q) =\n%+v\nwant\n%+v", tt.body, got, tt.want)
			}
		})
	}
}

func TestParseJSONWrapsErrors(t *testing.T) {
	_, err := ParseJSON(strings.NewReader(`{"code":"X"}`))
	if err == nil || err.Error() != "parse alarm json: severity: missing" {
		t.Errorf("ParseJSON = %v", err)
	}
	as, err := ParseJSON(strings.NewReader(`{"severity":"info","code":"X"}`))
	if err != nil || len(as) != 1 || time.Since(as[0].Time).Abs() > time.Hour {
		t.Errorf("ParseJSON = %+v, %v; want one alarm of now", as, err)
	}
}

func TestParseJSONBodyLimit(t *testing.T) {
	pad := func(n int) string {
		body := `{"severity":"info","code":"X"}`
		return body + strings.Repeat(" ", n-len(body))
	}
	if _, err := parseJSON(strings.NewReader(pad(MaxJSONBody)), testNow); err != nil {
		t.Errorf("body of MaxJSONBody bytes: %v", err)
	}
	_, err := parseJSON(strings.NewReader(pad(MaxJSONBody+1)), testNow)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("body of MaxJSONBody+1 bytes: %v, want ErrTooLarge", err)
	}
	_, err = parseJSON(&errReader{}, testNow)
	if err == nil || !strings.Contains(err.Error(), "read body: connection reset") {
		t.Errorf("failing reader: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func FuzzParseJSON(f *testing.F) {
	for _, tt := range jsonTests {
		f.Add([]byte(tt.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		as, err := parseJSON(bytes.NewReader(body), testNow)
		if err == nil && len(as) == 0 {
			t.Fatal("no alarm and no error")
		}
		if err != nil && len(as) > 0 {
			t.Fatal("alarms and an error")
		}
		mustValidate(t, as...)
	})
}
