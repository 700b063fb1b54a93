// Package ingest takes alarms in from the outside and hands each to a sink:
// the local unix socket that `mailagent alarm` talks to, syslog over UDP
// and TCP (syslog.go), and HTTP POST /alarm and /alertmanager (http.go).
//
// The socket protocol is one JSON-encoded alarm.Alarm per line from the
// client, answered by one line: "ok" once the sink has taken the alarm, or
// "error: <reason>" when it has not. A client that gets no "ok" must treat
// the alarm as not taken. A line {"op":"NAME"} instead asks the agent
// something (status, flush); it is answered "ok <JSON>" or "error: …". The
// alarm is read as POST /alarm reads JSON, control characters cleaned out.
// Clients (Send, Ask) trust only a socket served by their own user or root
// (SO_PEERCRED).
//
// Every listener here is a limit.Listener: bounded connections, the quiet
// ones closed first for room, and an accept loop that pauses after an
// error (out of file descriptors) instead of ending.
package ingest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/limit"
	"mailagent/appliance/lograte"
)

// SocketName is the agent's socket in the board's run directory.
const SocketName = "mailagent.sock"

// maxLine bounds one request line, so a client cannot fill memory.
const maxLine = 64 << 10

// socketConns is how many clients the socket serves at once; beyond it the
// quiet ones make room (limit.Listener), so a local process holding
// connections open cannot keep "mailagent alarm" out.
const socketConns = 32

// Deadlines of a socket client: to send its request line, and for the
// whole exchange (the sink may wait for flash).
const (
	requestWithin  = 10 * time.Second
	exchangeWithin = 2 * time.Minute
)

// Sink takes an alarm; it returns only once the alarm is safe, or an error.
type Sink func(ctx context.Context, a alarm.Alarm) error

// Socket serves the local alarm socket.
type Socket struct {
	ln      *limit.Listener
	sink    Sink
	control Control
	log     *slog.Logger
	wg      sync.WaitGroup
	// refusals keeps a storm of refused alarms from flooding the log; the
	// sender is told each time.
	refusals lograte.Limiter
}

// Control answers an operation asked over the socket with a value that is
// sent back as JSON.
type Control func(ctx context.Context, op string) (any, error)

// SetControl sets what answers operations; without it they are refused.
// Call it before Serve.
func (s *Socket) SetControl(c Control) { s.control = c }

// ListenSocket listens on the unix socket at path (mode 0600, directory made
// 0700 if missing). A stale socket left by a crash is replaced; a socket that
// another agent still answers on is an error.
func ListenSocket(path string, sink Sink, log *slog.Logger) (*Socket, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another agent is already running (it answers on %s)", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return &Socket{ln: limit.Listen(ln, limit.ListenOptions{Name: "socket", Max: socketConns, Log: log}), sink: sink, log: log}, nil
}

// Serve answers clients until ctx ends or Close is called. An error of
// accept (out of file descriptors) pauses it, never ends it: the listener
// tries again (limit.Listener).
func (s *Socket) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.wg.Wait()
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(ctx, c)
		}()
	}
}

// Close stops listening and removes the socket file.
func (s *Socket) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// serve answers one client. The alarm is read as POST /alarm reads JSON
// (alarm.ParseJSON), so the socket cleans it as every other way in does:
// control characters out of text, source and details.
func (s *Socket) serve(ctx context.Context, c net.Conn) {
	defer c.Close()
	start := time.Now()
	c.SetDeadline(start.Add(exchangeWithin))
	c.SetReadDeadline(start.Add(requestWithin))
	r := bufio.NewReaderSize(c, 4096)
	line, err := readLine(r)
	if err != nil {
		fmt.Fprintf(c, "error: %s\n", oneLine(err.Error()))
		return
	}
	s.ln.Active(c)
	c.SetReadDeadline(start.Add(exchangeWithin))
	var req struct {
		Op string `json:"op"`
	}
	if json.Unmarshal(line, &req) == nil && req.Op != "" {
		s.answer(ctx, c, req.Op)
		return
	}
	as, err := alarm.ParseJSON(bytes.NewReader(line))
	if err == nil && len(as) != 1 {
		err = fmt.Errorf("%d alarms on one line; send one", len(as))
	}
	if err != nil {
		fmt.Fprintf(c, "error: request is not an alarm: %s\n", oneLine(err.Error()))
		return
	}
	a := as[0]
	if err := s.sink(ctx, a); err != nil {
		s.refusals.Log(s.log, slog.LevelWarn, "alarm not taken", "code", a.Code, "err", err)
		fmt.Fprintf(c, "error: %s\n", oneLine(err.Error()))
		return
	}
	fmt.Fprint(c, "ok\n")
}

