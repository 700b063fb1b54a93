package console

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"mailagent/console/ptytest"
)

func TestServeOnASerialPort(t *testing.T) {
	term := ptytest.Open(t)
	port := term.Port
	f := newFixture(t)
	var logs ptytest.Screen
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		Serve(ctx, port, 115200, f.o, slog.New(slog.NewTextHandler(&logs, nil)))
		close(served)
	}()
	const wait = 10 * time.Second
	term.WaitFor("mailagent> ", 1, wait)
	term.Type("set mail.from alarm@example.test\r")
	term.WaitFor("mailagent> ", 2, wait)
	term.Type("commit\r")
	term.WaitFor("mailagent> ", 3, wait)
	term.Type("exit\r")
	term.WaitFor("press Enter for a new one", 1, wait)
	term.Type("\r")
	term.WaitFor("type help for the commands", 2, wait)

	out := term.String()
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Serve returns once it has said so: the first log line ends it.
	logged := writerFunc(func(p []byte) (int, error) { defer cancel(); return logs.Write(p) })
	Serve(ctx, t.TempDir()+"/ttyS9", 115200, f.o, slog.New(slog.NewTextHandler(logged, nil)))
	wantIn(t, logs.String(), "console: the serial port cannot be opened", "ttyS9")
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
