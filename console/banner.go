package console

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"mailagent/appliance/agent"
)

// showBanner prints what stands in the way of mail when it differs from
// what the session last showed.
func (s *session) showBanner(ctx context.Context) {
	b := Banner(s.o.Backend.Status(ctx))
	if b == s.banner {
		return
	}
	if b == "" {
		fmt.Fprintln(s.t, "ok: nothing stands in the way of mail any more")
	}
	fmt.Fprint(s.t, b)
	s.banner = b
}

// Banner says, in a few lines each starting with "!!", what keeps mail
// from being delivered; "" when nothing does.
func Banner(st agent.Status) string {
	var b strings.Builder
	if !st.Running {
		fmt.Fprintln(&b, "!! the agent is not running: alarms wait on flash until it starts")
	}
	if d := st.Delivery; d.Failing != "" {
		fmt.Fprintf(&b, "!! MAIL CANNOT BE DELIVERED: %s\n", d.Failing)
		if d.Hint != "" {
			fmt.Fprintf(&b, "!!   %s\n", d.Hint)
		}
		if n := st.Queue.Memory + st.Queue.Spooled; n > 0 {
			fmt.Fprintf(&b, "!!   %s wait", plural(n, "alarm"))
			if d.NextTry != nil {
				fmt.Fprintf(&b, "; next try %s", d.NextTry.Local().Format(time.DateTime))
			}
			fmt.Fprintln(&b)
		}
	}
	if t := st.OAuth2; t != nil && t.Fix != "" {
		fmt.Fprintf(&b, "!! OAuth2: %s\n!!   %s\n", t.Summary, t.Fix)
	}
	if t := st.OAuth2; t != nil && t.SecretNote != "" && t.SecretDaysLeft != nil {
		fmt.Fprintf(&b, "!! OAuth2 client secret expires %s (%s): %s\n", t.SecretExpires, plural(*t.SecretDaysLeft, "day"), t.SecretNote)
	}
	if len(st.Problems) > 0 {
		var keys, other []string
		for _, p := range st.Problems {
			switch {
			case p.Key == "":
				other = append(other, p.Message)
			case !slices.Contains(keys, p.Key):
				keys = append(keys, p.Key)
			}
		}
		if len(keys) > 0 {
			// a keyless problem beside keys says there is no file yet,
			// which setting them mends
			fmt.Fprintf(&b, "!! mail cannot be sent yet: %s (set, then commit)\n", strings.Join(keys, ", "))
		} else {
			for _, m := range other {
				fmt.Fprintf(&b, "!! %s\n", m)
			}
		}
	}
	if st.Clock != "" && st.Clock != "ok" {
		fmt.Fprintf(&b, "!! clock %s\n", st.Clock)
	}
	return b.String()
}
