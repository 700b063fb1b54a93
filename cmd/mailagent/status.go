package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"mailagent/appliance/alarm"
)

var statusFlags struct{ json bool }

// statusReport is what "mailagent status --json" prints; it never holds a
// secret.
type statusReport struct {
	Board    string       `json:"board"`
	Clock    string       `json:"clock"` // "ok" or why not
	DataDir  string       `json:"data_dir"`
	Config   string       `json:"config"`             // "ok" or what is missing
	Warnings []string     `json:"warnings,omitempty"` // damaged files
	Auth     string       `json:"auth"`
	Queue    queueReport  `json:"queue"`
	OAuth2   *oauthReport `json:"oauth2,omitempty"`
}

type queueReport struct {
	Running    bool       `json:"agent_running"`
	Memory     int        `json:"memory,omitempty"`
	Spooled    int        `json:"spooled"`
	LastMail   *time.Time `json:"last_mail,omitempty"`
	LastReply  string     `json:"last_reply,omitempty"`
	Failing    string     `json:"failing,omitempty"`
	Since      *time.Time `json:"failing_since,omitempty"`
	Failures   int        `json:"failures,omitempty"` // tries failed in a row
	Hint       string     `json:"hint,omitempty"`
	NextTry    *time.Time `json:"next_try,omitempty"`
	Oldest     *time.Time `json:"oldest,omitempty"`
	Dropped    string     `json:"dropped,omitempty"`
	Corrupt    int        `json:"corrupt,omitempty"`
	LastDamage string     `json:"last_damage,omitempty"`
	SetAside   int        `json:"set_aside,omitempty"` // damaged records kept as spool/*.bad
	NewestBad  string     `json:"newest_bad,omitempty"`
}

