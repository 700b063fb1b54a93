package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"mailagent/appliance/alarm"
)

var cmdQueue = &Command{
	Name:  "queue",
	Usage: "[flush]",
	Short: "list the alarms waiting on flash; flush: try delivery now",
	Run: func(ctx context.Context, env *Env, args []string) error {
		if len(args) > 1 || len(args) == 1 && args[0] != "flush" {
			return usagef("queue takes no arguments, or flush")
		}
		a, err := env.Agent()
		if err != nil {
			return err
		}
		if len(args) == 1 {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := a.Flush(ctx); err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, "ok: the agent tries delivery now")
			return nil
		}
		q, err := a.Queue()
		if err != nil {
			return err
		}
		if len(q.Spooled) == 0 {
			fmt.Fprintln(env.Stdout, "no alarms wait on flash")
		}
		for _, al := range q.Spooled {
			first, _, _ := strings.Cut(al.Text, "\n")
			fmt.Fprintf(env.Stdout, "%s  %-8s %s", al.Time.Local().Format(time.DateTime), al.Severity, al.Code)
			if al.Source != "" {
				fmt.Fprintf(env.Stdout, " from %s", al.Source)
			}
			if first != "" {
				fmt.Fprintf(env.Stdout, ": %s", first)
			}
			fmt.Fprintln(env.Stdout)
		}
		if d := alarm.CountsText(q.Dropped); d != "" {
			fmt.Fprintf(env.Stdout, "dropped for room, not yet reported: %s\n", d)
		}
		if q.Corrupt > 0 {
			fmt.Fprintf(env.Stdout, "damaged records set aside: %d (%s)\n", q.Corrupt, q.LastDamage)
		}
		if q.SetAside > q.Corrupt {
			fmt.Fprintf(env.Stdout, "damaged records kept as spool/*.bad: %d (newest %s)\n", q.SetAside, q.NewestBad)
		}
		return nil
	},
}
