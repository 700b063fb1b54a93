package outbox

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/emersion/go-smtp"

	"mailagent/appliance/alarm"
	"mailagent/appliance/internal/spool"
)

// fakeSMTP records bursts; fail, if set, decides each mail's fate.
type fakeSMTP struct {
	mu     sync.Mutex
	bursts [][]Mail
	fail   func(n int) error // n counts mails over the test
	n      int
}

func (f *fakeSMTP) send(ctx context.Context, ms []Mail) ([]string, []error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bursts = append(f.bursts, ms)
	var replies []string
	var errs []error
	for range ms {
		f.n++
		var err error
		if f.fail != nil {
			err = f.fail(f.n)
		}
		if err != nil {
			errs = append(errs, err)
			return replies, errs
		}
		replies = append(replies, fmt.Sprintf("250 2.0.0 Ok: queued as Q%d", f.n))
		errs = append(errs, nil)
	}
	return replies, errs
}

func (f *fakeSMTP) mails() []Mail {
	f.mu.Lock()
	defer f.mu.Unlock()
	var all []Mail
	for _, b := range f.bursts {
		all = append(all, b...)
	}
	return all
}

func newForTest(t *testing.T, o Options) (*Outbox, *fakeSMTP, *spool.Spool) {
	t.Helper()
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool"), spool.Options{Max: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	f := &fakeSMTP{}
	o.Spool, o.Send, o.Device = sp, f.send, "gw-1"
	return New(o), f, sp
}

func raise(sev alarm.Severity, code string) alarm.Alarm {
	return alarm.Alarm{Time: time.Now(), Severity: sev, Code: code, Text: code + " happened"}
}

// run starts ob.Run in the bubble and stops it at the end of the test.
func run(t *testing.T, ob *Outbox) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ob.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestDigestWindowSharesOneMail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob, f, _ := newForTest(t, Options{DigestWindow: time.Minute})
		run(t, ob)
		for _, code := range []string{"A", "B", "A"} {
			if err := ob.Accept(raise(alarm.Warning, code)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Second)
		}
		synctest.Wait()
		if n := len(f.mails()); n != 0 {
			t.Fatalf("%d mails inside the digest window", n)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		ms := f.mails()
		if len(ms) != 1 || len(ms[0].Alarms) != 3 || !strings.Contains(ms[0].Body(), "occurred 2 times") {
			t.Fatalf("mails after the window = %d; want one with 3 alarms folded", len(ms))
		}
		if st := ob.Status(); st.Memory != 0 || st.Spooled != 0 || st.Last.Reply == "" {
			t.Errorf("status after delivery = %+v", st)
		}
	})
}

func TestNoDigestOneConnectionPerBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob, f, _ := newForTest(t, Options{})
		for _, code := range []string{"A", "B", "C"} {
			ob.Accept(raise(alarm.Minor, code))
		}
		run(t, ob)
		synctest.Wait()
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.bursts) != 1 || len(f.bursts[0]) != 3 {
			t.Fatalf("bursts = %d (first %d mails); want one burst of 3 mails", len(f.bursts), len(f.bursts[0]))
		}
	})
}

func TestHourlyCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob, f, _ := newForTest(t, Options{MaxPerHour: 2})
		run(t, ob)
		sent := func() int { synctest.Wait(); return len(f.mails()) }
		ob.Accept(raise(alarm.Minor, "A"))
		ob.Accept(raise(alarm.Minor, "B"))
		if n := sent(); n < 1 {
			t.Fatalf("%d mails", n)
		}
		for i := range 20 {
			ob.Accept(raise(alarm.Minor, fmt.Sprintf("C%d", i)))
			time.Sleep(time.Minute)
		}
		if n := sent(); n > 2 {
			t.Fatalf("%d mails within the first hour, cap 2", n)
		}
		time.Sleep(time.Hour)
		if n := sent(); n > 4 {
			t.Fatalf("%d mails within two hours, cap 2 per hour", n)
		}
		if st := ob.Status(); st.Memory != 0 {
			t.Errorf("%d alarms still queued after two hours", st.Memory)
		}
		total := 0
		for _, m := range f.mails() {
			total += len(m.Alarms)
		}
		if total != 22 {
			t.Errorf("%d alarms mailed, want all 22", total)
		}
	})
}