type oauthReport struct {
	Mode            string     `json:"mode"`
	Account         string     `json:"account,omitempty"`
	State           string     `json:"state"`
	HasRefreshToken bool       `json:"has_refresh_token"`
	TokenExpiry     *time.Time `json:"token_expiry,omitempty"`
	Obtained        *time.Time `json:"obtained,omitempty"`
	Refreshed       *time.Time `json:"refreshed,omitempty"`
	LastError       string     `json:"last_error,omitempty"`
	LastErrorAt     *time.Time `json:"last_error_at,omitempty"`
	Hint            string     `json:"hint,omitempty"`
	NextTry         *time.Time `json:"next_try,omitempty"`
	SecretExpires   string     `json:"secret_expires,omitempty"`
	SecretDaysLeft  *int       `json:"secret_days_left,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

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
		c := a.Config()
		r := statusReport{Board: a.Board().Name, Clock: "ok", DataDir: a.DataDir(), Config: "ok", Warnings: a.Warnings(), Auth: c.SMTP.Auth}
		if now, unset := a.ClockUnset(); unset {
			r.Clock = fmt.Sprintf("not set: it reads %s, before this build; OAuth2 and TLS fail until it is set (NTP)", now.UTC().Format(time.RFC3339))
		}
		if err := a.Problems(); err != nil {
			r.Config = err.Error()
		}
		q, err := a.Queue()
		if err != nil {
			return err
		}
		r.Queue = queueReport{Spooled: len(q.Spooled), Dropped: alarm.CountsText(q.Dropped), Corrupt: q.Corrupt, LastDamage: q.LastDamage,
			SetAside: q.SetAside, NewestBad: q.NewestBad}
		if len(q.Spooled) > 0 {
			r.Queue.Oldest = timePtr(q.Spooled[0].Time)
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		live, _ := a.Live(lctx)
		if ls := live; ls != nil {
			// The running agent also counts what the memory queue dropped.
			r.Queue.Running, r.Queue.Memory, r.Queue.Dropped = true, ls.Memory, alarm.CountsText(ls.Dropped)
			r.Queue.LastMail, r.Queue.LastReply = timePtr(ls.LastDelivery), ls.LastReply
			r.Queue.Failing, r.Queue.Hint, r.Queue.NextTry = ls.Failing, ls.Hint, timePtr(ls.NextTry)
			r.Queue.Since, r.Queue.Failures = timePtr(ls.FailingSince), ls.Failures
			if !ls.Oldest.IsZero() {
				r.Queue.Oldest = timePtr(ls.Oldest)
			}
		}
		cancel()
		st, err := a.TokenStatus()
		if err != nil {
			return err
		}
		if live != nil && live.Token != nil && st != nil {
			st = live.Token // the running agent knows its access token and backoff
		}
		if st != nil {
			o := &oauthReport{Mode: st.Mode, Account: st.Account, State: st.State, HasRefreshToken: st.HasRefreshToken,
				TokenExpiry: timePtr(st.Expiry), Obtained: timePtr(st.Obtained), Refreshed: timePtr(st.Refreshed),
				LastError: st.LastError, LastErrorAt: timePtr(st.LastErrorAt), Hint: st.Hint, NextTry: timePtr(st.RetryAt)}
			if d := c.OAuth2.SecretExpires; !d.IsZero() {
				o.SecretExpires = d.Format("2006-01-02")
				days := int(time.Until(d.Time).Hours() / 24)
				o.SecretDaysLeft = &days
			}
			r.OAuth2 = o
		}
		if statusFlags.json {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}
		printStatus(env, &r)
		return nil
	},
}

func printStatus(env *Env, r *statusReport) {
	w := env.Stdout
	fmt.Fprintf(w, "board:      %s, data in %s\n", r.Board, r.DataDir)
	if r.Clock != "ok" {
		fmt.Fprintf(w, "clock:      %s\n", r.Clock)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning:    %s\n", warn)
	}
	if r.Config == "ok" {
		fmt.Fprintln(w, "config:     ok")
	} else {
		fmt.Fprintln(w, "config:     not ready:")
		for _, line := range strings.Split(r.Config, "\n") {
			fmt.Fprintf(w, "              %s\n", line)
		}
	}
	if !r.Queue.Running {
		fmt.Fprintln(w, "agent:      not running")
	}
	fmt.Fprintf(w, "queue:      %d alarms wait on flash", r.Queue.Spooled)
	if r.Queue.Running {
		fmt.Fprintf(w, ", %d in memory", r.Queue.Memory)
	}
	if r.Queue.Oldest != nil {
		fmt.Fprintf(w, ", oldest %s", r.Queue.Oldest.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if r.Queue.LastMail != nil {
		fmt.Fprintf(w, "last mail:  %s, %s\n", r.Queue.LastMail.Format(time.RFC3339), r.Queue.LastReply)
	}
	if r.Queue.Failing != "" {
		fmt.Fprintf(w, "delivery:   FAILING: %s\n", r.Queue.Failing)
		if r.Queue.Since != nil {
			fmt.Fprintf(w, "            since %s, %d tries in a row\n", r.Queue.Since.Format(time.RFC3339), r.Queue.Failures)
		}
		if r.Queue.Hint != "" {
			fmt.Fprintf(w, "            hint: %s\n", r.Queue.Hint)
		}
		if r.Queue.NextTry != nil {
			fmt.Fprintf(w, "            next try %s (mailagent queue flush tries now)\n", r.Queue.NextTry.Format(time.RFC3339))
		}
	}
	if r.Queue.Dropped != "" {
		fmt.Fprintf(w, "dropped:    %s (not yet reported)\n", r.Queue.Dropped)
	}
	if r.Queue.Corrupt > 0 {
		fmt.Fprintf(w, "damaged:    %d spool records set aside now (%s)\n", r.Queue.Corrupt, r.Queue.LastDamage)
	}
	if r.Queue.SetAside > r.Queue.Corrupt {
		fmt.Fprintf(w, "damaged:    %d spool records set aside as %s/spool/*.bad (newest %s); their alarms could not be read: look at them, then delete them\n",
			r.Queue.SetAside, r.DataDir, r.Queue.NewestBad)
	}
	fmt.Fprintf(w, "auth:       %s\n", r.Auth)
	o := r.OAuth2
	if o == nil {
		return
	}
	fmt.Fprintf(w, "mode:       %s\n", o.Mode)
	if o.Account != "" {
		fmt.Fprintf(w, "account:    %s\n", o.Account)
	}
	fmt.Fprintf(w, "state:      %s\n", o.State)
	if o.TokenExpiry != nil {
		fmt.Fprintf(w, "token:      expires %s\n", o.TokenExpiry.Format(time.RFC3339))
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
	if o.Hint != "" {
		fmt.Fprintf(w, "hint:       %s\n", o.Hint)
	}
	if o.SecretDaysLeft != nil {
		note := ""
		switch d := *o.SecretDaysLeft; {
		case d < 0:
			note = "  EXPIRED: create a new client secret and set oauth2.client_secret and oauth2.secret_expires"
		case d <= 30:
			note = "  renew it soon: create a new secret, then set oauth2.client_secret and oauth2.secret_expires"
		}
		fmt.Fprintf(w, "secret:     expires %s (%d days)%s\n", o.SecretExpires, *o.SecretDaysLeft, note)
	}
}
