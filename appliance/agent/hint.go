package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/ingest"
	"mailagent/appliance/internal/submit"
)

// Hint says in plain words what the administrator can do about err, or ""
// when nothing useful is known. Errors that know their own fix (a Hint
// method) come first, then what the SMTP server said.
func Hint(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	switch {
	case errors.Is(err, ErrNotConfigured):
		return "set what is missing with \"mailagent config set KEY VALUE\"; \"mailagent config check\" lists it"
	case errors.Is(err, ingest.ErrNoAgent):
		return "start the agent with \"mailagent run\""
	}
	return submit.Hint(err)
}

// WithHint returns err with what to do about it, which Hint then says.
func WithHint(err error, hint string) error { return &hinted{err, hint} }

// hinted is an error with what to do about it.
type hinted struct {
	err  error
	hint string
}

func (e *hinted) Error() string { return e.err.Error() }
func (e *hinted) Unwrap() error { return e.err }
func (e *hinted) Hint() string  { return e.hint }

// Raise hands an alarm to the running agent and returns once the agent has
// queued it. When no agent answers, the alarm goes straight into the
// persistent queue and spooled is true: the agent mails it when it starts.
// An error means the alarm was not taken.
func (a *Agent) Raise(ctx context.Context, al alarm.Alarm) (spooled bool, err error) {
	sctx, cancel := context.WithTimeout(ctx, raiseTimeout)
	defer cancel()
	err = ingest.Send(sctx, a.SocketPath(), al)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, ingest.ErrNoAgent), sctx.Err() != nil && ctx.Err() == nil:
		// not running, or not answering: the spool keeps it (a slow agent
		// may have taken it too; delivery is at least once)
		if serr := a.Spool(al); serr != nil {
			return false, fmt.Errorf("the agent is not running, and the alarm could not be queued on flash: %w", serr)
		}
		return true, nil
	}
	return false, err
}

// raiseTimeout is how long Raise waits for the agent before it queues the
// alarm itself.
const raiseTimeout = 10 * time.Second
