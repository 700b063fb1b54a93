package webui

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestLimiterBounded(t *testing.T) {
	clock := newClock()
	l := NewLoginLimiter(LimiterOptions{Burst: 2, Clients: 3, Now: clock.Now})
	for i := range 10 {
		if ok, _ := l.Take(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})); !ok {
			t.Fatalf("first try of client %d refused", i)
		}
	}
	l.mu.Lock()
	n := len(l.m)
	l.mu.Unlock()
	if n > 3 {
		t.Errorf("limiter holds %d clients; want at most 3", n)
	}
	last := netip.AddrFrom4([4]byte{10, 0, 0, 9})
	if ok, _ := l.Take(last); !ok {
		t.Fatal("second try refused")
	}
	if ok, wait := l.Take(last); ok || wait <= 0 || wait > DefaultLoginRefill {
		t.Errorf("third Take = %v, %v; want false and at most a minute", ok, wait)
	}
	l.Success(last)
	if ok, _ := l.Take(last); !ok {
		t.Error("Take after Success refused")
	}
}

func TestClientAddr(t *testing.T) {
	tests := []struct{ remote, want string }{
		{"192.0.2.1:5000", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:5000", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::"},
		{"[2001:db8:1:2:ffff::1]:443", "2001:db8:1:2::"},
		{"192.0.2.1", "192.0.2.1"},
		{"@", "invalid IP"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if got := ClientAddr(r).String(); got != tt.want {
			t.Errorf("ClientAddr(%q) = %s; want %s", tt.remote, got, tt.want)
		}
	}
}