// answer runs a control operation.
func (s *Socket) answer(ctx context.Context, c net.Conn, op string) {
	if s.control == nil {
		fmt.Fprintf(c, "error: operation %q is not offered\n", oneLine(op))
		return
	}
	v, err := s.control(ctx, op)
	if err == nil {
		var b []byte
		if b, err = json.Marshal(v); err == nil {
			fmt.Fprintf(c, "ok %s\n", b)
			return
		}
	}
	fmt.Fprintf(c, "error: %s\n", oneLine(err.Error()))
}

// Ask sends an operation to the agent listening at path and decodes its
// answer into v. It returns ErrNoAgent (wrapped) when nothing listens.
func Ask(ctx context.Context, path, op string, v any) error {
	c, err := dialAgent(ctx, path)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	b, _ := json.Marshal(struct {
		Op string `json:"op"`
	}{op})
	if _, err := c.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("asking the agent: %w", err)
	}
	answer, err := readLine(bufio.NewReader(c))
	if err != nil {
		return fmt.Errorf("the agent did not answer: %w", err)
	}
	rest, ok := strings.CutPrefix(string(answer), "ok ")
	if !ok {
		return fmt.Errorf("the agent refused %s: %s", op, strings.TrimPrefix(string(answer), "error: "))
	}
	return json.Unmarshal([]byte(rest), v)
}

func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			return nil, fmt.Errorf("reading request: %w", err)
		}
		line = append(line, chunk...)
		if len(line) > maxLine {
			return nil, fmt.Errorf("request longer than %d bytes", maxLine)
		}
		if !isPrefix {
			return line, nil
		}
	}
}

func oneLine(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "\r", " "), "\n", " ") }

// ErrNoAgent means nothing answers on the socket: the agent is not running.
// It also means that what answers is not the agent (ErrNotAgent): the
// caller does what it does without an agent, such as spooling the alarm.
var ErrNoAgent = errors.New("ingest: the agent is not running")

// ErrNotAgent means the socket is served by a process of another user,
// which cannot be the agent: another user's process that took the run
// directory would take alarms and drop them. Errors wrapping it wrap
// ErrNoAgent too.
var ErrNotAgent = errors.New("ingest: the socket is not the agent's")

// testHookPeerUID, if set, replaces the user SO_PEERCRED reports for the
// socket's server.
var testHookPeerUID func(uid uint32) uint32

// dialAgent connects to the agent's socket at path and checks that the
// process listening on it runs as this user or as root, as the agent does
// (SO_PEERCRED), before anything is sent. ErrNoAgent (wrapped) when
// nothing listens or another user's process does (ErrNotAgent).
func dialAgent(ctx context.Context, path string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoAgent, err)
	}
	uid, err := peerUID(c)
	if err == nil && testHookPeerUID != nil {
		uid = testHookPeerUID(uid)
	}
	switch {
	case err != nil:
		c.Close()
		return nil, fmt.Errorf("%w: %w: %s: who serves it cannot be told: %w", ErrNoAgent, ErrNotAgent, path, err)
	case uid != 0 && int(uid) != os.Geteuid():
		c.Close()
		return nil, fmt.Errorf("%w: %w: %s is served by a process of uid %d, neither this user (uid %d) nor root; check who owns %s",
			ErrNoAgent, ErrNotAgent, path, uid, os.Geteuid(), filepath.Dir(path))
	}
	return c, nil
}

// Send hands a to the agent listening at path and waits for its answer.
// It returns ErrNoAgent (wrapped) when nothing listens there.
func Send(ctx context.Context, path string, a alarm.Alarm) error {
	c, err := dialAgent(ctx, path)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("sending alarm to the agent: %w", err)
	}
	answer, err := readLine(bufio.NewReader(c))
	if err != nil {
		return fmt.Errorf("the agent did not answer: %w", err)
	}
	if string(answer) == "ok" {
		return nil
	}
	return fmt.Errorf("the agent refused the alarm: %s", strings.TrimPrefix(string(answer), "error: "))
}
