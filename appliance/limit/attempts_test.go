package limit

import (
	"net/netip"
	"testing"
	"time"
)

// clock is a time the test moves by hand, from one goroutine.
type clock struct{ t time.Time }

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { return c.t }

func TestAttemptsBounded(t *testing.T) {
	clock := newClock()
	l := NewAttempts(AttemptOptions{Burst: 2, Clients: 3, Now: clock.Now})
	for i := range 10 {
		if ok, _ := l.Take(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})); !ok {
			t.Fatalf("first try of client %d refused", i)
		}
	}
	if n := l.tracked(); n > 3 {
		t.Errorf("limiter holds %d clients; want at most 3", n)
	}
	last := netip.AddrFrom4([4]byte{10, 0, 0, 9})
	if ok, _ := l.Take(last); !ok {
		t.Fatal("second try refused")
	}
	if ok, wait := l.Take(last); ok || wait <= 0 || wait > DefaultRefill {
		t.Errorf("third Take = %v, %v; want false and at most a minute", ok, wait)
	}
	l.Success(last)
	if ok, _ := l.Take(last); !ok {
		t.Error("Take after Success refused")
	}
}

func TestAttemptsRefill(t *testing.T) {
	clock := newClock()
	l := NewAttempts(AttemptOptions{Now: clock.Now})
	c := netip.MustParseAddr("192.0.2.7")
	for i := range DefaultBurst {
		if ok, _ := l.Take(c); !ok {
			t.Fatalf("try %d refused", i+1)
		}
	}
	ok, wait := l.Take(c)
	if ok || RetryAfter(wait) != 60 {
		t.Fatalf("try %d = %v, wait %v; want refused for 60 s", DefaultBurst+1, ok, wait)
	}
	clock.t = clock.t.Add(DefaultRefill)
	if ok, _ := l.Take(c); !ok {
		t.Error("no try back after a minute")
	}
	if ok, _ := l.Take(c); ok {
		t.Error("two tries back after a minute")
	}
}

func TestClient(t *testing.T) {
	tests := []struct{ remote, want string }{
		{"192.0.2.1:5000", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:5000", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::"},
		{"[fe80::1%eth0]:443", "fe80::"},
		{"192.0.2.1", "192.0.2.1"},
		{"@", "invalid IP"},
	}
	for _, tt := range tests {
		if got := Client(tt.remote).String(); got != tt.want {
			t.Errorf("Client(%q) = %s; want %s", tt.remote, got, tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		wait time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1500 * time.Millisecond, 2}, {time.Minute, 60}} {
		if got := RetryAfter(tt.wait); got != tt.want {
			t.Errorf("RetryAfter(%v) = %d, want %d", tt.wait, got, tt.want)
		}
	}
}
