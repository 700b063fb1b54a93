package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"mailagent/appliance/agent"
	"mailagent/board"
)

// version and buildDate (YYYY-MM-DD, the commit's date) are set at build
// time with -ldflags "-X main.version=… -X main.buildDate=…".
var (
	version   = "dev"
	buildDate = ""
)

// oldestDate is the build date assumed when none was set: a clock before it
// was certainly never set.
const oldestDate = "2026-11-01"

// Command is one subcommand.
type Command struct {
	// Name is the word after mailagent.
	Name string
	// Usage is the argument synopsis.
	Usage string
	// Short is a one-line description for help.
	Short string
	// Flags adds the command's own flags, if any.
	Flags func(fs *flag.FlagSet)
	// Run runs the command.
	Run func(ctx context.Context, env *Env, args []string) error
}

// commands is the command table, in help order.
var commands []*Command

func init() {
	commands = []*Command{cmdRun, cmdAlarm, cmdTest, cmdAuthorize, cmdStatus, cmdQueue, cmdConfig, cmdConsole, cmdVersion}
}

// Env is what every command gets: the streams, the board and data directory
// from --board and --data, and a logger.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Board          board.Profile
	DataDir        string // "" means the board's
	Log            *slog.Logger
	LogLevel       *slog.LevelVar
}

// Agent loads the agent for this environment.
func (e *Env) Agent() (*agent.Agent, error) {
	return agent.New(agent.Options{Board: e.Board, DataDir: e.DataDir, Log: e.Log, BuildDate: builtOn()})
}

func builtOn() time.Time {
	for _, s := range []string{buildDate, oldestDate} {
		if t, err := time.Parse("2006-01-02", s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, LogLevel: new(slog.LevelVar)}
	env.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: env.LogLevel}))
	err := dispatch(ctx, env, args)
	if err == nil {
		return 0
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "error: %s\n", ue.msg)
		fmt.Fprintln(stderr, "hint: run \"mailagent help\" for the commands")
		return 2
	}
	printError(stderr, err)
	return 1
}

// printError writes "error: …" and, where known, "hint: …".
func printError(w io.Writer, err error) {
	for i, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		if i == 0 {
			fmt.Fprintf(w, "error: %s\n", line)
		} else {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	if h := hintFor(err); h != "" {
		fmt.Fprintf(w, "hint: %s\n", h)
	}
}

func dispatch(ctx context.Context, env *Env, args []string) error {
	common, rest, err := commonFlags(args)
	if err != nil {
		return err
	}
	if common.board != "" {
		env.Board, err = board.Lookup(common.board)
		if err != nil {
			return usagef("%v", err)
		}
	} else {
		env.Board = board.Detect(os.DirFS("/"))
	}
	env.DataDir = common.data
	if env.DataDir != "" {
		// The profile says where the data is: the validator keeps file
		// keys off mailagent's own files there.
		env.Board.DataDir = env.DataDir
	}
	if common.verbose {
		env.LogLevel.Set(slog.LevelDebug)
	}
	if len(rest) == 0 || rest[0] == "help" || rest[0] == "-h" || rest[0] == "--help" {
		help(env.Stdout)
		return nil
	}
	return runCommand(ctx, env, rest)
}

// runCommand runs the command rest[0] with its arguments rest[1:].
func runCommand(ctx context.Context, env *Env, rest []string) error {
	for _, c := range commands {
		if c.Name != rest[0] {
			continue
		}
		fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
		fs.SetOutput(env.Stderr)
		fs.Usage = func() {
			fmt.Fprintf(env.Stderr, "usage: mailagent %s %s\n%s\n", c.Name, c.Usage, c.Short)
			fs.PrintDefaults()
		}
		if c.Flags != nil {
			c.Flags(fs)
		}
		if err := fs.Parse(rest[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return usagef("%s: %v", c.Name, err)
		}
		return c.Run(ctx, env, fs.Args())
	}
	return usagef("unknown command %q", rest[0])
}

type common struct {
	board, data string
	verbose     bool
}

// commonFlags takes --board, --data and -v from anywhere before "--", so
// they work before or after the command name.
func commonFlags(args []string) (common, []string, error) {
	var c common
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			rest = append(rest, a)
			continue
		}
		switch name {
		case "board", "data":
			if !hasVal {
				if i+1 >= len(args) {
					return c, nil, usagef("--%s needs a value", name)
				}
				i++
				val = args[i]
			}
			if name == "board" {
				c.board = val
			} else {
				c.data = val
			}
		case "v", "verbose":
			c.verbose = true
		default:
			rest = append(rest, a)
		}
	}
	return c, rest, nil
}

func help(w io.Writer) {
	fmt.Fprintln(w, "mailagent sends the box's alarm and event mail.")
	fmt.Fprintln(w, "\nusage: mailagent [--board NAME] [--data DIR] [-v] COMMAND [ARGS]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.Name, c.Short)
	}
	fmt.Fprintf(w, "\n--board selects the hardware profile (%s; default: detected)\n", strings.Join(board.Names(), ", "))
	fmt.Fprintln(w, "--data sets the data directory (default: the board's)")
	fmt.Fprintln(w, "\"mailagent COMMAND -h\" shows a command's own flags.")
}

var cmdVersion = &Command{
	Name:  "version",
	Short: "print the version",
	Run: func(ctx context.Context, env *Env, args []string) error {
		fmt.Fprintf(env.Stdout, "mailagent %s\n", version)
		return nil
	},
}

// hintFor says what to do about err, if anything is known.
func hintFor(err error) string { return agent.Hint(err) }
