package main

import (
	"context"
	"fmt"
	"time"
)

var cmdTest = &Command{
	Name:  "test",
	Short: "send a test mail now and show each step",
	Run: func(ctx context.Context, env *Env, args []string) error {
		if len(args) != 0 {
			return usagef("test takes no arguments")
		}
		a, err := env.Agent()
		if err != nil {
			return err
		}
		for _, w := range a.Warnings() {
			fmt.Fprintf(env.Stderr, "warning: %s\n", w)
		}
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		c := a.Config()
		fmt.Fprintf(env.Stdout, "sending a test mail from %s to %v through %s:%d (%s, auth %s)\n",
			c.Mail.From, c.Mail.To, c.SMTP.Host, c.SMTP.Port, c.SMTP.TLS, c.SMTP.Auth)
		reply, err := a.SendTest(ctx, func(step, detail string) {
			fmt.Fprintf(env.Stdout, "%-10s %s\n", step+":", detail)
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "ok: the server accepted the mail (%s)\n", reply)
		return nil
	},
}
