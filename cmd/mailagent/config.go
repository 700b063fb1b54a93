package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"mailagent/appliance/agent"
	"mailagent/appliance/config"
)

const configUsage = "check | show [SECTION] | get KEY | set KEY VALUE|- | unset KEY | export | import google-client|google-service-account FILE"

var cmdConfig = &Command{
	Name:  "config",
	Usage: configUsage,
	Short: "check, show and change mailagent.toml",
	Run: func(ctx context.Context, env *Env, args []string) error {
		if len(args) == 0 {
			return usagef("config: say check, show, get, set, unset or export")
		}
		sub, args := args[0], args[1:]
		want := map[string][2]int{"check": {0, 0}, "show": {0, 1}, "get": {1, 1}, "set": {2, 2}, "unset": {1, 1}, "export": {0, 0}, "import": {2, 2}}
		n, ok := want[sub]
		if !ok {
			return usagef("config: unknown subcommand %q", sub)
		}
		if len(args) < n[0] || len(args) > n[1] {
			return usagef("config %s: wrong number of arguments (usage: mailagent config %s)", sub, configUsage)
		}
		if sub == "import" {
			return configImport(env, args[0], args[1])
		}
		path := filepath.Join(env.dataDir(), config.FileName)
		if sub == "set" || sub == "unset" {
			return configChange(ctx, env, path, sub, args)
		}
		f, err := loadConfig(env, path, sub != "check")
		if err != nil {
			return err
		}
		switch sub {
		case "check":
			return configCheck(env, f)
		case "show":
			return configShow(env, f, args)
		case "get":
			k, err := config.LookupKey(args[0])
			if err != nil {
				return err
			}
			c := f.Config.WithDefaults(env.Board)
			fmt.Fprintln(env.Stdout, k.Get(&c))
			return nil
		case "export":
			_, err := env.Stdout.Write(config.Export(&f.Config))
			return err
		}
		return nil
	},
}

func (e *Env) dataDir() string {
	if e.DataDir != "" {
		return e.DataDir
	}
	return e.Board.DataDir
}

// loadConfig loads mailagent.toml; a damaged file with a good copy is
// reported on stderr (when warn) and its good copy used.
func loadConfig(env *Env, path string, warn bool) (*config.File, error) {
	f, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if f.Damaged != nil && warn {
		fmt.Fprintf(env.Stderr, "warning: %v\n", f.Damaged)
	}
	if f.GoodDamaged != nil {
		fmt.Fprintf(env.Stderr, "warning: %v; the file itself is sound, and \"mailagent config check\" makes the good copy again\n", f.GoodDamaged)
	}
	return f, nil
}

func configCheck(env *Env, f *config.File) error {
	if f.Missing {
		return agent.WithHint(fmt.Errorf("%s does not exist", f.Path),
			"write it by hand or with \"mailagent config set KEY VALUE\"; \"mailagent config show\" lists every key")
	}
	c := f.Config.WithDefaults(env.Board)
	problems := config.Validate(&c)
	if f.Damaged != nil {
		fmt.Fprintf(env.Stderr, "error: %s is damaged: %v\n", f.Damaged.Path, f.Damaged.Err)
		fmt.Fprintf(env.Stderr, "  mailagent uses the last good copy, %s, until the file is fixed\n", f.Damaged.Fallback)
		if problems != nil {
			fmt.Fprintf(env.Stderr, "  the last good copy has these problems:\n")
			for _, line := range strings.Split(problems.Error(), "\n") {
				fmt.Fprintf(env.Stderr, "  %s\n", line)
			}
		}
		return agent.WithHint(fmt.Errorf("%s is damaged", f.Damaged.Path),
			"fix the line named above, or replace the file with its last good copy: cp "+f.Damaged.Fallback+" "+f.Damaged.Path)
	}
	if problems != nil {
		return agent.WithHint(fmt.Errorf("%s has problems:\n%w", f.Path, problems),
			"change them with \"mailagent config set KEY VALUE\"")
	}
	if err := f.MarkGood(); err != nil {
		fmt.Fprintf(env.Stderr, "warning: the last good copy could not be kept: %v\n", err)
	}
	fmt.Fprintf(env.Stdout, "ok: %s\n", f.Path)
	return nil
}

