package agent

// An idle box writes nothing to flash: the whole agent, with a valid
// OAuth2 grant and a configured mailer, runs ten minutes of the bubble's
// clock and leaves the data directory as it found it.

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/ingest"
	"mailagent/appliance/internal/spool"
	"mailagent/appliance/oauth"
)

// TestIdleWritesNothing runs the agent in a testing/synctest bubble for ten
// minutes of idle time: exchange mode with a rotating refresh token just
// obtained, an access token valid for an hour (on flash, keep_access_token)
// and an SMTP server that accepts it. Every file and directory under the
// data directory keeps its size, content, mtime and ctime to the
// nanosecond, inode and mode; the spool's counters show no byte written and
// no sync; the provider gets no token request. An alarm raised afterwards
// is mailed, so the agent was alive all along.
func TestIdleWritesNothing(t *testing.T) {
	smtp := newSMTPServers(t)
	synctest.Test(t, func(t *testing.T) {
		b := newOAuthBox(t, smtp, "exchange")
		b.mustAuthorize()
		tok := b.flash()
		if !tok.RefreshToken.IsSet() || tok.Expiry.Before(time.Now().Add(30*time.Minute)) {
			t.Fatalf("after authorisation: refresh token set %v, access token expires %s; want a grant valid well past the idle time",
				tok.RefreshToken.IsSet(), tok.Expiry)
		}
		srv := b.smtpAccepting(tok.AccessToken.Reveal())

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sock := newQuietSocket()
		var sp *spool.Spool
		ready := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- b.a.run(ctx, func() { close(ready) }, runHooks{listen: func() (socket, error) { return sock, nil }, opened: func(s *spool.Spool) { sp = s }})
		}()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("run = %v", err)
		}
		synctest.Wait() // the start is over: keep-alive checked, delivery waits

		before, stats, requests := snapshot(t, b.dir), sp.Stats(), b.srv.Requests("")
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		after, statsAfter := snapshot(t, b.dir), sp.Stats()

		if diff := snapshotDiff(before, after); diff != "" {
			t.Errorf("the data directory changed during 10 idle minutes:\n%s", diff)
		}
		if statsAfter != stats {
			t.Errorf("spool counters changed while idle: %+v, then %+v", stats, statsAfter)
		}
		if n := b.srv.Requests("") - requests; n != 0 {
			t.Errorf("%d token requests while idle, want 0", n)
		}
		ls := sock.status(t, ctx)
		if ls.Failing != "" || ls.Spooled != 0 || ls.Memory != 0 || ls.Token == nil || ls.Token.State != oauth.StateOK {
			t.Errorf("after 10 idle minutes: %+v (token %+v), want no failure, empty queues and the token ok", ls, ls.Token)
		}
		t.Logf("10 idle minutes: %d files and directories unchanged (%s), spool counters unchanged (%d bytes, %d syncs), %d token requests",
			len(after), strings.Join(slices.Sorted(maps.Keys(after)), " "), statsAfter.Written, statsAfter.Syncs, b.srv.Requests("")-requests)

		// Still alive: an alarm goes out with the token held, no request.
		if err := b.a.Accept(ctx, alarm.Alarm{Time: time.Now(), Severity: alarm.Minor, Code: "AFTER-IDLE", Text: "still here"}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 600 && len(srv.Messages()) == 0; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if n := len(srv.Messages()); n != 1 {
			t.Errorf("after the idle time the alarm made %d mails, want 1", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run = %v", err)
		}
		b.checkNoViolations()
	})
}

// quietSocket stands in for the unix socket: Serve waits as a socket
// nobody connects to does, and status asks the agent as `mailagent status`
// would.
type quietSocket struct {
	control   ingest.Control
	closed    chan struct{}
	closeOnce sync.Once
}

func newQuietSocket() *quietSocket { return &quietSocket{closed: make(chan struct{})} }

func (s *quietSocket) SetControl(c ingest.Control) { s.control = c }

func (s *quietSocket) Serve(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-s.closed:
	}
	return nil
}

func (s *quietSocket) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

func (s *quietSocket) status(t *testing.T, ctx context.Context) LiveStatus {
	t.Helper()
	v, err := s.control(ctx, opStatus)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	// as the socket answers it: JSON
	var ls LiveStatus
	if b, err := json.Marshal(v); err != nil || json.Unmarshal(b, &ls) != nil {
		t.Fatalf("status answer %#v does not go through JSON: %v", v, err)
	}
	return ls
}

// entry is what a write to a file or directory changes.
type entry struct {
	mode         fs.FileMode
	size         int64
	mtime, ctime int64 // ns
	inode        uint64
	content      string // files only
}

func (e entry) String() string {
	return fmt.Sprintf("%v size %d mtime %d ctime %d inode %d", e.mode, e.size, e.mtime, e.ctime, e.inode)
}

// snapshot records every file and directory under dir, dir included.
func snapshot(t *testing.T, dir string) map[string]entry {
	t.Helper()
	m := make(map[string]entry)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no stat_t", path)
		}
		e := entry{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime().UnixNano(),
			ctime: syscall.TimespecToNsec(st.Ctim), inode: st.Ino}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			e.content = string(b)
		}
		rel, _ := filepath.Rel(dir, path)
		m[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// snapshotDiff describes what differs between two snapshots, "" if nothing.
func snapshotDiff(before, after map[string]entry) string {
	var d []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("  %s: removed (was %s)", p, b))
		case a != b:
			what := "metadata"
			if a.content != b.content {
				what = "content"
			}
			d = append(d, fmt.Sprintf("  %s: %s changed: %s, now %s", p, what, b, a))
		}
	}
	for p, a := range after {
		if _, ok := before[p]; !ok {
			d = append(d, fmt.Sprintf("  %s: created (%s)", p, a))
		}
	}
	slices.Sort(d)
	return strings.Join(d, "\n")
}
