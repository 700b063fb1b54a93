package agent

import (
	"context"
	"fmt"
	"path/filepath"

	"mailagent/appliance/alarm"
	"mailagent/appliance/ingest"
	"mailagent/appliance/internal/spool"
)

// SocketPath is the local socket `mailagent alarm` talks to.
func (a *Agent) SocketPath() string { return filepath.Join(a.runDir, ingest.SocketName) }

// socket is what Run takes alarms and control requests on: the local unix
// socket (*ingest.Socket).
type socket interface {
	SetControl(ingest.Control)
	Serve(ctx context.Context) error
	Close() error
}

// Run takes alarms on the local socket, queues them (in memory, or on flash
// when they must persist) and mails them, until ctx ends. An alarm is
// answered "ok" only once it is queued. ready, if not nil, is called once
// the agent accepts alarms.
func (a *Agent) Run(ctx context.Context, ready func()) error {
	return a.run(ctx, ready, runHooks{listen: func() (socket, error) {
		s, err := ingest.ListenSocket(a.SocketPath(), a.Accept, a.log)
		if err != nil {
			return nil, err
		}
		return s, nil
	}})
}

// runHooks are what a test changes in run.
type runHooks struct {
	// listen makes the socket. Tests in a testing/synctest bubble make one
	// without real network I/O: a goroutine waiting in a unix socket's
	// Accept is not durably blocked, so the bubble's clock would never move.
	listen func() (socket, error)
	// opened, if set, is given the spool once it is open.
	opened func(*spool.Spool)
}

// run is Run with hooks.
func (a *Agent) run(ctx context.Context, ready func(), h runHooks) error {
	c := a.Config()
	sp, err := a.openSpool(&c)
	if err != nil {
		return err
	}
	defer sp.Close()
	if h.opened != nil {
		h.opened(sp)
	}
	if st := sp.Stats(); st.Corrupt > 0 {
		a.log.Warn("damaged spool records set aside", "count", st.Corrupt, "last", st.LastDamage)
	}
	usp, err := a.openSyslogSpool(&c)
	if err != nil {
		return err
	}
	if usp != nil {
		defer usp.Close()
		if st := usp.Stats(); st.Corrupt > 0 {
			a.log.Warn("damaged spool records set aside", "spool", a.SyslogSpoolDir(), "count", st.Corrupt, "last", st.LastDamage)
		}
	}
	ob := a.newOutbox(&c, sp, usp)
	min, _ := alarm.ParseSeverity(c.Alarms.MinSeverity)
	a.mu.Lock()
	a.outbox, a.minSeverity = ob, min
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.outbox = nil
		a.mu.Unlock()
	}()
	s, err := h.listen()
	if err != nil {
		return err
	}
	defer s.Close()
	s.SetControl(a.control)
	if c.Syslog.ListenUDP != "" || c.Syslog.ListenTCP != "" {
		smin, _ := alarm.ParseSeverity(c.Syslog.MinSeverity)
		sl, err := ingest.ListenSyslog(ingest.SyslogOptions{UDP: c.Syslog.ListenUDP, TCP: c.Syslog.ListenTCP, MinSeverity: smin, Sink: a.acceptUnauthenticated, Log: a.log})
		if err != nil {
			return fmt.Errorf("syslog: %w", err)
		}
		defer sl.Close()
		go sl.Serve(ctx)
		udp, tcp := sl.Addrs()
		a.log.Info("syslog listening", "udp", udp, "tcp", tcp)
	}
	go a.KeepAlive(ctx)
	done := make(chan struct{})
	go func() {
		ob.Run(ctx)
		close(done)
	}()
	a.log.Info("agent running", "board", a.board.Name, "data", a.dataDir, "socket", a.SocketPath())
	if ready != nil {
		ready()
	}
	err = s.Serve(ctx)
	<-done
	return err
}
