package outbox

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func TestHourly(t *testing.T) {
	h := hourly{n: 3}
	now := t0
	for i := range 3 {
		if next := h.next(now); !next.Equal(now) {
			t.Fatalf("mail %d: next = %v, want now", i, next)
		}
		h.record(now)
		now = now.Add(10 * time.Minute)
	}
	// three sent at 0, 10, 20 min; at 30 min the next may go at 60 min
	if next, want := h.next(now), t0.Add(time.Hour); !next.Equal(want) {
		t.Errorf("fourth mail: next = %v, want %v", next, want)
	}
	if next := h.next(t0.Add(time.Hour)); !next.Equal(t0.Add(time.Hour)) {
		t.Errorf("after an hour: next = %v, want then", next)
	}
}

type hinted struct{}

func (hinted) Error() string { return "fix it" }
func (hinted) Hint() string  { return "do this" }

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want failure
	}{
		{&smtp.SMTPError{Code: 432, EnhancedCode: smtp.EnhancedCode{4, 3, 2}}, retry},
		{fmt.Errorf("data: %w", &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 2, 252}}), hold},
		{&smtp.SMTPError{Code: 535}, hold},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, retry},
		{hinted{}, hold},
		{errors.New("something"), retry},
	}
	for _, tt := range tests {
		if got := classify(tt.err); got != tt.want {
			t.Errorf("classify(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 10: 30 * time.Minute, 50: 30 * time.Minute} {
		got := backoff(retry, n)
		if got < want*8/10 || got > want*12/10 {
			t.Errorf("backoff(retry, %d) = %v, want %v ±20%%", n, got, want)
		}
	}
	if got := backoff(hold, 1); got < 48*time.Minute {
		t.Errorf("backoff(hold, 1) = %v, want about an hour", got)
	}
}
