package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/config"
	"mailagent/appliance/internal/flash/powercut"
	"mailagent/appliance/internal/outbox"
	"mailagent/appliance/oauth"
	"mailagent/appliance/oauthtest"
	"mailagent/board"
)

// pcData is the data directory on the power-cut model.
const pcData = "/data"

// pcConfig is a complete configuration for Microsoft 365 against srv, the
// box's name being name.
func pcConfig(t *testing.T, srv *oauthtest.Server, name string) config.Config {
	t.Helper()
	c, err := config.Decode(fmt.Appendf(nil, `[device]
name = %q
[mail]
from = %q
to = ["ops@example.test", "noc@example.test"]
subject_prefix = "[%s]"
[smtp]
host = "smtp.example.test"
port = 587
auth = "oauth2"
[oauth2]
mode = "exchange"
client_id = %q
client_secret = %q
tenant = %q
authority = %q
redirect_url = %q
[alarms]
persistent_queue_entries = 3
`, name, boxMailbox, name, boxClientMS, boxSecret, srv.Tenant(), srv.URL()+"/", boxRedirect))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pcAgent starts an agent on fsys, as the box does after the power comes
// back.
func pcAgent(fsys *powercut.FS, srv *oauthtest.Server) (*Agent, error) {
	return New(Options{Board: board.Profile{Name: "host"}, DataDir: pcData, FS: fsys, HTTPClient: srv.HTTPClient()})
}

// TestPowerCut cuts the power after every change to flash that a
// configuration commit (Admin.UpdateConfig, on a box with a configuration
// and on a new one), a token rotation (the token source saving the
// refresh token Microsoft rotated), an alarm taken into the spool by
// "mailagent alarm" (Agent.Spool) and an ack (the outbox removing what a
// mail delivered, and the drop count it reported) make, under each loss of the power-cut
// model (appliance/internal/flash/powercut), and starts an agent on what
// comes back. After every cut the agent starts and names no damaged file;
// the configuration is the old one or the new one, never a mix and never
// the defaults of a new box; tokens.toml holds a refresh token the server
// still accepts (oauthtest rotates as Microsoft does: the old token stays
// valid), proven by a refresh; an alarm Agent.Spool acknowledged is
// queued; a delivered one may come back, once. The spool's own test
// (appliance/internal/spool TestPowerCut) cuts batches, evictions and
// every ack of the spool.
func TestPowerCut(t *testing.T) {
	srv := oauthtest.NewServer(t, oauthtest.Options{
		Account: boxMailbox, InProcess: true, Flavour: oauthtest.Microsoft, Rotation: oauthtest.Rotate,
		Clients: []oauthtest.Client{{ID: boxClientMS, Secret: boxSecret, Auth: oauthtest.AuthPost, RedirectURIs: []string{boxRedirect}}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	oldCfg, newCfg := pcConfig(t, srv, "gw-old"), pcConfig(t, srv, "gw-new")
	newCfg.Mail.To = []string{"ops@example.test"}
	newCfg.SMTP.Port = 465
	newCfg.SMTP.TLS = "tls"

	// The box as it was before each operation: configured and authorised.
	base := powercut.New()
	if err := config.SaveFS(base, filepath.Join(pcData, config.FileName), &oldCfg); err != nil {
		t.Fatal(err)
	}
	a, err := pcAgent(base, srv)
	if err != nil {
		t.Fatal(err)
	}
	g, err := a.StartAuthorize()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.FinishAuthorize(ctx, g, srv.Authorize(t, g.URL)); err != nil {
		t.Fatalf("authorisation: %v", err)
	}
	if err := a.Spool(pcAlarm("BEFORE")); err != nil {
		t.Fatal(err)
	}

	counts := map[string]int{}
	enumerate := func(name string, base *powercut.FS, op func(fsys *powercut.FS) error, check func(c powercut.Cut, a *Agent, err error)) {
		t.Run(name, func(t *testing.T) {
			n, err := powercut.Enumerate(base, op, func(c powercut.Cut, after *powercut.FS, opErr error) {
				a, err := pcAgent(after, srv)
				if err != nil {
					t.Errorf("%s: the agent does not start: %v", c, err)
					return
				}
				if w := a.Warnings(); len(w) > 0 {
					t.Errorf("%s: the agent starts with warnings: %q", c, w)
				}
				check(c, a, opErr)
			})
			if err != nil {
				t.Fatal(err)
			}
			counts[name] = n
			t.Logf("%s: %d cut points, %d restarts", name, n, n*len(powercut.Losses))
		})
	}

	// A commit: the old configuration or the new one, never a mix, never
	// defaults.
	commit := func(fsys *powercut.FS) error {
		a, err := pcAgent(fsys, srv)
		if err != nil {
			return err
		}
		return NewAdmin(a).UpdateConfig(func(c *config.Config) error { *c = newCfg; return nil })
	}
	checkConfig := func(c powercut.Cut, a *Agent, allowed ...*config.Config) {
		t.Helper()
		a.mu.Lock()
		missing := a.file.Missing
		a.mu.Unlock()
		got, err := NewAdmin(a).Config()
		switch {
		case err != nil:
			t.Errorf("%s: config = %v", c, err)
		case missing && slices.Contains(allowed, nil):
		case missing:
			t.Errorf("%s: mailagent.toml is missing: the box would run on defaults", c)
		case !slices.ContainsFunc(allowed, func(w *config.Config) bool { return w != nil && config.Equal(&got, w) }):
			t.Errorf("%s: the configuration is neither the old one nor the new one: %+v", c, got)
		}
	}
	enumerate("commit", base, commit, func(c powercut.Cut, a *Agent, _ error) {
		checkConfig(c, a, &oldCfg, &newCfg)
		if err := a.Problems(); err != nil {
			t.Errorf("%s: Problems = %v", c, err)
		}
	})
	newBox := powercut.New()
	enumerate("first commit", newBox, commit, func(c powercut.Cut, a *Agent, _ error) {
		checkConfig(c, a, nil, &newCfg)
	})

	// A rotation: the token on flash still refreshes.
	enumerate("rotation", base, func(fsys *powercut.FS) error {
		a, err := pcAgent(fsys, srv)
		if err != nil {
			return err
		}
		c := a.Config()
		_, src, err := a.oauthFor(&c)
		if err != nil {
			return err
		}
		_, err = src.Token(ctx) // no access token on flash: a refresh, which rotates
		if err == nil {
			return nil
		}
		// The rotated token did not reach flash (the cut; EIO or ENOSPC in
		// a process that lives on): the access token that came with it
		// must not be handed out by a later call either.
		if _, err2 := src.Token(ctx); err2 == nil {
			return fmt.Errorf("after %v, a second Token handed out the access token whose refresh token is not on flash", err)
		}
		return err
	}, func(c powercut.Cut, a *Agent, opErr error) {
		if opErr != nil && !errors.Is(opErr, powercut.ErrPowerCut) {
			t.Errorf("%s: %v", c, opErr)
		}
		checkConfig(c, a, &oldCfg)
		f, err := oauth.LoadTokensFS(a.fs, a.TokensPath())
		if err != nil || f.Missing || f.Damaged != nil || !f.Tokens.RefreshToken.IsSet() {
			t.Errorf("%s: tokens.toml: %v (missing %v, damaged %v)", c, err, f != nil && f.Missing, f != nil && f.Damaged != nil)
			return
		}
		if !slices.Contains(srv.LiveRefreshTokens(), f.Tokens.RefreshToken.Reveal()) {
			t.Errorf("%s: the refresh token on flash is not one the server accepts", c)
		}
		cfg := a.Config()
		_, src, err := a.oauthFor(&cfg)
		if err != nil {
			t.Errorf("%s: %v", c, err)
			return
		}
		if _, err := src.Token(ctx); err != nil {
			t.Errorf("%s: the refresh after the restart failed: %v", c, err)
		}
		if st := src.Status(); st.State != oauth.StateOK {
			t.Errorf("%s: token state %s (%s), want ok", c, st.State, st.LastError)
		}
	})

	// An append: "mailagent alarm" while the agent is down.
	enumerate("append", base, func(fsys *powercut.FS) error {
		a, err := pcAgent(fsys, srv)
		if err != nil {
			return err
		}
		return a.Spool(pcAlarm("NEW"))
	}, func(c powercut.Cut, a *Agent, opErr error) {
		q, err := a.Queue()
		if err != nil {
			t.Errorf("%s: Queue = %v", c, err)
			return
		}
		var got []string
		for _, al := range q.Spooled {
			got = append(got, al.Code)
		}
		want := []string{"BEFORE"}
		if opErr == nil {
			want = append(want, "NEW") // acknowledged
		}
		for _, code := range want {
			if !slices.Contains(got, code) {
				t.Errorf("%s: acknowledged alarm %s lost: the queue holds %q", c, code, got)
			}
		}
		if q.Corrupt != 0 {
			t.Errorf("%s: damage in the spool: %s", c, q.LastDamage)
		}
	})

	// An ack: the outbox mails what the spool holds (two alarms and the
	// count of the one dropped for them), then removes them and the drop
	// counters. A delivered alarm may come back (at least once); the drop
	// count is the old one or none.
	acked := base.Clone()
	a, err = pcAgent(acked, srv)
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"A2", "A3", "A4"} { // A4 drops BEFORE
		if err := a.Spool(pcAlarm(code)); err != nil {
			t.Fatal(err)
		}
	}
	delivered := []string{"A2", "A3", "A4"}
	enumerate("ack", acked, func(fsys *powercut.FS) error {
		a, err := pcAgent(fsys, srv)
		if err != nil {
			return err
		}
		c := a.Config()
		sp, err := a.openSpool(&c)
		if err != nil {
			return err
		}
		defer sp.Close()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var sent []string
		ob := outbox.New(outbox.Options{Spool: sp, Device: c.Device.Name, Send: func(_ context.Context, ms []outbox.Mail) ([]string, []error) {
			for _, m := range ms {
				for _, al := range m.Alarms {
					sent = append(sent, al.Code)
				}
			}
			cancel() // Run ends once this burst is settled
			return make([]string, len(ms)), make([]error, len(ms))
		}})
		ob.Run(ctx)
		if slices.Sort(sent); !slices.Equal(sent, delivered) {
			return fmt.Errorf("the outbox mailed %q, want %q", sent, delivered)
		}
		return nil
	}, func(c powercut.Cut, a *Agent, opErr error) {
		if opErr != nil {
			t.Errorf("%s: %v", c, opErr)
		}
		q, err := a.Queue()
		if err != nil {
			t.Errorf("%s: Queue = %v", c, err)
			return
		}
		// BEFORE was dropped for A4, and its unlink reaches flash with
		// the next directory fsync: until then a cut brings it back,
		// counted and queued (the spool's package doc).
		for i, al := range q.Spooled {
			if !slices.Contains(delivered, al.Code) && al.Code != "BEFORE" || slices.ContainsFunc(q.Spooled[i+1:], func(b alarm.Alarm) bool { return b.Code == al.Code }) {
				t.Errorf("%s: the queue holds %s: %+v", c, al.Code, q.Spooled)
			}
		}
		if d := alarm.CountsText(q.Dropped); d != "" && d != alarm.CountsText([alarm.Critical + 1]int{alarm.Major: 1}) {
			t.Errorf("%s: drops %s, want one major or none", c, d)
		}
		if q.Corrupt != 0 {
			t.Errorf("%s: damage in the spool: %s", c, q.LastDamage)
		}
	})

	for _, op := range []string{"commit", "first commit", "rotation", "append", "ack"} {
		if counts[op] == 0 {
			t.Errorf("%s: no cut point enumerated", op)
		}
	}
	t.Logf("cut points: commit %d (+%d on a new box), rotation %d, append %d, ack %d; each restarted %d ways",
		counts["commit"], counts["first commit"], counts["rotation"], counts["append"], counts["ack"], len(powercut.Losses))
	if vs := srv.Violations(); len(vs) > 0 {
		t.Errorf("the authorization server saw violations: %q", vs)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Error("the test ran out of time")
	}
}

func pcAlarm(code string) alarm.Alarm {
	return alarm.Alarm{Time: time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC), Severity: alarm.Major, Code: code, Source: "psu", Text: "alarm " + code}
}
