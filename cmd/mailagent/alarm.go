package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"mailagent/appliance/alarm"
)

type detailFlags []alarm.Detail

func (d *detailFlags) String() string { return fmt.Sprint(*d) }
func (d *detailFlags) Set(s string) error {
	det, err := alarm.ParseDetail(s)
	if err != nil {
		return err
	}
	*d = append(*d, det)
	return nil
}

var alarmFlags struct {
	severity, code, source string
	clear                  bool
	details                detailFlags
	timeout                time.Duration
}

var cmdAlarm = &Command{
	Name:  "alarm",
	Usage: "--severity S --code C [--source X] [--detail k=v]... TEXT | --clear --code C",
	Short: "raise or clear an alarm",
	Flags: func(fs *flag.FlagSet) {
		fs.StringVar(&alarmFlags.severity, "severity", "", "critical, major, minor, warning or info")
		fs.StringVar(&alarmFlags.code, "code", "", "what kind of alarm, e.g. LINK-DOWN")
		fs.StringVar(&alarmFlags.source, "source", "", "what raised it")
		fs.BoolVar(&alarmFlags.clear, "clear", false, "the alarm with this code is over")
		fs.Var(&alarmFlags.details, "detail", "a key=value fact (repeatable)")
		fs.DurationVar(&alarmFlags.timeout, "timeout", 2*time.Minute, "how long to wait for the agent")
	},
	Run: func(ctx context.Context, env *Env, args []string) error {
		f := alarmFlags
		a := alarm.Alarm{Time: time.Now(), Code: f.code, Source: f.source, Text: strings.Join(args, " "), Details: f.details}
		switch {
		case f.clear && f.severity != "":
			return usagef("alarm: --clear and --severity do not go together")
		case f.clear:
			a.Severity = alarm.Cleared
		case f.severity == "":
			return usagef("alarm: --severity is needed (critical, major, minor, warning or info), or --clear")
		default:
			s, err := alarm.ParseSeverity(f.severity)
			if err != nil {
				return usagef("alarm: %v", err)
			}
			a.Severity = s
		}
		if f.code == "" {
			return usagef("alarm: --code is needed")
		}
		if err := a.Validate(); err != nil {
			return usagef("alarm: %v", err)
		}
		ag, err := env.Agent()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		spooled, err := ag.Raise(ctx, a)
		if err != nil {
			return err
		}
		if spooled {
			fmt.Fprintf(env.Stdout, "ok: alarm %s %s queued on flash; the agent is not running and mails it when it starts\n", a.Severity, a.Code)
			return nil
		}
		fmt.Fprintf(env.Stdout, "ok: alarm %s %s taken\n", a.Severity, a.Code)
		return nil
	},
}
