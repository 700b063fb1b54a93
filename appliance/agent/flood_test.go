package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/config"
	"mailagent/board"
)

// TestSyslogFloodKeepsAuthenticatedAlarms: 500 spoofed syslog criticals a
// second pushed the real alarms out of the 50-entry spool (only their
// counts survived) and wrote 388 MB. Now a full spool of alarms raised
// with "mailagent alarm" survives a flood of 2,000 criticals through the
// sink syslog is given, and the flood reaches flash at most
// syslogFlashesPerMinute times, in a spool of its own.
func TestSyslogFloodKeepsAuthenticatedAlarms(t *testing.T) {
	data := t.TempDir()
	doc := fmt.Sprintf(`[mail]
from = "alarm@example.test"
to = ["ops@example.test"]
[smtp]
host = "127.0.0.1"
port = %d
tls = "none"
[syslog]
listen_udp = "127.0.0.1:0"
`, closedPort(t))
	if err := os.WriteFile(filepath.Join(data, config.FileName), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Board: board.Profile{Name: "host"}, DataDir: data, Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	runForTest(t, a) // digest window 30 s: nothing is delivered meanwhile
	var raised []string
	for i := range 50 { // the spool's 50 entries
		code := fmt.Sprintf("AUTH-%d", i)
		if spooled, err := a.Raise(context.Background(), alarm.Alarm{Time: time.Now(), Severity: alarm.Major, Code: code}); err != nil || spooled {
			t.Fatalf("Raise %s = %v, %v; want taken by the agent", code, spooled, err)
		}
		raised = append(raised, code)
	}
	for i := range 2000 {
		al := alarm.Alarm{Time: time.Now(), Severity: alarm.Critical, Code: fmt.Sprintf("SPOOF-%d", i), Source: "10.0.0.66"}
		if err := a.acceptUnauthenticated(context.Background(), al); err != nil {
			t.Fatalf("syslog alarm %d: %v", i, err)
		}
	}
	q, err := a.Queue()
	if err != nil {
		t.Fatal(err)
	}
	onFlash := map[string]bool{}
	spoofed := 0
	for _, al := range q.Spooled {
		onFlash[al.Code] = true
		if strings.HasPrefix(al.Code, "SPOOF-") {
			spoofed++
		}
	}
	for _, code := range raised {
		if !onFlash[code] {
			t.Errorf("authenticated alarm %s was pushed off flash by the flood", code)
		}
	}
	if spoofed > syslogFlashesPerMinute {
		t.Errorf("%d alarms of the flood on flash, want at most %d (a minute's budget)", spoofed, syslogFlashesPerMinute)
	}
	files, _ := filepath.Glob(filepath.Join(a.SyslogSpoolDir(), "*.alarm"))
	main, _ := filepath.Glob(filepath.Join(a.SpoolDir(), "*.alarm"))
	if len(files) != spoofed || len(main) != len(raised) {
		t.Errorf("spool files: %d in %s, %d in %s; want the flood's %d apart from the %d authenticated",
			len(files), a.SyslogSpoolDir(), len(main), a.SpoolDir(), spoofed, len(raised))
	}
}

// closedPort is a port on 127.0.0.1 nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
