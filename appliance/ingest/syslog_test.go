package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"mailagent/appliance/alarm"
)

// fakeSink records the alarms it takes and counts the ones offered; it
// refuses those whose code is in refuse, or all of them for "*".
type fakeSink struct {
	mu     sync.Mutex
	got    []alarm.Alarm
	offers int
	refuse map[string]bool
}

var errFull = errors.New("the alarm queue is full of more severe alarms; try again later")

func (f *fakeSink) take(ctx context.Context, a alarm.Alarm) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.offers++
	if f.refuse[a.Code] || f.refuse["*"] {
		return errFull
	}
	f.got = append(f.got, a)
	return nil
}

func (f *fakeSink) alarms() []alarm.Alarm {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]alarm.Alarm(nil), f.got...)
}

// syncBuffer is a log destination tests can read, and wait on, while the
// listener writes.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // a token sent, without blocking, on every write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 1)} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n, err := b.b.Write(p)
	b.mu.Unlock()
	select {
	case b.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitLog waits until the log holds every one of want: the listener may
// count or close before its log line is written. It fails the test with
// what after ten seconds.
func waitLog(t *testing.T, logs *syncBuffer, what string, want ...string) {
	t.Helper()
	has := func(l string) bool {
		for _, w := range want {
			if !strings.Contains(l, w) {
				return false
			}
		}
		return true
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for !has(logs.String()) {
		select {
		case <-logs.wrote:
		case <-timeout.C:
			t.Errorf("%s in the log:\n%s", what, logs.String())
			return
		}
	}
}

// newSyslogForTest listens on 127.0.0.1 (UDP and TCP unless o says
// otherwise) and serves until the test ends. The log goes to the test's
// output and to the returned buffer.
func newSyslogForTest(t *testing.T, o SyslogOptions) (*Syslog, *syncBuffer) {
	t.Helper()
	if o.UDP == "" && o.TCP == "" {
		o.UDP, o.TCP = "127.0.0.1:0", "127.0.0.1:0"
	}
	logs := newSyncBuffer()
	o.Log = slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := ListenSyslog(o)
	if err != nil {
		t.Fatal(err)
	}
	s.testHookCounted = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	return s, logs
}

// waitStats waits until cond holds for the listener's counts, woken by
// each change of them. It fails the test after ten seconds.
func waitStats(t *testing.T, s *Syslog, what string, cond func(SyslogStats) bool) SyslogStats {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		if st := s.Stats(); cond(st) {
			return st
		}
		select {
		case <-s.testHookCounted:
		case <-timeout.C:
			t.Fatalf("waiting for %s: stats %+v", what, s.Stats())
		}
	}
}

func sendUDP(t *testing.T, s *Syslog, msgs ...string) {
	t.Helper()
	udp, _ := s.Addrs()
	c, err := net.Dial("udp", udp.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range msgs {
		if _, err := c.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
}

func dialTCP(t *testing.T, s *Syslog) net.Conn {
	t.Helper()
	_, tcp := s.Addrs()
	c, err := net.Dial("tcp", tcp.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sendTCP(t *testing.T, s *Syslog, stream string) {
	t.Helper()
	c := dialTCP(t, s)
	if _, err := io.WriteString(c, stream); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// want is what a test checks of an alarm.
type want struct {
	sev    alarm.Severity
	code   string
	source string
	text   string
	detail string // "key=value" that must be among the details
}

func check(t *testing.T, a alarm.Alarm, w want) {
	t.Helper()
	if a.Severity != w.sev || a.Code != w.code || a.Source != w.source || a.Text != w.text {
		t.Errorf("alarm = %v %q %q %q, want %v %q %q %q", a.Severity, a.Code, a.Source, a.Text, w.sev, w.code, w.source, w.text)
	}
	if w.detail != "" {
		found := false
		for _, d := range a.Details {
			found = found || d.Key+"="+d.Value == w.detail
		}
		if !found {
			t.Errorf("details %v lack %s", a.Details, w.detail)
		}
	}
	if a.Time.IsZero() {
		t.Errorf("alarm has no time")
	}
}

// The exact forms util-linux logger 2.38 sends (captured from
// `logger --rfc3164|--rfc5424 -n 127.0.0.1 -P PORT -d|-T [--octet-count]`).
var loggerLines = []struct {
	name string
	msg  string
	want want
}{
	{"rfc3164", `<27>Nov 24 11:32:49 vm myapp: hello udp`,
		want{alarm.Major, "myapp", "vm", "hello udp", "priority=daemon.err"}},
	{"rfc5424", `<27>1 2026-11-24T11:32:49.775610+00:00 vm myapp - - [timeQuality tzKnown="1" isSynced="0"] hello udp`,
		want{alarm.Major, "myapp", "vm", "hello udp", "priority=daemon.err"}},
	{"rfc5424 msgid sd", `<132>1 2026-11-24T11:32:49.843659+00:00 vm root - LINKDOWN [timeQuality tzKnown="1" isSynced="0"][x@1 a="b"] port 3 down`,
		want{alarm.Warning, "LINKDOWN", "vm", "port 3 down", "x@1.a=b"}},
	{"rfc3164 without host or time", `<10>sshd[42]: out of memory`,
		want{alarm.Critical, "sshd", "127.0.0.1", "out of memory", "priority=user.crit"}},
	{"rfc5424 nil host", `<11>1 - - app - ERR-7 - disk full`,
		want{alarm.Major, "ERR-7", "127.0.0.1", "disk full", "app=app"}},
}

func TestSyslogUDP(t *testing.T) {
	for _, tt := range loggerLines {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(fakeSink)
			s, _ := newSyslogForTest(t, SyslogOptions{UDP: "127.0.0.1:0", Sink: sink.take})
			sendUDP(t, s, tt.msg)
			waitStats(t, s, "one alarm", func(st SyslogStats) bool { return st.Accepted == 1 })
			check(t, sink.alarms()[0], tt.want)
		})
	}
}

func TestSyslogTCP(t *testing.T) {
	framings := []struct {
		name  string
		frame func(string) string
	}{
		{"newline", func(m string) string { return m + "\n" }},
		{"crlf", func(m string) string { return m + "\r\n" }},
		{"octet counting", func(m string) string { return fmt.Sprintf("%d %s", len(m), m) }},
	}
	for _, f := range framings {
		t.Run(f.name, func(t *testing.T) {
			sink := new(fakeSink)
			s, _ := newSyslogForTest(t, SyslogOptions{TCP: "127.0.0.1:0", Sink: sink.take})
			// All lines over one connection, as a relay sends them.
			var stream strings.Builder
			for _, tt := range loggerLines {
				stream.WriteString(f.frame(tt.msg))
			}
			sendTCP(t, s, stream.String())
			waitStats(t, s, "every alarm", func(st SyslogStats) bool { return st.Accepted == uint64(len(loggerLines)) })
			got := sink.alarms()
			for i, tt := range loggerLines {
				check(t, got[i], tt.want)
			}
		})
	}
}

func TestSyslogMixedFramingOneConnection(t *testing.T) {
	sink := new(fakeSink)
	s, _ := newSyslogForTest(t, SyslogOptions{TCP: "127.0.0.1:0", Sink: sink.take})
	m1 := `<27>Nov 24 11:32:49 vm a: one`
	m2 := "<27>Nov 24 11:32:49 vm b: two\nlines"
	sendTCP(t, s, m1+"\n"+fmt.Sprintf("%d %s", len(m2), m2)+"<27>Nov 24 11:32:49 vm c: three\n")
	waitStats(t, s, "three alarms", func(st SyslogStats) bool { return st.Accepted == 3 })
	got := sink.alarms()
	if got[0].Text != "one" || got[1].Text != "two\nlines" || got[2].Text != "three" {
		t.Errorf("texts = %q %q %q", got[0].Text, got[1].Text, got[2].Text)
	}
}

func TestSyslogCounts(t *testing.T) {
	tests := []struct {
		name string
		msgs []string
		want SyslogStats
	}{
		{"below min severity", []string{`<30>Nov 24 11:32:49 vm d: info`, `<29>Nov 24 11:32:49 vm d: notice`, `<28>Nov 24 11:32:49 vm d: warning`},
			SyslogStats{Received: 3, Accepted: 1, Ignored: 2}},
		{"malformed", []string{`hello`, `<999>x`, ``, `<28>Nov 24 11:32:49 vm d: still here`},
			SyslogStats{Received: 4, Accepted: 1, Malformed: 3}},
		{"refused", []string{`<27>Nov 24 11:32:49 vm FULL: lost`, `<27>Nov 24 11:32:49 vm FULL: lost too`, `<27>Nov 24 11:32:49 vm ok: taken`},
			SyslogStats{Received: 3, Accepted: 1, Refused: 2}},
	}
	for _, tt := range tests {
		for _, transport := range []string{"udp", "tcp"} {
			t.Run(tt.name+" "+transport, func(t *testing.T) {
				sink := &fakeSink{refuse: map[string]bool{"FULL": true}}
				s, logs := newSyslogForTest(t, SyslogOptions{MinSeverity: alarm.Warning, Sink: sink.take})
				if transport == "udp" {
					sendUDP(t, s, tt.msgs...)
				} else {
					sendTCP(t, s, strings.Join(tt.msgs, "\n")+"\n")
				}
				if transport == "tcp" && tt.name == "malformed" {
					tt.want.Received-- // the empty line between frames is no message
					tt.want.Malformed--
				}
				got := waitStats(t, s, "every message answered", func(st SyslogStats) bool {
					return st.Received == tt.want.Received && st.Accepted+st.Ignored+st.Malformed+st.Refused == st.Received
				})
				if got != tt.want {
					t.Errorf("stats = %+v, want %+v", got, tt.want)
				}
				if a := sink.alarms(); len(a) != 1 || a[0].Severity < alarm.Warning {
					t.Errorf("sink got %v", a)
				}
				if tt.want.Refused > 0 {
					waitLog(t, logs, "no refusal", "syslog alarm refused", "queue is full")
				}
				if tt.want.Malformed > 0 {
					waitLog(t, logs, "no malformed message", "syslog message not understood")
				}
			})
		}
	}
}

func TestSyslogRefusalLogThrottled(t *testing.T) {
	sink := &fakeSink{refuse: map[string]bool{"FULL": true}}
	s, logs := newSyslogForTest(t, SyslogOptions{UDP: "127.0.0.1:0", Sink: sink.take})
	for range 20 {
		sendUDP(t, s, `<27>Nov 24 11:32:49 vm FULL: lost`)
	}
	waitStats(t, s, "twenty refusals", func(st SyslogStats) bool { return st.Refused == 20 })
	if n := strings.Count(logs.String(), "syslog alarm refused"); n < 1 || n >= 20 {
		t.Errorf("%d refusal lines for 20 refusals, want at least one and fewer than 20", n)
	}
}

func TestSyslogLongMessagesCut(t *testing.T) {
	sink := new(fakeSink)
	s, _ := newSyslogForTest(t, SyslogOptions{MaxFrame: 64, Sink: sink.take})
	long := `<27>Nov 24 11:32:49 vm app: ` + strings.Repeat("x", 500)
	sendUDP(t, s, long)
	sendTCP(t, s, long+"\n"+`<27>Nov 24 11:32:49 vm app: next`+"\n")
	waitStats(t, s, "three alarms", func(st SyslogStats) bool { return st.Accepted == 3 })
	for i, a := range sink.alarms() {
		if len(a.Text) > 64 {
			t.Errorf("alarm %d: text of %d bytes passed MaxFrame 64", i, len(a.Text))
		}
	}
}

func TestSyslogBrokenFramingClosesConnection(t *testing.T) {
	sink := new(fakeSink)
	s, logs := newSyslogForTest(t, SyslogOptions{TCP: "127.0.0.1:0", Sink: sink.take})
	c := dialTCP(t, s)
	io.WriteString(c, "12x <27>Nov 24 11:32:49 vm app: hi\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("connection still open after a broken frame")
	}
	st := waitStats(t, s, "one malformed", func(st SyslogStats) bool { return st.Malformed == 1 })
	if st.Accepted != 0 {
		t.Errorf("stats = %+v", st)
	}
	waitLog(t, logs, "no framing error", "framing broken")
	// The listener goes on.
	sendTCP(t, s, "<27>Nov 24 11:32:49 vm app: after\n")
	waitStats(t, s, "one alarm", func(st SyslogStats) bool { return st.Accepted == 1 })
}

// closedByListener waits until the listener closes c (a read ends other
// than by its deadline).
func closedByListener(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: Read = %v, want the connection closed by the listener", what, err)
	}
}

func TestSyslogQuietConnectionClosed(t *testing.T) {
	sink := new(fakeSink)
	// Quiet and Idle are read deadlines on a real socket, so they run on
	// the wall clock (no bubble fakes them): short ones.
	s, logs := newSyslogForTest(t, SyslogOptions{TCP: "127.0.0.1:0", Sink: sink.take, Quiet: 50 * time.Millisecond, Idle: time.Hour})
	closedByListener(t, dialTCP(t, s), "a connection that sends nothing")
	waitLog(t, logs, "no idle close", "idle", "waited=50ms")
}

func TestSyslogIdleConnectionClosed(t *testing.T) {
	sink := new(fakeSink)
	s, logs := newSyslogForTest(t, SyslogOptions{TCP: "127.0.0.1:0", Sink: sink.take, Quiet: time.Hour, Idle: 50 * time.Millisecond})
	c := dialTCP(t, s)
	io.WriteString(c, "<27>Nov 24 11:32:49 vm app: one\n")
	closedByListener(t, c, "a connection idle after a message")
	waitLog(t, logs, "no idle close", "idle", "waited=50ms")
	if st := s.Stats(); st.Accepted != 1 {
		t.Errorf("stats = %+v, want the message accepted", st)
	}
}

// TestSyslogQuietConnectionsDoNotKeepSendersOut: 16 connections that send
// nothing filled every slot for the 5-minute idle timeout, and a real
// sender was reset and its alarm lost. Now one client holds at most
// MaxConnsPerClient, a new connection closes a quiet one for room, and a
// flood from one client does not touch another client's connection.
func TestSyslogQuietConnectionsDoNotKeepSendersOut(t *testing.T) {
	sink := new(fakeSink)
	s, logs := newSyslogForTest(t, SyslogOptions{TCP: "127.0.0.1:0", Sink: sink.take})
	_, tcp := s.Addrs()
	from := func(ip string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := d.Dial("tcp", tcp.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// A sender on another host, connected before the flood.
	other := from("127.0.0.2")
	io.WriteString(other, "<27>Nov 24 11:32:49 pbx app: before the flood\n")
	waitStats(t, s, "the first alarm", func(st SyslogStats) bool { return st.Accepted == 1 })

	var quiet []net.Conn
	for range DefaultSyslogConns {
		quiet = append(quiet, from("127.0.0.1"))
	}
	sender := from("127.0.0.1")
	io.WriteString(sender, "<27>Nov 24 11:32:49 vm app: real alarm\n")
	waitStats(t, s, "the real sender's alarm", func(st SyslogStats) bool { return st.Accepted == 2 })
	// The listener closed the oldest quiet ones for room: all but the last
	// MaxConnsPerClient-1 of them.
	for i, c := range quiet[:len(quiet)-(DefaultSyslogConnsPerClient-1)] {
		closedByListener(t, c, fmt.Sprintf("quiet connection %d", i))
	}
	waitLog(t, logs, "no line about room", "connection closed to make room", "syslog tcp")

	io.WriteString(other, "<27>Nov 24 11:32:49 pbx app: after the flood\n")
	st := waitStats(t, s, "the other host's second alarm", func(st SyslogStats) bool { return st.Accepted == 3 })
	if st.ConnsRejected != 0 || st.ConnsEvicted != uint64(len(quiet)-(DefaultSyslogConnsPerClient-1)) {
		t.Errorf("stats = %+v, want none rejected and %d evicted", st, len(quiet)-(DefaultSyslogConnsPerClient-1))
	}
}

// TestSyslogBusyConnectionsKept: a connection handing a message to the
// sink is never closed for room; a client whose every slot is busy is
// refused a new connection, and once the sink answers it is served again.
func TestSyslogBusyConnectionsKept(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	var mu sync.Mutex
	taken := 0
	sink := func(ctx context.Context, a alarm.Alarm) error {
		if a.Code == "slow" {
			entered <- struct{}{}
			<-release
		}
		mu.Lock()
		taken++
		mu.Unlock()
		return nil
	}
	s, logs := newSyslogForTest(t, SyslogOptions{TCP: "127.0.0.1:0", Sink: sink, MaxConns: 1, MaxConnsPerClient: 1})
	a := dialTCP(t, s)
	io.WriteString(a, "<27>Nov 24 11:32:49 vm slow: first\n")
	<-entered
	b := dialTCP(t, s)
	closedByListener(t, b, "a new connection while the only one is busy")
	waitLog(t, logs, "no refusal", "connection refused: every open one is busy")
	close(release)
	waitStats(t, s, "the first alarm", func(st SyslogStats) bool { return st.Accepted == 1 })
	if st := s.Stats(); st.ConnsRejected != 1 || st.ConnsEvicted != 0 {
		t.Errorf("stats = %+v, want 1 rejected, none evicted", st)
	}
	// Idle now: a new connection takes its place.
	c := dialTCP(t, s)
	io.WriteString(c, "<27>Nov 24 11:32:49 vm app: second\n")
	waitStats(t, s, "the second alarm", func(st SyslogStats) bool { return st.Accepted == 2 })
	closedByListener(t, a, "the idle connection")
}

// A sink that blocks (a flash write that hangs) does not keep Close from
// returning: Close cancels it.
func TestSyslogCloseCancelsSink(t *testing.T) {
	entered := make(chan struct{}, 1)
	sink := func(ctx context.Context, a alarm.Alarm) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	s, err := ListenSyslog(SyslogOptions{UDP: "127.0.0.1:0", TCP: "127.0.0.1:0", Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- s.Serve(context.Background()) }()
	sendTCP(t, s, "<27>Nov 24 11:32:49 vm app: stuck\n")
	<-entered
	s.Close()
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
	if st := s.Stats(); st.Refused != 1 {
		t.Errorf("stats = %+v, want the stuck alarm refused", st)
	}
	if err := s.Serve(context.Background()); err != nil {
		t.Errorf("Serve after Close = %v", err)
	}
}

func TestListenSyslogErrors(t *testing.T) {
	sink := new(fakeSink)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		o    SyslogOptions
		want string
	}{
		{"nothing to listen on", SyslogOptions{Sink: sink.take}, "no address"},
		{"no sink", SyslogOptions{UDP: "127.0.0.1:0"}, "no sink"},
		{"bad address", SyslogOptions{UDP: "127.0.0.1:x", Sink: sink.take}, "listen syslog udp"},
		{"port taken", SyslogOptions{UDP: "127.0.0.1:0", TCP: busy.Addr().String(), Sink: sink.take}, "listen syslog tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ListenSyslog(tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ListenSyslog = %v, want an error with %q", err, tt.want)
			}
			if s != nil {
				s.Close()
			}
		})
	}
}
