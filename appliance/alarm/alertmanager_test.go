package alarm

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// amPayload wraps alerts (JSON) in a version 4 payload.
func amPayload(status, alerts string) string {
	return `{"version":"4","groupKey":"{}:{}","truncatedAlerts":0,"status":"` + status + `","receiver":"mail",
		"groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am:9093","alerts":[` + alerts + `]}`
}

func manyLabels(n int) string {
	var b strings.Builder
	b.WriteString(`"alertname":"Many"`)
	for i := range n {
		fmt.Fprintf(&b, `,"l%02d":"%d"`, i, i)
	}
	return b.String()
}

var alertmanagerTests = []struct {
	name string
	body string
	want []Alarm
	err  string
}{
	{
		name: "firing, as Alertmanager sends it",
		body: "testdata/alertmanager-firing.json",
		want: []Alarm{
			{
				Time: time.Date(2026, 11, 24, 10, 59, 30, 123456789, time.UTC), Severity: Critical, Code: "InstanceDown",
				Source: "gw-17:9100",
				Text:   "Instance gw-17:9100 down\n\ngw-17:9100 of job node has been down for more than 1 minute.",
				Details: []Detail{{"fingerprint", "b3e1c7a0e2f0d6c1"}, {"job", "node"},
					{"generatorURL", "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"}},
			},
			{
				Time: time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC), Severity: Critical, Code: "DiskFull",
				Source: "gw-17:9100", Text: "Disk almost full",
				Details: []Detail{{"fingerprint", "0f1e2d3c4b5a6978"}, {"device", "/dev/mmcblk0p2"}, {"job", "node"}, {"severity", "page"}},
			},
		},
	},
	{
		name: "resolved, with fields of newer versions",
		body: "testdata/alertmanager-resolved.json",
		want: []Alarm{{
			Time: time.Date(2026, 11, 24, 11, 10, 0, 0, time.UTC), Severity: Cleared, Code: "InstanceDown",
			Source: "gw-17:9100",
			Text:   "Instance gw-17:9100 down\n\ngw-17:9100 of job node has been down for more than 1 minute.",
			Details: []Detail{{"fingerprint", "b3e1c7a0e2f0d6c1"}, {"job", "node"}, {"severity", "critical"},
				{"generatorURL", "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"}},
		}},
	},
	{
		name: "the group's status when the alert has none; job as source; description alone",
		body: amPayload("resolved", `{"labels":{"alertname":"X","job":"snmp","severity":"Warning"},"annotations":{"description":"d"},"startsAt":"2026-11-24T10:00:00Z"}`),
		want: []Alarm{{Time: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), Severity: Cleared, Code: "X", Source: "snmp", Text: "d",
			Details: []Detail{{"severity", "Warning"}}}},
	},
	{
		name: "severities",
		body: amPayload("firing", `{"status":"firing","labels":{"alertname":"A","severity":"error"}},
			{"status":"firing","labels":{"alertname":"B","severity":"MINOR"}},
			{"status":"firing","labels":{"alertname":"C","severity":"info"}},
			{"status":"firing","labels":{"alertname":"D","severity":"high"}},
			{"status":"firing","labels":{"alertname":"E"}},
			{"status":"firing","labels":{"alertname":"F","severity":"cleared"}},
			{"status":"firing","labels":{"alertname":"G","severity":"warn"}}`),
		want: []Alarm{
			{Time: testNow, Severity: Major, Code: "A", Details: []Detail{{"severity", "error"}}},
			{Time: testNow, Severity: Minor, Code: "B"},
			{Time: testNow, Severity: Info, Code: "C"},
			{Time: testNow, Severity: Warning, Code: "D", Details: []Detail{{"severity", "high"}}},
			{Time: testNow, Severity: Warning, Code: "E"},
			{Time: testNow, Severity: Warning, Code: "F", Details: []Detail{{"severity", "cleared"}}},
			{Time: testNow, Severity: Warning, Code: "G", Details: []Detail{{"severity", "warn"}}},
		},
	},
	{
		name: "names that are not codes; message annotation; summary equal to description",
		body: amPayload("firing", `{"status":"firing","labels":{"alertname":"High CPU\nload"},"annotations":{"message":"m"}},
			{"status":"firing","labels":{},"annotations":{"summary":"s","description":"s"}},
			{"status":"firing","labels":{"alertname":"`+strings.Repeat("A", 70)+`"}}`),
		want: []Alarm{
			{Time: testNow, Severity: Warning, Code: "High_CPU_load", Text: "m"},
			{Time: testNow, Severity: Warning, Code: "alertmanager", Text: "s"},
			{Time: testNow, Severity: Warning, Code: strings.Repeat("A", MaxCode)},
		},
	},
	{
		name: "truncated alerts said on each alarm; null maps",
		body: `{"version":"4","status":"firing","truncatedAlerts":7,"alerts":[{"status":"firing","labels":{"alertname":"X"},"annotations":null}]}`,
		want: []Alarm{{Time: testNow, Severity: Warning, Code: "X", Details: []Detail{{"truncatedAlerts", "7"}}}},
	},
	{
		name: "too many labels: cut and counted, not refused",
		body: amPayload("firing", `{"status":"firing","labels":{`+manyLabels(40)+`},"fingerprint":"f"}`),
		want: []Alarm{{Time: testNow, Severity: Warning, Code: "Many", Details: func() []Detail {
			d := []Detail{{"fingerprint", "f"}}
			for i := range MaxDetails - 2 {
				d = append(d, Detail{fmt.Sprintf("l%02d", i), fmt.Sprint(i)})
			}
			return append(d, Detail{omittedKey, "10 more details"})
		}()}},
	},
	{
		name: "long values cut",
		body: amPayload("firing", `{"status":"firing","labels":{"alertname":"X","instance":"`+strings.Repeat("i", 300)+`","k":"`+strings.Repeat("v", 600)+`"},
			"annotations":{"summary":"`+strings.Repeat("s", MaxText+1)+`"}}`),
	},
	{name: "no alerts", body: amPayload("firing", ""), want: []Alarm{}},

	{name: "empty", body: "", err: "body is empty"},
	{name: "not json", body: "{", err: "body is not JSON"},
	{name: "an array", body: "[]", err: "body: not an object"},
	{name: "no version", body: `{"status":"firing","alerts":[]}`, err: `version: missing (Alertmanager sends "4")`},
	{name: "version 3", body: `{"version":"3","status":"firing","alerts":[]}`, err: `version: "3" is not "4"`},
	{name: "version a number", body: `{"version":4,"status":"firing","alerts":[]}`, err: "version: not a string"},
	{name: "bad group status", body: amPayload("burning", ""), err: `status: "burning" is not firing or resolved`},
	{name: "no alerts field", body: `{"version":"4","status":"firing"}`, err: "alerts: missing"},
	{name: "alerts an object", body: `{"version":"4","status":"firing","alerts":{}}`, err: "alerts: not an array"},
	{name: "truncatedAlerts negative", body: `{"version":"4","status":"firing","truncatedAlerts":-1,"alerts":[]}`, err: "truncatedAlerts: not a count"},
	{name: "alert not an object", body: amPayload("firing", `{"status":"firing"},3`), err: "alerts[1]: not an object"},
	{name: "bad alert status", body: amPayload("firing", `{"status":"firing"},{"status":"pending"}`), err: `alerts[1].status: "pending" is not firing or resolved`},
	{name: "no status anywhere", body: `{"version":"4","alerts":[{"labels":{"alertname":"X"}}]}`, err: "alerts[0].status: missing"},
	{name: "label not a string", body: amPayload("firing", `{"status":"firing","labels":{"alertname":"X","severity":3}}`), err: "alerts[0].labels.severity: not a string"},
	{name: "annotations a list", body: amPayload("firing", `{"status":"firing","annotations":["x"]}`), err: "alerts[0].annotations: not an object"},
	{name: "bad startsAt", body: amPayload("firing", `{"status":"firing"},{"status":"firing"},{"status":"firing","startsAt":"now"}`), err: `alerts[2].startsAt: "now" is not an RFC 3339 time`},
	{name: "startsAt out of range", body: amPayload("firing", `{"status":"firing","startsAt":"10000-01-01T00:00:00Z"}`), err: `alerts[0].startsAt: "10000-01-01T00:00:00Z" is not an RFC 3339 time`},
	{name: "bad endsAt", body: amPayload("resolved", `{"status":"resolved","endsAt":17}`), err: "alerts[0].endsAt: not a string"},
	{name: "fingerprint a number", body: amPayload("firing", `{"status":"firing","fingerprint":1}`), err: "alerts[0].fingerprint: not a string"},
}

