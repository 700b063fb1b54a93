//go:build demo

package main

// make demo: the agent with a local submission server and a local test
// authorization server, so that a newcomer can log in, authorise, send the
// test mail and raise alarms without any cloud account. It is built as a
// test binary to use the strict test doubles, and runs until Ctrl-C.

import (
	"context"
	"fmt"
	"io"
	"net/mail"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailagent/appliance/oauthtest"
	"mailagent/appliance/smtptest"
)

const (
	demoAccount = "alarm@demo.test"
	demoTo      = "ops@demo.test"
)

func TestDemo(t *testing.T) {
	data := os.Getenv("MAILAGENT_DEMO_DATA")
	listen := os.Getenv("MAILAGENT_DEMO_LISTEN")
	if data == "" || listen == "" {
		t.Fatal("start the demo with make demo (it sets MAILAGENT_DEMO_DATA and MAILAGENT_DEMO_LISTEN)")
	}
	// A fresh data directory: the tokens of an earlier run belong to an
	// authorization server that is gone.
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(data, "mail"), 0o700); err != nil {
		t.Fatal(err)
	}
	say := func(format string, args ...any) { fmt.Printf("demo: "+format+"\n", args...) }
	tb := &demoTB{TB: t, say: say}

	redirect := "http://" + listen + "/auth.htm"
	as := oauthtest.NewServer(tb, oauthtest.Options{
		Flavour: oauthtest.Generic, Rotation: oauthtest.Rotate, Account: demoAccount,
		Clients: []oauthtest.Client{{ID: "demo-client", Secret: "demo-secret", Auth: oauthtest.AuthPost,
			RedirectURIs: []string{redirect}}},
		Report: func(v string) { say("the test authorization server refused a request: %s", v) },
	})
	srv := smtptest.New(tb, smtptest.Options{TokenOwner: as.Owner})
	ca := filepath.Join(data, "demo-smtp-ca.pem")
	if err := os.WriteFile(ca, srv.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}

	settings := [][2]string{
		{"http.listen", listen},
		{"mail.from", demoAccount},
		{"mail.from_name", "mailagent demo"},
		{"mail.to", demoTo},
		{"smtp.host", srv.Host()},
		{"smtp.port", strconv.Itoa(srv.Port())},
		{"smtp.ca_file", ca},
		{"smtp.auth", "oauth2"},
		{"oauth2.mode", "client-secret-post"},
		{"oauth2.auth_url", as.AuthURL()},
		{"oauth2.token_url", as.TokenURL()},
		{"oauth2.client_id", "demo-client"},
		{"oauth2.client_secret", "demo-secret"},
		{"oauth2.scopes", "mail.send offline_access"},
		{"oauth2.redirect_url", redirect},
		// Alarms within 5 s share one mail (30 s by default): quick to see.
		{"alarms.digest_window", "5s"},
	}
	for _, kv := range settings {
		var out strings.Builder
		if code := run(context.Background(), []string{"--board", "host", "--data", data, "config", "set", kv[0], kv[1]}, strings.NewReader(""), &out, &out); code != 0 {
			t.Fatalf("config set %s: exit %d\n%s", kv[0], code, out.String())
		}
	}

	say("a submission server on %s (STARTTLS, XOAUTH2/OAUTHBEARER with the tokens below)", srv.Addr())
	say("a test authorization server on %s (client demo-client, signs in as %s at once)", as.URL(), demoAccount)
	say("the configuration is filled in; on the page: log in with the setup code, press Authorise, then Send test mail")
	say("mail the server accepts is printed here and kept in %s", filepath.Join(data, "mail"))
	say("raise an alarm from another terminal: go run ./cmd/mailagent --data %s alarm --severity major --code DEMO \"text\"", data)
	say("Ctrl-C ends the demo")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--board", "host", "--data", data, "run"}, strings.NewReader(""), os.Stdout, os.Stderr)
	}()

	seen := 0
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("mailagent run ended with exit %d", code)
			}
			say("ended")
			return
		case <-tick.C:
			msgs := srv.Messages()
			for _, m := range msgs[seen:] {
				seen++
				path := filepath.Join(data, "mail", fmt.Sprintf("%03d.eml", seen))
				if err := os.WriteFile(path, m.Data, 0o600); err != nil {
					say("mail %d not kept: %v", seen, err)
				}
				subject := "(no subject)"
				if pm, err := mail.ReadMessage(strings.NewReader(string(m.Data))); err == nil {
					subject = pm.Header.Get("Subject")
					io.Copy(io.Discard, pm.Body)
				}
				say("mail %d from %s to %s (logged in as %s with %s): %q, kept in %s",
					seen, m.From, strings.Join(m.To, ", "), m.AuthUser, m.Mechanism, subject, path)
			}
		}
	}
}

// demoTB prints what the test doubles report at once, instead of at the
// end of the run.
type demoTB struct {
	testing.TB
	say func(format string, args ...any)
}

func (d *demoTB) Errorf(format string, args ...any) {
	d.say("problem: "+format, args...)
	d.TB.Errorf(format, args...)
}

func (d *demoTB) Logf(format string, args ...any) { d.say(format, args...) }
