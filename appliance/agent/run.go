package agent

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

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
	if err := a.checkDirs(os.Geteuid()); err != nil {
		return err
	}
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

// checkDirs makes the data and run directories if they are missing and
// checks, for the agent running as euid, that nobody else can put files
// in them: a process of another user that owns the run directory, or may
// write to it, replaces the socket and swallows the alarms "mailagent
// alarm" sends. A directory must belong to euid or root, and so must a
// symbolic link to it; one of euid's that group or others may write to is
// fixed (their write permission taken away) and logged, anything else is
// refused with what to do. Its parent must not let others replace it:
// writable by anyone only with the sticky bit (/tmp).
func (a *Agent) checkDirs(euid int) error {
	if err := a.MakeDataDir(); err != nil {
		return err
	}
	if err := os.MkdirAll(a.runDir, 0o700); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	for _, d := range []struct{ what, dir, hint string }{
		{"data directory", a.dataDir, "it holds the configuration, the secrets and the spool"},
		{"run directory", a.runDir, "it holds the socket \"mailagent alarm\" trusts"},
	} {
		if err := a.checkDir(d.what, d.dir, euid); err != nil {
			return WithHint(err, fmt.Sprintf("%s; make it belong to uid %d (or root) and writable by its owner only, or remove it and let the agent make it", d.hint, euid))
		}
	}
	return nil
}

// checkDir checks one directory for checkDirs.
func (a *Agent) checkDir(what, dir string, euid int) error {
	owner := func(fi fs.FileInfo) int {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			return int(st.Uid)
		}
		return euid
	}
	ours := func(uid int) bool { return uid == euid || uid == 0 }
	li, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if li.Mode()&fs.ModeSymlink != 0 && !ours(owner(li)) {
		return fmt.Errorf("%s %s is a symbolic link of uid %d, not of this user (uid %d) or root", what, dir, owner(li), euid)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch uid := owner(fi); {
	case !fi.IsDir():
		return fmt.Errorf("%s %s is not a directory", what, dir)
	case !ours(uid):
		return fmt.Errorf("%s %s belongs to uid %d, not to this user (uid %d) or root: another user could put files there", what, dir, uid, euid)
	case fi.Mode().Perm()&0o022 != 0 && uid != euid:
		return fmt.Errorf("%s %s (mode %04o) is writable by group or others, and belongs to root, not to this user (uid %d)", what, dir, fi.Mode().Perm(), euid)
	case fi.Mode().Perm()&0o022 != 0:
		mode := fi.Mode().Perm() &^ 0o022
		if err := os.Chmod(dir, mode); err != nil {
			return fmt.Errorf("%s %s is writable by group or others: %w", what, dir, err)
		}
		a.log.Warn("directory was writable by group or others; fixed", "dir", dir, "was", fmt.Sprintf("%04o", fi.Mode().Perm()), "now", fmt.Sprintf("%04o", mode))
	}
	parent := filepath.Dir(filepath.Clean(dir))
	pi, err := os.Stat(parent)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if pi.Mode().Perm()&0o002 != 0 && pi.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("%s %s is in %s (mode %04o), which anyone may write to without the sticky bit: another user could replace it", what, dir, parent, pi.Mode().Perm())
	}
	return nil
}
