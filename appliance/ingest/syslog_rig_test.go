//go:build rig

package ingest

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"mailagent/appliance/alarm"
)

// TestSyslogRealLogger sends with util-linux logger (Debian: bsdutils), as
// an admin tries the listener, over UDP and TCP in both formats and both
// TCP framings.
func TestSyslogRealLogger(t *testing.T) {
	bin, err := exec.LookPath("logger")
	if err != nil {
		t.Fatalf("util-linux logger is needed (apt-get install bsdutils): %v", err)
	}
	sink := new(fakeSink)
	s, _ := newSyslogForTest(t, SyslogOptions{MinSeverity: alarm.Warning, Sink: sink.take})
	udp, tcp := s.Addrs()
	port := func(a net.Addr) string {
		_, p, _ := net.SplitHostPort(a.String())
		return p
	}
	tests := []struct {
		name string
		args []string
		want want
	}{
		{"udp rfc3164", []string{"--rfc3164", "-d", "-P", port(udp), "-p", "daemon.err", "-t", "pbx"},
			want{sev: alarm.Major, code: "pbx", detail: "priority=daemon.err"}},
		{"udp rfc5424", []string{"--rfc5424", "-d", "-P", port(udp), "-p", "local0.crit", "-t", "pbx", "--msgid", "TRUNK-DOWN"},
			want{sev: alarm.Critical, code: "TRUNK-DOWN", detail: "app=pbx"}},
		{"tcp rfc3164", []string{"--rfc3164", "-T", "-P", port(tcp), "-p", "user.warning", "-t", "gw"},
			want{sev: alarm.Warning, code: "gw", detail: "priority=user.warning"}},
		{"tcp rfc5424", []string{"--rfc5424", "-T", "-P", port(tcp), "-p", "daemon.alert", "-t", "gw", "--sd-id", "port@32473", "--sd-param", `n="3"`},
			want{sev: alarm.Critical, code: "gw", detail: "port@32473.n=3"}},
		{"tcp rfc3164 octet-count", []string{"--rfc3164", "-T", "--octet-count", "-P", port(tcp), "-p", "daemon.err", "-t", "gw"},
			want{sev: alarm.Major, code: "gw", detail: "priority=daemon.err"}},
		{"tcp rfc5424 octet-count", []string{"--rfc5424", "-T", "--octet-count", "-P", port(tcp), "-p", "daemon.err", "-t", "gw"},
			want{sev: alarm.Major, code: "gw", detail: "priority=daemon.err"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "logger test " + strconv.Itoa(i) + ": ümlaut and \"quotes\""
			args := append([]string{"-n", "127.0.0.1"}, tt.args...)
			out, err := exec.Command(bin, append(args, text)...).CombinedOutput()
			if err != nil {
				t.Fatalf("logger %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			// Below min_severity: counted, not taken.
			quiet := append([]string{"-n", "127.0.0.1"}, tt.args...)
			for j, a := range quiet {
				if a == "-p" {
					quiet[j+1] = "daemon.info"
				}
			}
			if out, err := exec.Command(bin, append(quiet, "not for mail")...).CombinedOutput(); err != nil {
				t.Fatalf("logger: %v\n%s", err, out)
			}
			st := waitStats(t, s, "the messages", func(st SyslogStats) bool {
				return st.Accepted == uint64(i+1) && st.Ignored == uint64(i+1)
			})
			if st.Malformed != 0 || st.Refused != 0 {
				t.Errorf("stats = %+v", st)
			}
			got := sink.alarms()[i]
			tt.want.text = text
			tt.want.source = got.Source
			check(t, got, tt.want)
			if got.Source == "" || got.Source == "127.0.0.1" {
				t.Errorf("source = %q, want the host name logger sends", got.Source)
			}
		})
	}
}