// amBody returns body, or the file it names in testdata.
func amBody(t testing.TB, body string) string {
	t.Helper()
	if strings.HasPrefix(body, "testdata/") {
		b, err := os.ReadFile(body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return body
}

func TestParseAlertmanager(t *testing.T) {
	for _, tt := range alertmanagerTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAlertmanager(strings.NewReader(amBody(t, tt.body)), testNow)
			checkErr(t, err, tt.err)
			mustValidate(t, got...)
			if tt.want != nil && !reflect.DeepEqual(inUTC(got), tt.want) {
				t.Errorf("got\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

func TestAlertmanagerLongValuesCut(t *testing.T) {
	body := amPayload("firing", `{"status":"firing","labels":{"alertname":"X","instance":"`+strings.Repeat("i", 300)+`","k":"`+strings.Repeat("v", 600)+`"},
			"annotations":{"summary":"`+strings.Repeat("s", MaxText+1)+`"}}`)
	as, err := parseAlertmanager(strings.NewReader(body), testNow)
	if err != nil {
		t.Fatal(err)
	}
	a := as[0]
	if len(a.Source) != MaxSource || !strings.HasSuffix(a.Source, ellipsis) {
		t.Errorf("source of %d bytes %q, want cut to %d with an ellipsis", len(a.Source), a.Source, MaxSource)
	}
	if len(a.Text) != MaxText || !strings.HasSuffix(a.Text, ellipsis) {
		t.Errorf("text of %d bytes, want cut to %d with an ellipsis", len(a.Text), MaxText)
	}
	if d := a.Details[0]; d.Key != "k" || len(d.Key)+len(d.Value) != MaxDetail {
		t.Errorf("detail %q of %d bytes, want cut to %d", d.Key, len(d.Key)+len(d.Value), MaxDetail)
	}
}

func TestParseAlertmanagerBodyLimit(t *testing.T) {
	body := amPayload("firing", `{"status":"firing","labels":{"alertname":"X"}}`)
	pad := strings.Repeat(" ", MaxAlertmanagerBody-len(body))
	if as, err := ParseAlertmanager(strings.NewReader(body + pad)); err != nil || len(as) != 1 {
		t.Errorf("body of MaxAlertmanagerBody bytes: %v", err)
	}
	_, err := ParseAlertmanager(strings.NewReader(body + pad + " "))
	if !errors.Is(err, ErrTooLarge) || !strings.HasPrefix(err.Error(), "parse alertmanager payload: ") {
		t.Errorf("body of MaxAlertmanagerBody+1 bytes: %v, want ErrTooLarge", err)
	}
}

func FuzzParseAlertmanager(f *testing.F) {
	for _, tt := range alertmanagerTests {
		f.Add([]byte(amBody(f, tt.body)))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		as, err := parseAlertmanager(strings.NewReader(string(body)), testNow)
		if err != nil && len(as) > 0 {
			t.Fatal("alarms and an error")
		}
		mustValidate(t, as...)
	})
}
