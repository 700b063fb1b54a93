package alarm

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

var formTests = []struct {
	name  string
	query string
	want  Alarm
	err   string
}{
	{
		name:  "minimal",
		query: "severity=minor&code=DISK",
		want:  Alarm{Time: testNow, Severity: Minor, Code: "DISK"},
	},
	{
		name:  "every field, details in order",
		query: "severity=major&code=LINK-DOWN&source=port+3&text=no+carrier%0D%0Asince+boot&time=2026-05-01T12:00:00Z&detail=speed%3D1000&detail=duplex=full=yes",
		want: Alarm{Time: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), Severity: Major, Code: "LINK-DOWN",
			Source: "port 3", Text: "no carrier\nsince boot", Details: []Detail{{"speed", "1000"}, {"duplex", "full=yes"}}},
	},
	{
		name:  "bytes that are not UTF-8",
		query: "severity=info&code=X&text=caf%E9&source=%FF",
		want:  Alarm{Time: testNow, Severity: Info, Code: "X", Text: "caf\uFFFD", Source: "\uFFFD"},
	},
	{name: "empty", query: "", err: "severity: missing"},
	{name: "unknown field", query: "severity=info&code=X&colour=red", err: `unknown field "colour"`},
	{name: "two codes", query: "severity=info&code=X&code=Y", err: "code: given 2 times"},
	{name: "bad severity", query: "severity=loud&code=X", err: `severity: "loud" is not one of`},
	{name: "no code", query: "severity=info", err: "code: missing"},
	{name: "code not UTF-8", query: "severity=info&code=%FF", err: "code: not valid UTF-8"},
	{name: "code with control character", query: "severity=info&code=A%0AB", err: "code: \"A\\nB\" contains spaces or control characters"},
	{name: "bad time", query: "severity=info&code=X&time=now", err: `time: "now" is not an RFC 3339 time`},
	{name: "detail without =", query: "severity=info&code=X&detail=port", err: `detail: "port" is not key=value`},
	{name: "detail too long", query: "severity=info&code=X&detail=k=" + strings.Repeat("v", MaxDetail), err: "detail: \"k\" is longer than 512 bytes"},
	{name: "too many details", query: "severity=info&code=X" + strings.Repeat("&detail=k=v", MaxDetails+1), err: "detail: more than 32 details"},
	{name: "text too long", query: "severity=info&code=X&text=" + strings.Repeat("t", MaxText+1), err: "text: longer than 4096 bytes"},
}

func TestParseForm(t *testing.T) {
	for _, tt := range formTests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseForm(v, testNow)
			checkErr(t, err, tt.err)
			if err != nil {
				return
			}
			mustValidate(t, got)
			got.Time = got.Time.UTC()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseForm(%q) =\n%+v\nwant\n%+v", tt.query, got, tt.want)
			}
		})
	}
}

func TestParseFormWrapsErrors(t *testing.T) {
	_, err := ParseForm(url.Values{"code": {"X"}})
	if err == nil || err.Error() != "parse alarm form: severity: missing" {
		t.Errorf("ParseForm = %v", err)
	}
}

func FuzzParseForm(f *testing.F) {
	for _, tt := range formTests {
		f.Add(tt.query)
	}
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		a, err := parseForm(v, testNow)
		if err == nil {
			mustValidate(t, a)
		}
	})
}