func configShow(env *Env, f *config.File, args []string) error {
	section := ""
	if len(args) == 1 {
		section = args[0]
		if err := config.CheckSection(section); err != nil {
			return usagef("config show: %v", err)
		}
	}
	return config.Show(env.Stdout, &f.Config, env.Board, section, nil)
}

// configChange sets or unsets one key. The change is judged as the web
// page's Save and the console's commit judge theirs (config.Change): a
// value that does not parse, or a problem the change brings, is refused
// by key and nothing is written. Problems the file had before, and keys
// still to be set, do not block it; the key's own are printed as notes.
// It is one config.Update: another config set, the page's Save or the
// console's commit at the same time waits, so none is lost.
func configChange(ctx context.Context, env *Env, path, sub string, args []string) error {
	k, err := config.LookupKey(args[0])
	if err != nil {
		return err
	}
	var ch config.Change
	if sub == "unset" {
		ch.Unset = []string{k.Name}
	} else {
		val := args[1]
		if val == "-" {
			if val, err = readValue(env.Stdin); err != nil {
				return fmt.Errorf("reading the value of %s: %w", k.Name, err)
			}
		}
		if val == "" {
			// Change keeps a secret given as ""; here "" means unset, as
			// for every other key.
			ch.Unset = []string{k.Name}
		} else {
			ch.Set = map[string]string{k.Name: val}
		}
	}
	var remaining config.Problems
	err = config.Update(ctx, path, func(f *config.File, c *config.Config) error {
		if f.Damaged != nil {
			fmt.Fprintf(env.Stderr, "warning: %v\n", f.Damaged)
		}
		errs, rest := ch.Apply(c, env.Board)
		if len(errs) > 0 {
			lines := make([]string, 0, len(errs))
			for _, name := range slices.Sorted(maps.Keys(errs)) {
				lines = append(lines, name+": "+errs[name])
			}
			return agent.WithHint(errors.New(strings.Join(lines, "\n")),
				"nothing was written: "+path+" is as it was")
		}
		remaining = rest
		return nil
	})
	if se, ok := errors.AsType[*config.SaveError](err); ok {
		if se.Written {
			return agent.WithHint(err, path+" was written, but its good copy was not refreshed: run \"mailagent config check\" once the data directory "+
				filepath.Dir(path)+" is writable and has space")
		}
		return agent.WithHint(err, "nothing was written: "+path+" is as it was; check that the data directory "+
			filepath.Dir(path)+" is writable and has space")
	}
	if err != nil {
		return err
	}
	for _, e := range remaining.For(k.Name) {
		fmt.Fprintf(env.Stderr, "note: %v\n", e)
	}
	return nil
}

// readValue reads a value from r: everything up to EOF for a multi-line
// value such as a PEM key, without the final line end. A value longer
// than a key takes is refused without reading it all.
func readValue(r io.Reader) (string, error) {
	b, err := io.ReadAll(bufio.NewReader(io.LimitReader(r, config.MaxValueBytes+2)))
	if err != nil {
		return "", err
	}
	s := string(b)
	if strings.Count(strings.TrimRight(s, "\r\n"), "\n") == 0 {
		s = strings.TrimRight(s, "\r\n")
	}
	if len(s) > config.MaxValueBytes {
		return "", fmt.Errorf("longer than %d bytes, the most a value takes", config.MaxValueBytes)
	}
	return s, nil
}

// configImport reads a provider's downloaded file into mailagent.toml.
func configImport(env *Env, kind, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	a, err := env.Agent()
	if err != nil {
		return err
	}
	if err := a.Import(kind, data); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "ok: %s imported into %s\n", file, a.ConfigPath())
	return nil
}
