package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"mailagent/appliance/agent"
)

var authorizeFlags struct {
	paste, device bool
	timeout       time.Duration
}

var cmdAuthorize = &Command{
	Name:  "authorize",
	Usage: "[--paste | --device]",
	Short: "authorise the box at the OAuth2 provider from this terminal",
	Flags: func(fs *flag.FlagSet) {
		fs.BoolVar(&authorizeFlags.paste, "paste", false, "open the address in any browser and paste back where it ends up")
		fs.BoolVar(&authorizeFlags.device, "device", false, "sign in with a code on another device (Microsoft modes)")
		fs.DurationVar(&authorizeFlags.timeout, "timeout", 15*time.Minute, "how long to wait for the sign-in")
	},
	Run: func(ctx context.Context, env *Env, args []string) error {
		f := authorizeFlags
		if len(args) != 0 {
			return usagef("authorize takes no arguments")
		}
		if f.paste && f.device {
			return usagef("authorize: --paste and --device do not go together")
		}
		a, err := env.Agent()
		if err != nil {
			return err
		}
		mode, err := a.Interactive()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		var account string
		switch {
		case !mode.Interactive:
			fmt.Fprintf(env.Stdout, "mode %s needs no sign-in (%s); getting a token now\n", mode.Name, mode.Grant)
			account, err = a.ObtainNow(ctx)
		case f.device || (!f.paste && mode.Microsoft):
			if !mode.Microsoft {
				return agent.WithHint(fmt.Errorf("mode %s cannot use device sign-in: Google refuses device authorisation for the Gmail mail scope", mode.Name),
					"run \"mailagent authorize --paste\": open the address in a browser and paste back the address it ends up on")
			}
			account, err = a.DeviceAuthorize(ctx, func(p agent.DevicePrompt) {
				fmt.Fprintf(env.Stdout, "On any device, open %s and enter the code %s\n", p.URL, p.Code)
				// A device code is a public client's grant at Entra
				// (AADSTS7000218 without the switch).
				fmt.Fprintln(env.Stdout, `(the app registration needs "Allow public client flows" = Yes: App registrations → your app → Authentication → Advanced settings)`)
				if !p.Expiry.IsZero() {
					fmt.Fprintf(env.Stdout, "(the code works until %s; waiting for the sign-in…)\n", p.Expiry.Local().Format("15:04:05"))
				}
			})
		default:
			account, err = pasteAuthorize(ctx, env, a)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "ok: authorised as %s; tokens saved in %s\n", account, a.TokensPath())
		return nil
	},
}

// pasteAuthorize prints the authorisation address and reads back the
// address the browser ended up on.
func pasteAuthorize(ctx context.Context, env *Env, a *agent.Agent) (string, error) {
	g, err := a.StartAuthorize()
	if err != nil {
		return "", err
	}
	fmt.Fprintln(env.Stdout, "1. Open this address in a browser and sign in:")
	fmt.Fprintf(env.Stdout, "\n%s\n\n", g.URL)
	fmt.Fprintf(env.Stdout, "2. The browser then goes to %s. If that page does not load, that is fine:\n", g.RedirectURL)
	fmt.Fprintln(env.Stdout, "   copy the whole address from the browser's address bar and paste it here.")
	fmt.Fprint(env.Stdout, "address: ")
	line, err := readLine(ctx, env)
	if err != nil {
		return "", fmt.Errorf("reading the pasted address: %w", err)
	}
	return a.FinishAuthorize(ctx, g, strings.TrimSpace(line))
}

func readLine(ctx context.Context, env *Env) (string, error) {
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := bufio.NewReader(env.Stdin).ReadString('\n')
		if err != nil && s != "" {
			err = nil
		}
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
