//go:build rig

package main

import (
	"bytes"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailagent/appliance/testrig"
)

// waitBody waits for a mail to "to" whose decoded body contains every want.
func waitBody(t *testing.T, rig *testrig.Rig, to string, want ...string) string {
	t.Helper()
	var last string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		for _, raw := range rig.Mails(t) {
			m, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil || !strings.Contains(m.Header.Get("To"), to) {
				continue
			}
			b, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
			body := m.Header.Get("Subject") + "\n" + string(b)
			last = body
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(body, w)
			}
			if ok {
				return body
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no mail to %s with %q arrived; last one:\n%s", to, want, last)
	return ""
}

// TestEveryWayIn delivers alarms through the real Postfix from every way
// in: HTTP (JSON and form), syslog over UDP and TCP sent by util-linux
// logger in both formats, and a real Prometheus Alertmanager firing and
// resolving an alert.
func TestEveryWayIn(t *testing.T) {
	rig := testrig.Start(t)
	data := t.TempDir()
	httpPort, udpPort, tcpPort := freePort(t, "tcp"), freePort(t, "udp"), freePort(t, "tcp")
	for k, v := range map[string]string{
		"device.name": "gw-ways", "mail.from": rig.User, "mail.to": "ops-ways@example.test",
		"smtp.host": rig.Host, "smtp.port": strconv.Itoa(rig.SubmissionPort), "smtp.ca_file": rig.CAFile,
		"smtp.user": rig.User, "smtp.password": rig.Password,
		"alarms.digest_window": "0s", "alarms.min_severity": "info",
		"http.listen": fmt.Sprintf("127.0.0.1:%d", httpPort), "http.alarm_user": "poster", "http.alarm_password": "poster-password",
		"syslog.listen_udp": fmt.Sprintf("127.0.0.1:%d", udpPort), "syslog.listen_tcp": fmt.Sprintf("127.0.0.1:%d", tcpPort),
		"syslog.min_severity": "warning",
	} {
		mustRun(t, nil, "--data", data, "config", "set", k, v)
	}
	startAgent(t, data)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)

	post := func(path, ctype, body string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req.SetBasicAuth("poster", "poster-password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %s %s", path, resp.Status, b)
		}
	}
	t.Run("http json", func(t *testing.T) {
		post("/alarm", "application/json", `{"severity":"major","code":"HTTP-JSON","source":"peer-box","text":"posted as JSON","details":{"port":"7"}}`)
		waitBody(t, rig, "ops-ways", "MAJOR HTTP-JSON from peer-box", "posted as JSON", "port: 7")
	})
	t.Run("http form", func(t *testing.T) {
		post("/alarm", "application/x-www-form-urlencoded", url.Values{"severity": {"minor"}, "code": {"HTTP-FORM"}, "text": {"posted as a form"}}.Encode())
		waitBody(t, rig, "ops-ways", "MINOR HTTP-FORM", "posted as a form")
	})
	logger := func(t *testing.T, args ...string) {
		t.Helper()
		out, err := exec.Command("logger", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("logger %v: %v\n%s", args, err, out)
		}
	}
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"syslog udp rfc3164", []string{"--rfc3164", "-d", "-P", strconv.Itoa(udpPort)}},
		{"syslog udp rfc5424", []string{"--rfc5424", "-d", "-P", strconv.Itoa(udpPort)}},
		{"syslog tcp rfc3164", []string{"--rfc3164", "-T", "-P", strconv.Itoa(tcpPort)}},
		{"syslog tcp rfc5424", []string{"--rfc5424", "--octet-count", "-T", "-P", strconv.Itoa(tcpPort)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tag := strings.ReplaceAll(tt.name, " ", "-")
			args := append([]string{"-n", "127.0.0.1", "-p", "daemon.err", "-t", tag}, tt.args...)
			logger(t, append(args, "disk "+tag+" failing")...)
			logger(t, append([]string{"-n", "127.0.0.1", "-p", "daemon.info", "-t", tag + "-quiet"}, append(tt.args, "below the threshold")...)...)
			waitBody(t, rig, "ops-ways", "MAJOR "+tag, "disk "+tag+" failing")
		})
	}
	for _, raw := range rig.Mails(t) {
		if bytes.Contains(raw, []byte("below the threshold")) {
			t.Error("a syslog message below syslog.min_severity was mailed")
		}
	}
	t.Run("alertmanager", func(t *testing.T) {
		amPort := freePort(t, "tcp")
		dir := t.TempDir()
		cfg := fmt.Sprintf(`route:
  receiver: mailagent
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: mailagent
    webhook_configs:
      - url: %s/alertmanager
        send_resolved: true
        http_config:
          basic_auth:
            username: poster
            password: poster-password
`, base)
		if err := os.WriteFile(filepath.Join(dir, "am.yml"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		am := exec.Command("prometheus-alertmanager", "--config.file="+filepath.Join(dir, "am.yml"), "--storage.path="+dir,
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", amPort), "--cluster.listen-address=")
		var amLog syncBuffer
		am.Stdout, am.Stderr = &amLog, &amLog
		if err := am.Start(); err != nil {
			t.Fatalf("start Alertmanager: %v", err)
		}
		t.Cleanup(func() {
			am.Process.Kill()
			am.Wait()
			if t.Failed() {
				t.Logf("Alertmanager log:\n%s", amLog.String())
			}
		})
		amURL := fmt.Sprintf("http://127.0.0.1:%d/api/v2/alerts", amPort)
		alert := func(ends time.Time) {
			body := fmt.Sprintf(`[{"labels":{"alertname":"DiskFull","severity":"critical","instance":"nas-3"},`+
				`"annotations":{"summary":"disk full on nas-3"},"startsAt":%q,"endsAt":%q}]`,
				time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), ends.UTC().Format(time.RFC3339))
			deadline := time.Now().Add(30 * time.Second)
			for {
				resp, err := http.Post(amURL, "application/json", strings.NewReader(body))
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						return
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("Alertmanager does not take the alert: %v\n%s", err, amLog.String())
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		alert(time.Now().Add(time.Hour))
		waitBody(t, rig, "ops-ways", "CRITICAL DiskFull from nas-3", "disk full on nas-3")
		alert(time.Now().Add(-time.Second)) // resolved
		waitBody(t, rig, "ops-ways", "CLEARED DiskFull")
	})
}