func TestFailureKeepsAlarmsAndPersists(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob, f, sp := newForTest(t, Options{})
		var down atomic.Bool
		down.Store(true)
		f.fail = func(int) error {
			if down.Load() {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
			}
			return nil
		}
		run(t, ob)
		ob.Accept(raise(alarm.Major, "MAJ")) // persists
		synctest.Wait()
		if sp.Len() != 1 {
			t.Fatalf("spool holds %d, want the major alarm", sp.Len())
		}
		ob.Accept(raise(alarm.Info, "INFO")) // while failing: persists too
		if sp.Len() != 2 {
			t.Errorf("spool holds %d after an info alarm while failing, want 2", sp.Len())
		}
		st1 := ob.Status()
		if st1.Failing == "" || st1.NextTry.IsZero() || st1.Since.IsZero() || st1.Failures < 1 {
			t.Errorf("status while failing = %+v", st1)
		}
		// A try now (queue flush) that fails too backs off further: 30 s
		// doubling, each ±20 %, so the waits cannot overlap.
		ob.Flush()
		synctest.Wait()
		st2 := ob.Status()
		if st2.Failures != st1.Failures+1 || !st2.Since.Equal(st1.Since) {
			t.Errorf("after a failed flush: failures %d since %v, want %d since %v", st2.Failures, st2.Since, st1.Failures+1, st1.Since)
		}
		if w1, w2 := st1.NextTry.Sub(st1.Since), time.Until(st2.NextTry); w2 <= w1 {
			t.Errorf("backoff did not grow: waited %v after the first failure, %v after the next", w1, w2)
		}
		down.Store(false)
		time.Sleep(backoffMax * 2)
		synctest.Wait()
		if sp.Len() != 0 {
			t.Errorf("spool holds %d after recovery", sp.Len())
		}
		var codes []string
		for _, m := range f.mails() {
			for _, a := range m.Alarms {
				codes = append(codes, a.Code)
			}
		}
		if !strings.Contains(strings.Join(codes, ","), "INFO") {
			t.Errorf("mailed %v; the info alarm is missing", codes)
		}
		if st := ob.Status(); st.Failing != "" || st.Failures != 0 || !st.Since.IsZero() {
			t.Errorf("still failing after recovery: %+v", st)
		}
	})
}

func TestMemoryQueueDropsAreReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob, f, _ := newForTest(t, Options{MemoryEntries: 3, DigestWindow: time.Minute})
		ob.Accept(raise(alarm.Warning, "W1"))
		ob.Accept(raise(alarm.Info, "I1"))
		ob.Accept(raise(alarm.Info, "I2"))
		ob.Accept(raise(alarm.Warning, "W2")) // drops I1, the oldest info
		ob.Accept(raise(alarm.Info, "I3"))    // drops I2
		ob.Accept(raise(alarm.Cleared, "W0")) // everything outranks it: dropped itself
		run(t, ob)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		ms := f.mails()
		if len(ms) != 1 {
			t.Fatalf("%d mails, want 1", len(ms))
		}
		body := ms[0].Body()
		if !strings.Contains(body, "3 alarms were dropped because the queue was full (2 info, 1 cleared)") {
			t.Errorf("body does not report the drops:\n%s", body)
		}
		for _, code := range []string{"W1", "W2", "I3"} {
			if !strings.Contains(body, code) {
				t.Errorf("body lacks %s:\n%s", code, body)
			}
		}
	})
}

// reauthErr is what the token source returns once the grant is dead.
type reauthErr struct{}

func (reauthErr) Error() string { return "re-authorisation required: invalid_grant" }
func (reauthErr) Hint() string  { return "authorise again" }

func TestDeadGrantKeepsAlarmsUntilFixed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob, f, sp := newForTest(t, Options{})
		var dead atomic.Bool
		dead.Store(true)
		f.fail = func(int) error {
			if dead.Load() {
				return fmt.Errorf("get oauth2 token: %w", reauthErr{})
			}
			return nil
		}
		run(t, ob)
		ob.Accept(raise(alarm.Critical, "PSU"))
		synctest.Wait()
		ob.Accept(raise(alarm.Minor, "FAN")) // accepted while failing: on flash too
		synctest.Wait()
		attempts := func() int { f.mu.Lock(); defer f.mu.Unlock(); return f.n }
		first := attempts()
		time.Sleep(30 * time.Minute) // a held failure is not retried for about an hour
		synctest.Wait()
		if attempts() != first {
			t.Errorf("%d more attempts within 30 minutes of a dead grant", attempts()-first)
		}
		if sp.Len() != 2 {
			t.Fatalf("spool holds %d alarms while the grant is dead, want 2", sp.Len())
		}
		if st := ob.Status(); !strings.Contains(st.Failing, "re-authorisation required") {
			t.Errorf("status does not say why: %+v", st)
		}
		dead.Store(false) // re-authorised
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if st := ob.Status(); sp.Len() != 0 || st.Memory != 0 {
			t.Errorf("after re-authorisation: %d on flash, %d in memory", sp.Len(), st.Memory)
		}
	})
}

func TestFlushRetriesNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ob, f, sp := newForTest(t, Options{})
		var down atomic.Bool
		down.Store(true)
		f.fail = func(int) error {
			if down.Load() {
				return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "relay denied"}
			}
			return nil
		}
		run(t, ob)
		ob.Accept(raise(alarm.Major, "MAJ"))
		synctest.Wait()
		if sp.Len() != 1 {
			t.Fatal("alarm not kept after a 554")
		}
		down.Store(false) // the admin fixed the server
		time.Sleep(time.Minute)
		synctest.Wait()
		if sp.Len() != 1 {
			t.Fatal("a held failure was retried within a minute without a flush")
		}
		ob.Flush()
		synctest.Wait()
		if sp.Len() != 0 {
			t.Errorf("spool holds %d after a flush", sp.Len())
		}
	})
}

