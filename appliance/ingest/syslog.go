package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/limit"
	"mailagent/appliance/lograte"
)

// Defaults of SyslogOptions.
const (
	DefaultSyslogConns          = 16
	DefaultSyslogConnsPerClient = 4
	DefaultSyslogQuiet          = 10 * time.Second
	DefaultSyslogIdle           = 5 * time.Minute
)

// SyslogOptions configure ListenSyslog.
type SyslogOptions struct {
	// UDP and TCP are the addresses to listen on, "host:port"; "" leaves
	// that transport off. At least one must be set.
	UDP, TCP string
	// MinSeverity is the lowest severity taken; messages below it are
	// ignored and counted.
	MinSeverity alarm.Severity
	// Sink takes each alarm.
	Sink Sink
	// Log receives what the listener has to say; nil discards it.
	Log *slog.Logger
	// MaxConns is how many TCP connections are served at once. If zero,
	// DefaultSyslogConns is used.
	MaxConns int
	// MaxConnsPerClient is how many of them one client (limit.Client) may
	// hold. If zero, DefaultSyslogConnsPerClient is used.
	MaxConnsPerClient int
	// MaxFrame is the largest message read; longer ones are cut to it. If
	// zero, alarm.DefaultSyslogFrame is used.
	MaxFrame int
	// Quiet is how long a new TCP connection may take to send its first
	// message before it is closed. If zero, DefaultSyslogQuiet is used.
	Quiet time.Duration
	// Idle is how long a TCP connection may take to send its next message
	// before it is closed. If zero, DefaultSyslogIdle is used.
	Idle time.Duration
}

// SyslogStats counts what a Syslog listener has read. Once the listener
// has finished with them, Received = Accepted + Ignored + Malformed + Refused.
type SyslogStats struct {
	Received  uint64 // messages read (datagrams and TCP frames)
	Accepted  uint64 // taken by the sink
	Ignored   uint64 // below MinSeverity
	Malformed uint64 // not syslog, or a TCP stream whose framing broke
	Refused   uint64 // the sink returned an error: the alarm is lost
	// ConnsRejected counts TCP connections closed at once because the
	// limits were reached and every open connection was busy with a
	// message; ConnsEvicted counts open connections closed to make room
	// for a new one (see Syslog).
	ConnsRejected, ConnsEvicted uint64
}

// Syslog receives syslog messages over UDP (RFC 5426: one datagram, one
// message) and TCP (RFC 6587: octet-counted or newline framing, told
// apart per frame), turns each into an alarm with alarm.ParseSyslog and
// hands it to the sink. A message without a host name gets the sender's IP
// address as its source.
//
// Syslog has no acknowledgement: a sender never learns whether a message
// was taken. A message the sink refuses (full queues) is lost for the
// sender too; it is counted in SyslogStats.Refused and logged, at most one
// line every refusalLogEvery, so a storm cannot flood the log. Over TCP the
// next message of a connection is read only once the sink has answered for
// the previous one, so a slow sink slows the sender down instead of losing
// messages; over UDP, datagrams wait in the kernel's socket buffer and what
// overflows it is lost uncounted. Senders that need every alarm to arrive
// should use POST /alarm, which answers.
//
// TCP connections are limited (limit.Listener): MaxConns at once,
// MaxConnsPerClient from one client. A new connection beyond either makes
// room by closing one that is not handing a message over: first one that
// has sent nothing yet, then the one idle longest (of the same client when
// that client is at its limit, else of the client holding the most). Only
// when every connection is busy with a message is the new one refused. A
// connection must send its first message within Quiet and each next one
// within Idle. So connections that send nothing cannot keep real senders
// out: they hold at most MaxConnsPerClient slots per client, for Quiet at
// most, and give them up to any new connection.
type Syslog struct {
	o         SyslogOptions
	log       *slog.Logger
	udp       *net.UDPConn
	tcp       *limit.Listener
	maxFrame  int
	maxConns  int
	perClient int
	quiet     time.Duration
	idle      time.Duration

	mu     sync.Mutex
	closed bool
	cancel context.CancelFunc // of the running Serve
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup // Serve's loops and the connections

	received, accepted, ignored, malformed, refused atomic.Uint64

	refusals lograte.Limiter

	// testHookCounted, if not nil, gets a token, without blocking, each
	// time a count changes.
	testHookCounted chan struct{}
}

