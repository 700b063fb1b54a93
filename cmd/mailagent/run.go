package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"mailagent/webui"
)

var cmdRun = &Command{
	Name:  "run",
	Short: "run the agent: take alarms and send them as mail",
	Run: func(ctx context.Context, env *Env, args []string) error {
		if len(args) != 0 {
			return usagef("run takes no arguments")
		}
		a, err := env.Agent()
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		c := a.Config()
		ln, err := net.Listen("tcp", c.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("http.listen %s: %w", c.HTTP.Listen, err)
		}
		user, password := a.AlarmCredentials()
		srv := &http.Server{
			Handler:           webui.AlarmHandler(webui.AlarmOptions{Sink: a.Accept, User: user, Password: password, Log: env.Log}),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       time.Minute,
			WriteTimeout:      time.Minute,
		}
		httpDone := make(chan error, 1)
		go func() { httpDone <- srv.Serve(ln) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
			if err := <-httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
				env.Log.Error("http server", "err", err)
			}
		}()
		return a.Run(ctx, func() {
			fmt.Fprintf(env.Stdout, "mailagent %s running on board %s, data in %s\n", version, a.Board().Name, a.DataDir())
			fmt.Fprintf(env.Stdout, "alarms: mailagent --data %s alarm --severity major --code TEST \"text\"  (socket %s)\n", a.DataDir(), a.SocketPath())
			if user == "" {
				fmt.Fprintf(env.Stdout, "alarms over HTTP: POST http://%s/alarm and /alertmanager once http.alarm_user and http.alarm_password are set\n", ln.Addr())
			} else {
				fmt.Fprintf(env.Stdout, "alarms over HTTP: POST http://%s/alarm and /alertmanager (user %s)\n", ln.Addr(), user)
			}
			for _, w := range a.Warnings() {
				fmt.Fprintf(env.Stdout, "warning: %s\n", w)
			}
			if now, unset := a.ClockUnset(); unset {
				fmt.Fprintf(env.Stdout, "warning: the system clock is not set (it reads %s); OAuth2 and TLS fail until it is\n", now.UTC().Format(time.RFC3339))
			}
			if err := a.Problems(); err != nil {
				fmt.Fprintln(env.Stdout, "mail cannot be sent yet; what is missing:")
				for _, line := range strings.Split(err.Error(), "\n") {
					fmt.Fprintf(env.Stdout, "  %s\n", line)
				}
				fmt.Fprintln(env.Stdout, "set them with \"mailagent config set KEY VALUE\"; the agent uses them from the next mail on")
			} else {
				fmt.Fprintf(env.Stdout, "mail goes from %s to %s through %s:%d\n", c.Mail.From, strings.Join(c.Mail.To, ", "), c.SMTP.Host, c.SMTP.Port)
			}
		})
	},
}
