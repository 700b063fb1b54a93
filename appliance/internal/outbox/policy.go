package outbox

import (
	"errors"
	"math/rand/v2"
	"net"
	"time"

	"github.com/emersion/go-smtp"
)

// hourly allows at most n mails in any sliding hour.
type hourly struct {
	n    int
	sent []time.Time // oldest first, within the last hour
}

// next is the earliest time a mail may go out, now or later.
func (h *hourly) next(now time.Time) time.Time {
	h.trim(now)
	if len(h.sent) < h.n {
		return now
	}
	return h.sent[len(h.sent)-h.n].Add(time.Hour)
}

// left is how many mails may go out now.
func (h *hourly) left(now time.Time) int {
	h.trim(now)
	return h.n - len(h.sent)
}

// record notes a mail sent at now.
func (h *hourly) record(now time.Time) {
	h.trim(now)
	h.sent = append(h.sent, now)
}

func (h *hourly) trim(now time.Time) {
	i := 0
	for i < len(h.sent) && !now.Before(h.sent[i].Add(time.Hour)) {
		i++
	}
	h.sent = h.sent[i:]
}

// Failure kinds decide what happens to the alarms of a failed mail.
type failure int

const (
	// retry soon with backoff: a 4xx reply, a network error, a timeout.
	retry failure = iota
	// hold: a 5xx reply or refused credentials; the alarms stay queued and
	// the cause is shown until it is fixed, retried only rarely.
	hold
)

// classify sorts a delivery error. SMTP replies decide by their code (4xx
// temporary, 5xx permanent); errors that are neither are network trouble
// unless they say what to fix (a Hint), which a retry will not.
func classify(err error) failure {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		if se.Code/100 == 4 {
			return retry
		}
		return hold
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return retry
	}
	var temp interface{ Temporary() bool }
	if errors.As(err, &temp) && temp.Temporary() {
		return retry
	}
	var h interface{ Hint() string }
	if errors.As(err, &h) && h.Hint() != "" {
		return hold
	}
	return retry
}

// Backoff bounds.
const (
	backoffMin  = 30 * time.Second
	backoffMax  = 30 * time.Minute
	holdBackoff = time.Hour // a held failure is tried again this often
)

// backoff is the wait after n consecutive failures of kind f: 30 s doubling
// to 30 min for retries, an hour for held failures, with ±20 % jitter so
// boxes do not retry in step.
func backoff(f failure, n int) time.Duration {
	d := holdBackoff
	if f == retry {
		d = backoffMin
		for i := 1; i < n && d < backoffMax; i++ {
			d *= 2
		}
		d = min(d, backoffMax)
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