// counted tells a test waiting on testHookCounted that a count changed.
func (s *Syslog) counted() {
	select {
	case s.testHookCounted <- struct{}{}:
	default:
	}
}

// refusalLogEvery spaces the log lines about refused alarms.
const refusalLogEvery = 10 * time.Second

// ListenSyslog binds the UDP and TCP addresses of o. Serve then receives
// on them.
func ListenSyslog(o SyslogOptions) (*Syslog, error) {
	if o.UDP == "" && o.TCP == "" {
		return nil, errors.New("listen syslog: no address to listen on")
	}
	if o.Sink == nil {
		return nil, errors.New("listen syslog: no sink")
	}
	s := &Syslog{
		o:         o,
		log:       o.Log,
		maxFrame:  o.MaxFrame,
		maxConns:  o.MaxConns,
		perClient: o.MaxConnsPerClient,
		quiet:     o.Quiet,
		idle:      o.Idle,
		conns:     make(map[net.Conn]struct{}),
	}
	s.refusals.Period = refusalLogEvery
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxFrame <= 0 {
		s.maxFrame = alarm.DefaultSyslogFrame
	}
	if s.maxConns <= 0 {
		s.maxConns = DefaultSyslogConns
	}
	if s.perClient <= 0 {
		s.perClient = DefaultSyslogConnsPerClient
	}
	if s.quiet <= 0 {
		s.quiet = DefaultSyslogQuiet
	}
	if s.idle <= 0 {
		s.idle = DefaultSyslogIdle
	}
	if o.UDP != "" {
		addr, err := net.ResolveUDPAddr("udp", o.UDP)
		if err != nil {
			return nil, fmt.Errorf("listen syslog udp %s: %w", o.UDP, err)
		}
		s.udp, err = net.ListenUDP("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen syslog udp: %w", err)
		}
	}
	if o.TCP != "" {
		ln, err := net.Listen("tcp", o.TCP)
		if err != nil {
			if s.udp != nil {
				s.udp.Close()
			}
			return nil, fmt.Errorf("listen syslog tcp: %w", err)
		}
		s.tcp = limit.Listen(ln, limit.ListenOptions{Name: "syslog tcp", Max: s.maxConns, PerClient: s.perClient, Log: s.log})
	}
	return s, nil
}

// Addrs returns the addresses listened on; nil for a transport that is off.
func (s *Syslog) Addrs() (udp, tcp net.Addr) {
	if s.udp != nil {
		udp = s.udp.LocalAddr()
	}
	if s.tcp != nil {
		tcp = s.tcp.Addr()
	}
	return udp, tcp
}

// Stats returns the counts so far.
func (s *Syslog) Stats() SyslogStats {
	st := SyslogStats{
		Received:  s.received.Load(),
		Accepted:  s.accepted.Load(),
		Ignored:   s.ignored.Load(),
		Malformed: s.malformed.Load(),
		Refused:   s.refused.Load(),
	}
	if s.tcp != nil {
		ls := s.tcp.Stats()
		st.ConnsRejected, st.ConnsEvicted = ls.Refused, ls.Evicted
	}
	return st
}

// Serve receives messages until ctx ends or Close is called, and returns
// once every connection is finished. It returns nil then, or the error of
// a listener that failed (the other is stopped too).
func (s *Syslog) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.cancel = cancel
	errc := make(chan error, 2)
	n := 0
	if s.udp != nil {
		n++
	}
	if s.tcp != nil {
		n++
	}
	s.wg.Add(n)
	s.mu.Unlock()

	if s.udp != nil {
		go func() { defer s.wg.Done(); errc <- s.serveUDP(ctx) }()
	}
	if s.tcp != nil {
		go func() { defer s.wg.Done(); errc <- s.serveTCP(ctx) }()
	}
	stop := context.AfterFunc(ctx, s.shut)
	defer stop()
	var first error
	for range n {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	s.wg.Wait()
	return first
}