// TestUnauthenticatedFlood: spoofed syslog criticals wore the flash (500 a
// second for 20 s: 20,005 write syscalls, 388 MB) and pushed the real
// alarms out of the 50-entry spool. Alarms from unauthenticated ways in
// now reach flash at most UnauthenticatedPerMinute a minute, into a spool
// of their own, and in memory push out only each other; an authenticated
// alarm arriving into a full memory queue pushes one of them out. Every
// authenticated alarm is still queued, and a drop of the flood is counted.
func TestUnauthenticatedFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		uspool, err := spool.Open(filepath.Join(t.TempDir(), "spool-syslog"), spool.Options{Max: 3})
		if err != nil {
			t.Fatal(err)
		}
		defer uspool.Close()
		ob, _, sp := newForTest(t, Options{MemoryEntries: 7, Unauthenticated: uspool, UnauthenticatedPerMinute: 2, UnauthenticatedMemory: 2})
		var want []string
		for i := range 5 { // fills the spool (Max 5)
			code := fmt.Sprintf("AUTH-MAJOR-%d", i)
			if err := ob.Accept(raise(alarm.Major, code)); err != nil {
				t.Fatal(err)
			}
			want = append(want, code)
		}
		for i := range 5 { // in memory
			code := fmt.Sprintf("AUTH-INFO-%d", i)
			if err := ob.Accept(raise(alarm.Info, code)); err != nil {
				t.Fatal(err)
			}
			want = append(want, code)
		}
		before := sp.Stats().Written
		// 10 seconds of a flood of 100 spoofed criticals a second.
		for s := range 10 {
			for i := range 100 {
				if err := ob.AcceptUnauthenticated(raise(alarm.Critical, fmt.Sprintf("SPOOF-%d-%d", s, i))); err != nil {
					t.Fatalf("AcceptUnauthenticated = %v, want it taken or dropped, never refused", err)
				}
			}
			time.Sleep(time.Second)
		}
		// One more authenticated alarm, into a memory queue that is full:
		// a spoofed one gives way.
		if err := ob.Accept(raise(alarm.Info, "AUTH-INFO-LATE")); err != nil {
			t.Fatal(err)
		}
		want = append(want, "AUTH-INFO-LATE")

		q, drops, err := ob.pending()
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		spoofed, spoofedOnFlash := 0, 0
		for _, e := range q {
			have[e.a.Code] = true
			if strings.HasPrefix(e.a.Code, "SPOOF-") {
				spoofed++
				if e.id != "" {
					spoofedOnFlash++
				}
			}
		}
		for _, code := range want {
			if !have[code] {
				t.Errorf("authenticated alarm %s pushed out by the flood", code)
			}
		}
		// The budget: 2 at once, 2 a minute more: 2 in the first 10 s.
		if st := uspool.Stats(); st.Len != 2 || spoofedOnFlash != 2 {
			t.Errorf("%d spoofed alarms on flash (spool holds %d), want 2: the budget of 2 a minute", spoofedOnFlash, st.Len)
		}
		if sp.Stats().Written != before {
			t.Errorf("the flood wrote %d bytes into the authenticated spool", sp.Stats().Written-before)
		}
		// Memory: 7 entries, 2 of them the flood's; the late
		// authenticated alarm took the place of one of them.
		if got := spoofed - spoofedOnFlash; got != 1 {
			t.Errorf("%d spoofed alarms in memory, want 1 (a share of 2, one given to the late authenticated alarm)", got)
		}
		if n := drops[alarm.Critical]; n != 1000-spoofed {
			t.Errorf("%d critical drops counted, want %d (the flood less what is queued)", n, 1000-spoofed)
		}
	})
}

// TestUnauthenticatedDelivered: alarms in the unauthenticated spool are
// mailed and removed like the others, and their drops are reported once.
func TestUnauthenticatedDelivered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		uspool, err := spool.Open(filepath.Join(t.TempDir(), "spool-syslog"), spool.Options{Max: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer uspool.Close()
		ob, f, _ := newForTest(t, Options{DigestWindow: time.Second, Unauthenticated: uspool})
		ob.AcceptUnauthenticated(raise(alarm.Major, "SYSLOG-1"))
		ob.AcceptUnauthenticated(raise(alarm.Critical, "SYSLOG-2")) // drops SYSLOG-1 from its spool
		ob.Accept(raise(alarm.Major, "AUTH-1"))
		run(t, ob)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		ms := f.mails()
		if len(ms) != 1 || len(ms[0].Alarms) != 2 || ms[0].Dropped.Total() != 1 {
			t.Fatalf("mails = %+v, want one with SYSLOG-2 and AUTH-1 and one drop", ms)
		}
		if st := uspool.Stats(); st.Len != 0 || st.Drops.Total() != 0 {
			t.Errorf("unauthenticated spool after delivery: %+v, want empty, drops forgotten", st)
		}
	})
}
