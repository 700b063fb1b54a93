package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"mailagent/appliance/agent"
)

var statusFlags struct{ json bool }

var cmdStatus = &Command{
	Name:  "status",
	Usage: "[--json]",
	Short: "show the configuration, token and delivery state",
	Flags: func(fs *flag.FlagSet) { fs.BoolVar(&statusFlags.json, "json", false, "print JSON for scripts") },
	Run: func(ctx context.Context, env *Env, args []string) error {
		a, err := env.Agent()
		if err != nil {
			return err
		}
		st := a.Status(ctx)
		if statusFlags.json {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		}
		printStatus(env.Stdout, &st)
		return nil
	},
}

// printStatus writes the status as text, a fact a line.
func printStatus(w io.Writer, st *agent.Status) {
	fmt.Fprintf(w, "board:      %s, data in %s\n", st.Board, st.DataDir)
	if st.Clock != "ok" {
		fmt.Fprintf(w, "clock:      %s\n", st.Clock)
	}
	for _, warn := range st.Warnings {
		fmt.Fprintf(w, "warning:    %s\n", warn)
	}
	if len(st.Problems) == 0 {
		fmt.Fprintln(w, "config:     ok")
	} else {
		fmt.Fprintln(w, "config:     not ready:")
		for _, p := range st.Problems {
			fmt.Fprintf(w, "              %s\n", p)
		}
	}
	if !st.Running {
		fmt.Fprintln(w, "agent:      not running")
	}
	q, d := &st.Queue, &st.Delivery
	fmt.Fprintf(w, "queue:      %d alarms wait on flash", q.Spooled)
	if st.Running {
		fmt.Fprintf(w, ", %d in memory", q.Memory)
	}
	if q.Oldest != nil {
		fmt.Fprintf(w, ", oldest %s", q.Oldest.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if d.LastMail != nil {
		fmt.Fprintf(w, "last mail:  %s, %s\n", d.LastMail.Format(time.RFC3339), d.LastReply)
	}
	if d.Failing != "" {
		fmt.Fprintf(w, "delivery:   FAILING: %s\n", d.Failing)
		if d.FailingSince != nil {
			fmt.Fprintf(w, "            since %s, %d tries in a row\n", d.FailingSince.Format(time.RFC3339), d.Failures)
		}
		if d.Hint != "" {
			fmt.Fprintf(w, "            hint: %s\n", d.Hint)
		}
		if d.NextTry != nil {
			fmt.Fprintf(w, "            next try %s (mailagent queue flush tries now)\n", d.NextTry.Format(time.RFC3339))
		}
	}
	if q.Dropped != "" {
		fmt.Fprintf(w, "dropped:    %s (not yet reported)\n", q.Dropped)
	}
	if q.Corrupt > 0 {
		fmt.Fprintf(w, "damaged:    %d spool records set aside now (%s)\n", q.Corrupt, q.LastDamage)
	}
	if q.SetAside > q.Corrupt {
		fmt.Fprintf(w, "damaged:    %d spool records set aside as %s/spool/*.bad (newest %s); their alarms could not be read: look at them, then delete them\n",
			q.SetAside, st.DataDir, q.NewestBad)
	}
	fmt.Fprintf(w, "auth:       %s\n", st.Auth)
	o := st.OAuth2
	if o == nil {
		return
	}
	fmt.Fprintf(w, "mode:       %s\n", o.Mode)
	if o.Account != "" {
		fmt.Fprintf(w, "account:    %s\n", o.Account)
	}
	fmt.Fprintf(w, "state:      %s\n", o.State)
	if o.Expiry != nil {
		fmt.Fprintf(w, "token:      expires %s\n", o.Expiry.Format(time.RFC3339))
	}
	if o.Refreshed != nil {
		fmt.Fprintf(w, "refreshed:  %s\n", o.Refreshed.Format(time.RFC3339))
	}
	if o.LastError != "" {
		fmt.Fprintf(w, "last error: %s", o.LastError)
		if o.LastErrorAt != nil {
			fmt.Fprintf(w, " (%s)", o.LastErrorAt.Format(time.RFC3339))
		}
		fmt.Fprintln(w)
	}
	if o.NextTry != nil {
		fmt.Fprintf(w, "next try:   %s\n", o.NextTry.Format(time.RFC3339))
	}
	if o.Fix != "" {
		fmt.Fprintf(w, "hint:       %s\n", o.Fix)
	}
	if o.SecretDaysLeft != nil {
		fmt.Fprintf(w, "secret:     expires %s (%d days)", o.SecretExpires, *o.SecretDaysLeft)
		if o.SecretNote != "" {
			fmt.Fprintf(w, "  %s", o.SecretNote)
		}
		fmt.Fprintln(w)
	}
}
