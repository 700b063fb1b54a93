package ingest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mailagent/appliance/alarm"
)

func newForTest(t *testing.T, sink Sink) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), SocketName)
	s, err := ListenSocket(path, sink, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	return path
}

func TestSocketDelivers(t *testing.T) {
	var mu sync.Mutex
	var got []alarm.Alarm
	path := newForTest(t, func(ctx context.Context, a alarm.Alarm) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, a)
		return nil
	})
	a := alarm.Alarm{Severity: alarm.Major, Code: "LINK-DOWN", Source: "eth1", Text: "link lost\nsecond line",
		Details: []alarm.Detail{{Key: "port", Value: "3"}}}
	if err := Send(context.Background(), path, a); err != nil {
		t.Fatalf("Send = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Code != "LINK-DOWN" || got[0].Text != a.Text || got[0].Details[0].Value != "3" || got[0].Time.IsZero() {
		t.Errorf("sink got %+v", got)
	}
}

func TestSocketRefusals(t *testing.T) {
	path := newForTest(t, func(ctx context.Context, a alarm.Alarm) error {
		if a.Code == "FULL" {
			return errors.New("queue full")
		}
		return nil
	})
	tests := []struct {
		name string
		a    alarm.Alarm
		want string
	}{
		{"sink refuses", alarm.Alarm{Severity: alarm.Info, Code: "FULL"}, "queue full"},
		{"invalid", alarm.Alarm{Severity: alarm.Info, Code: ""}, "code is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Send(context.Background(), path, tt.a)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Send = %v, want %q", err, tt.want)
			}
		})
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("not json\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 200)
	n, _ := c.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "error: request is not an alarm") {
		t.Errorf("answer to garbage = %q", buf[:n])
	}
}

func TestNoAgent(t *testing.T) {
	err := Send(context.Background(), filepath.Join(t.TempDir(), "none.sock"), alarm.Alarm{Code: "X"})
	if !errors.Is(err, ErrNoAgent) {
		t.Errorf("Send without agent = %v, want ErrNoAgent", err)
	}
}

func TestSecondAgentRefused(t *testing.T) {
	path := newForTest(t, func(context.Context, alarm.Alarm) error { return nil })
	if _, err := ListenSocket(path, nil, slog.Default()); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second ListenSocket = %v, want already running", err)
	}
}

func TestSocketControl(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	s, err := ListenSocket(path, func(context.Context, alarm.Alarm) error { return nil }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.SetControl(func(ctx context.Context, op string) (any, error) {
		if op == "status" {
			return map[string]int{"queued": 3}, nil
		}
		return nil, errors.New("no such operation")
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	var v map[string]int
	if err := Ask(context.Background(), path, "status", &v); err != nil || v["queued"] != 3 {
		t.Errorf("Ask(status) = %v, %v", v, err)
	}
	if err := Ask(context.Background(), path, "explode", &v); err == nil || !strings.Contains(err.Error(), "no such operation") {
		t.Errorf("Ask(explode) = %v", err)
	}
	if err := Send(context.Background(), path, alarm.Alarm{Severity: alarm.Info, Code: "X"}); err != nil {
		t.Errorf("an alarm after a question: %v", err)
	}
}
