package alarm

import (
	"strings"
	"testing"
)

func TestParseSeverity(t *testing.T) {
	for i, name := range severityNames {
		got, err := ParseSeverity(strings.ToUpper(name))
		if err != nil || got != Severity(i) {
			t.Errorf("ParseSeverity(%q) = %v, %v; want %v", name, got, err, Severity(i))
		}
	}
	if _, err := ParseSeverity("loud"); err == nil || !strings.Contains(err.Error(), `"loud"`) {
		t.Errorf("ParseSeverity(loud) = %v, want an error naming it", err)
	}
	if !(Critical > Major && Major > Minor && Minor > Warning && Warning > Info && Info > Cleared) {
		t.Error("severities are not ordered")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		a    Alarm
		want string
	}{
		{"ok", Alarm{Severity: Major, Code: "LINK-DOWN", Text: "port 3"}, ""},
		{"no code", Alarm{Severity: Major}, "code is empty"},
		{"code with newline", Alarm{Code: "A\nB"}, "control"},
		{"long text", Alarm{Code: "X", Text: strings.Repeat("x", MaxText+1)}, "text is longer"},
		{"bad utf8", Alarm{Code: "X", Text: "\xff"}, "UTF-8"},
		{"bad detail", Alarm{Code: "X", Details: []Detail{{Key: ""}}}, "detail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.a.Validate()
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseDetail(t *testing.T) {
	d, err := ParseDetail("port=3=a")
	if err != nil || d.Key != "port" || d.Value != "3=a" {
		t.Errorf("ParseDetail = %+v, %v", d, err)
	}
	if _, err := ParseDetail("novalue"); err == nil {
		t.Error("ParseDetail(novalue) succeeded")
	}
}

func TestCountsText(t *testing.T) {
	var c [Critical + 1]int
	if s := CountsText(c); s != "" {
		t.Errorf("no counts = %q, want empty", s)
	}
	c[Info], c[Major], c[Cleared] = 40, 3, 1
	if s, want := CountsText(c), "3 major, 40 info, 1 cleared"; s != want {
		t.Errorf("CountsText = %q, want %q", s, want)
	}
}
