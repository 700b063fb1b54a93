package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mailagent/appliance/config"
	"mailagent/console/ptytest"
)

// TestConsoleOnATerminal runs "mailagent console" on a pseudo-terminal, as
// on a technician's terminal: the console puts it into raw mode and echoes
// itself, a secret is not shown, and the terminal is as it was afterwards.
func TestConsoleOnATerminal(t *testing.T) {
	term := ptytest.Open(t)
	tty, err := os.OpenFile(term.Port, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if before.Lflag&unix.ECHO == 0 {
		t.Fatal("a new pseudo-terminal without echo: the test would prove nothing")
	}
	data := t.TempDir()
	done := make(chan int)
	go func() {
		done <- run(context.Background(), []string{"--board", "host", "--data", data, "console"}, tty, tty, tty)
	}()

	const canary = "Canary-Password-51c"
	const wait = 10 * time.Second
	term.WaitFor("mailagent> ", 1, wait)
	term.Type("set smtp.user alarm@example.test\r")
	term.WaitFor("mailagent> ", 2, wait)
	term.Type("secret smtp.password\r")
	term.WaitFor("(not shown; an empty line keeps it as it is): ", 1, wait)
	term.Type(canary + "\r")
	term.WaitFor("mailagent> ", 3, wait)
	term.Type("commit\r")
	term.WaitFor("mailagent> ", 4, wait)
	term.Type("exit\r")
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("console exited %d:\n%s", code, term.String())
		}
	case <-time.After(wait):
		t.Fatalf("console did not end on exit:\n%s", term.String())
	}
	screen := term.String()
	if strings.Contains(screen, canary) {
		t.Errorf("the secret was shown:\n%s", screen)
	}
	if strings.Count(screen, "set smtp.user") != 1 || !strings.Contains(screen, "ok: 2 changes saved; ") {
		t.Errorf("want one echo of each line and CR LF line ends:\n%q", screen)
	}
	after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Errorf("the terminal was left changed: lflag %#x -> %#x", before.Lflag, after.Lflag)
	}
	f, err := config.Load(data + "/" + config.FileName)
	if err != nil {
		t.Fatal(err)
	}
	if f.Config.SMTP.Password.Reveal() != canary {
		t.Error("the secret was not saved")
	}
}
