package console

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal: the master, which the test drives as a
// technician's terminal program would, and the slave's path, which
// go.bug.st/serial opens as the box's serial port.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("ptsname: %v", err)
	}
	return m, "/dev/pts/" + strconv.Itoa(n)
}

func TestServeOnASerialPort(t *testing.T) {
	master, port := openPTY(t)
	f := newFixture(t)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		Serve(ctx, port, 115200, f.o, slog.New(slog.NewTextHandler(&logs, nil)))
		close(served)
	}()
	var screen syncBuffer
	go io.Copy(&screen, master)
	typeIn := func(s string) {
		if _, err := master.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}

	waitFor(t, &screen, "mailagent> ", 1)
	typeIn("set mail.from alarm@example.test\r")
	waitFor(t, &screen, "mailagent> ", 2)
	typeIn("commit\r")
	waitFor(t, &screen, "mailagent> ", 3)
	typeIn("exit\r")
	waitFor(t, &screen, "press Enter for a new one", 1)
	typeIn("\r")
	waitFor(t, &screen, "type help for the commands", 2)

	out := screen.String()
	wantIn(t, out, "console on board host (serial port "+port+")\r\n",
		"mailagent> set mail.from alarm@example.test\r\nok: mail.from = alarm@example.test; commit saves it\r\n",
		"ok: 1 change saved")
	if strings.Contains(strings.ReplaceAll(out, "\r\n", ""), "\n") || strings.Count(out, "set mail.from") != 1 {
		t.Errorf("the serial line got a bare LF, or a double echo:\n%q", out)
	}
	if file, _ := f.saved(t); file.Config.Mail.From != "alarm@example.test" {
		t.Errorf("mail.from = %q", file.Config.Mail.From)
	}
	cancel()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return when its context ended")
	}
	wantIn(t, logs.String(), "console: serving")
}

func TestServeWithoutThePort(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	Serve(ctx, t.TempDir()+"/ttyS9", 115200, f.o, slog.New(slog.NewTextHandler(&logs, nil)))
	wantIn(t, logs.String(), "console: the serial port cannot be opened", "ttyS9")
}
