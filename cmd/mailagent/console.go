package main

import (
	"context"
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"mailagent/appliance/agent"
	"mailagent/appliance/limit"
	"mailagent/console"
)

var cmdConsole = &Command{
	Name:  "console",
	Short: "the console on this terminal (as on the serial port)",
	Run: func(ctx context.Context, env *Env, args []string) error {
		if len(args) != 0 {
			return usagef("console takes no arguments")
		}
		a, err := env.Agent()
		if err != nil {
			return err
		}
		o := consoleOptions(env, agent.NewAdmin(a), nil)
		o.Where = "this terminal"
		raw := false
		if in, ok := env.Stdin.(*os.File); ok {
			if restore, err := makeRaw(int(in.Fd())); err == nil {
				defer restore()
				raw = true
			}
		}
		return console.Run(ctx, console.NewTerm(env.Stdin, env.Stdout, raw), o)
	},
}

// consoleOptions wires a console session to backend and to the commands it
// shares with the command line, which run as "mailagent COMMAND" would with
// this environment's board and data directory.
func consoleOptions(env *Env, backend console.Backend, log *console.Ring) console.Options {
	return console.Options{
		Backend: backend,
		Command: func(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
			sub := *env
			sub.Stdin, sub.Stdout, sub.Stderr = in, out, out
			err := runCommand(ctx, &sub, args)
			var ue *usageError
			if errors.As(err, &ue) {
				return errors.New(ue.msg)
			}
			return err
		},
		HashPassword:  agent.HashPassword,
		CheckPassword: agent.CheckPassword,
		Log:           log,
		Version:       version,
		// one limiter for the line: its sessions share the wrong tries
		Logins: limit.NewAttempts(limit.AttemptOptions{}),
	}
}

// makeRaw puts the terminal fd into raw mode, as a serial line is: the
// console echoes, and a password is not shown. restore puts it back.
func makeRaw(fd int) (restore func(), err error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, err
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}