// Close stops the listener: it closes the sockets and every connection,
// cancels the sink calls under way and waits for them.
func (s *Syslog) Close() error {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.shut()
	s.wg.Wait()
	return nil
}

// shut closes the sockets and the open connections.
func (s *Syslog) shut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
	for c := range s.conns {
		c.Close()
	}
}

func (s *Syslog) serveUDP(ctx context.Context) error {
	// A datagram longer than the buffer is cut to it by the kernel, as
	// SyslogFrames cuts a long TCP frame (RFC 5426 §3.2 lets a receiver
	// truncate).
	buf := make([]byte, s.maxFrame)
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("syslog udp: %w", err)
		}
		s.take(ctx, buf[:n], from.Addr(), "udp")
	}
}

// serveTCP accepts connections until the listener is closed. Out of file
// descriptors and the like, the listener pauses and tries again
// (limit.Listener); it returns only once closed.
func (s *Syslog) serveTCP(ctx context.Context) error {
	for {
		c, err := s.tcp.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("syslog tcp: %w", err)
		}
		if !s.track(c) {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.serveConn(ctx, c)
		}()
	}
}

// track registers c, or closes it when the listener is closed.
func (s *Syslog) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Syslog) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	c.Close()
}

func (s *Syslog) serveConn(ctx context.Context, c net.Conn) {
	var peer netip.Addr
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		peer = a.AddrPort().Addr()
	}
	sc := alarm.NewSyslogScanner(c, s.maxFrame)
	wait := s.quiet // for the first message
	for {
		c.SetReadDeadline(time.Now().Add(wait))
		if !sc.Scan() {
			break
		}
		s.tcp.Active(c)
		s.take(ctx, sc.Bytes(), peer, "tcp")
		s.tcp.Idle(c)
		wait = s.idle
	}
	err := sc.Err()
	switch {
	case err == nil, ctx.Err() != nil, errors.Is(err, net.ErrClosed):
	case errors.Is(err, alarm.ErrSyslogFrame):
		// The rest of the stream cannot be cut into messages: whatever
		// the broken frame held is one malformed message.
		s.received.Add(1)
		s.malformed.Add(1)
		s.counted()
		s.log.Debug("syslog tcp framing broken, connection closed", "peer", peer.Unmap().String(), "err", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.log.Debug("syslog tcp connection idle, closed", "peer", peer.Unmap().String(), "waited", wait)
	default:
		s.log.Debug("syslog tcp connection failed", "peer", peer.Unmap().String(), "err", err)
	}
}

// take parses one message from peer and hands it to the sink.
func (s *Syslog) take(ctx context.Context, msg []byte, peer netip.Addr, transport string) {
	defer s.counted()
	s.received.Add(1)
	peer = peer.Unmap()
	a, err := alarm.ParseSyslog(msg, time.Now())
	if err != nil {
		s.malformed.Add(1)
		s.log.Debug("syslog message not understood", "transport", transport, "peer", peer.String(), "err", err)
		return
	}
	if a.Severity < s.o.MinSeverity {
		s.ignored.Add(1)
		return
	}
	if a.Source == "" && peer.IsValid() {
		a.Source = peer.String()
	}
	if err := s.o.Sink(ctx, a); err != nil {
		s.refused.Add(1)
		if ok, skipped := s.refusals.Allow(); ok {
			s.log.Warn("syslog alarm refused and lost (syslog cannot tell the sender)",
				"transport", transport, "peer", peer.String(), "code", a.Code, "severity", a.Severity.String(),
				"err", err, "refused_total", s.refused.Load(), "not_logged", skipped)
		}
		return
	}
	s.accepted.Add(1)
}
