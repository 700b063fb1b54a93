package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"mailagent/appliance/alarm"
	"mailagent/appliance/internal/spool"
	"mailagent/appliance/lograte"
)

// Implementation summary.
//
// Accept puts an alarm in the persistent spool when it is at least
// Options.Persist severe or while delivery is failing, and in the memory
// queue otherwise; it returns only once the alarm is where it belongs. A
// full memory queue drops its least severe, oldest entry (or the incoming
// alarm, if everything queued is more severe) and counts the drop; a full
// spool does the same, and refuses with spool.ErrFull when everything in it
// outranks the incoming alarm.
//
// AcceptUnauthenticated does the same for alarms from ways in whose
// sender is not authenticated (syslog), which anyone on the LAN can send
// and spoof, but keeps them from the authenticated ones' room and from
// the flash: they go to a spool of their own (Options.Unauthenticated),
// at most UnauthenticatedPerMinute a minute, and to memory beyond that;
// in memory they hold at most UnauthenticatedMemory entries and push out
// only each other, and an authenticated alarm that finds memory full
// pushes out one of them first. So a flood of spoofed criticals costs a
// bounded number of flash writes and never drops an authenticated alarm.
//
// Run waits for the first alarm, then DigestWindow for more, then sends
// everything queued: one mail when DigestWindow is set, one mail per alarm
// otherwise, all over one connection (Send gets the whole burst). Never more
// than MaxPerHour mails leave in any hour: when the burst would exceed what
// is left, it becomes a single digest, and when nothing is left, it waits.
// A delivered mail removes its alarms; a failed one keeps them and waits
// (backoff by failure class) before the next try. The counts of dropped
// alarms go into the next mail and are forgotten once it is accepted.

// Mail is one message to send: the alarms it reports.
type Mail struct {
	Digest
	entries []queued
}

// Sender delivers a burst of mails, in order, over one connection, and
// says for each whether the server accepted it: errs[i] is nil when mail i
// was accepted. A non-nil err means nothing more could be sent.
type Sender func(ctx context.Context, mails []Mail) (replies []string, errs []error)

// Options configures an Outbox. Zero values take the defaults named.
type Options struct {
	// Spool is the persistent queue; required.
	Spool *spool.Spool
	// MemoryEntries bounds the memory queue; 100 if zero.
	MemoryEntries int
	// Unauthenticated is the persistent queue of alarms from
	// unauthenticated ways in (AcceptUnauthenticated); nil keeps them in
	// memory only.
	Unauthenticated *spool.Spool
	// UnauthenticatedPerMinute bounds how many of them are written to
	// Unauthenticated a minute (a bucket of as many, refilled evenly); the
	// rest go to memory. 10 if zero.
	UnauthenticatedPerMinute int
	// UnauthenticatedMemory is the most memory entries they hold;
	// MemoryEntries/4 if zero.
	UnauthenticatedMemory int
	// Persist is the lowest severity always put in the spool; Major if zero.
	Persist alarm.Severity
	// DigestWindow is how long alarms gather before a mail; 0 sends each
	// alarm as its own mail (still one connection per burst).
	DigestWindow time.Duration
	// MaxPerHour bounds the mails in any hour; 30 if zero.
	MaxPerHour int
	// Device names the box in subjects.
	Device string
	// Send delivers mail; required.
	Send Sender
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives delivery events; nil discards them.
	Log *slog.Logger
	// Notify, if set, is told when delivery starts failing (or fails
	// differently) and, with nil, when it works again.
	Notify func(failing error)
}

type queued struct {
	a   alarm.Alarm
	id  spool.ID // "" for the memory queue
	seq uint64   // acceptance order in memory
	// unauth marks an alarm from an unauthenticated way in (in memory, or
	// in Options.Unauthenticated).
	unauth bool
}

// Outbox queues alarms and delivers them as mail.
type Outbox struct {
	o     Options
	wake  chan struct{}
	flush chan struct{}

	dropLog lograte.Limiter // one line a minute about drops, however many

	mu        sync.Mutex
	mem       []queued
	memUnauth int // entries of mem from unauthenticated ways in
	budget    bucket
	seq       uint64
	dropped   spool.Drops // memory-queue drops not yet reported
	limit     hourly
	failures  int
	failing   error     // the last delivery error, nil when delivery works
	since     time.Time // when delivery started failing
	nextTry   time.Time
	last      Delivery
}

// Delivery is the last accepted mail.
type Delivery struct {
	Time  time.Time
	Reply string
}

// New returns an Outbox; Run delivers.
func New(o Options) *Outbox {
	if o.MemoryEntries == 0 {
		o.MemoryEntries = 100
	}
	if o.Persist == 0 {
		o.Persist = alarm.Major
	}
	if o.MaxPerHour == 0 {
		o.MaxPerHour = 30
	}
	if o.UnauthenticatedPerMinute == 0 {
		o.UnauthenticatedPerMinute = 10
	}
	if o.UnauthenticatedMemory == 0 {
		o.UnauthenticatedMemory = max(1, o.MemoryEntries/4)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Outbox{o: o, wake: make(chan struct{}, 1), flush: make(chan struct{}, 1), limit: hourly{n: o.MaxPerHour},
		budget: bucket{n: float64(o.UnauthenticatedPerMinute), tokens: float64(o.UnauthenticatedPerMinute), at: o.Now()}}
}

// Accept queues a; it returns once a is safe (on flash when it must
// persist). spool.ErrFull means it was refused: the caller answers with a
// retryable failure.
func (ob *Outbox) Accept(a alarm.Alarm) error {
	if err := a.Validate(); err != nil {
		return err
	}
	ob.mu.Lock()
	persist := a.Severity >= ob.o.Persist || ob.failing != nil
	ob.mu.Unlock()
	if persist {
		if _, err := ob.o.Spool.Put(a); err != nil {
			return err
		}
	} else {
		ob.mu.Lock()
		ob.acceptMemory(a, false)
		ob.mu.Unlock()
	}
	ob.woken()
	return nil
}

// AcceptUnauthenticated queues a, from a way in whose sender is not
// authenticated: in Options.Unauthenticated when it must persist and the
// flash budget allows (and that spool takes it), else in its share of
// memory. It never refuses for room: a full share drops its least
// severe, oldest alarm, or a, and counts the drop.
func (ob *Outbox) AcceptUnauthenticated(a alarm.Alarm) error {
	if err := a.Validate(); err != nil {
		return err
	}
	ob.mu.Lock()
	persist := (a.Severity >= ob.o.Persist || ob.failing != nil) && ob.o.Unauthenticated != nil && ob.budget.take(ob.o.Now())
	ob.mu.Unlock()
	if persist {
		_, err := ob.o.Unauthenticated.Put(a)
		if err != nil && !errors.Is(err, spool.ErrFull) {
			return err
		}
		persist = err == nil
	}
	if !persist {
		ob.mu.Lock()
		ob.acceptMemory(a, true)
		ob.mu.Unlock()
	}
	ob.woken()
	return nil
}

// woken tells Run that an alarm came.
func (ob *Outbox) woken() {
	select {
	case ob.wake <- struct{}{}:
	default:
	}
}

// acceptMemory queues a in memory, dropping the least severe, oldest entry
// when full (or a itself when everything queued is more severe). An alarm
// from an unauthenticated way in (unauth) makes room only among its kind,
// within their share; an authenticated one makes room by dropping one of
// them first, whatever its severity.
func (ob *Outbox) acceptMemory(a alarm.Alarm, unauth bool) {
	victim := func(among func(queued) bool, sev alarm.Severity) int {
		v := -1
		for i, q := range ob.mem {
			if among(q) && q.a.Severity <= sev && (v < 0 || q.a.Severity < ob.mem[v].a.Severity) {
				v = i
			}
		}
		return v
	}
	isUnauth := func(q queued) bool { return q.unauth }
	v, full := -1, false
	switch {
	case unauth && (ob.memUnauth >= ob.o.UnauthenticatedMemory || len(ob.mem) >= ob.o.MemoryEntries):
		full, v = true, victim(isUnauth, a.Severity)
	case !unauth && len(ob.mem) >= ob.o.MemoryEntries:
		full = true
		if v = victim(isUnauth, alarm.Critical); v < 0 {
			v = victim(func(queued) bool { return true }, a.Severity)
		}
	}
	if full && v < 0 {
		ob.dropped[a.Severity]++
		ob.dropLog.Log(ob.o.Log, slog.LevelWarn, "memory queue full: alarm dropped (counted, reported in the next mail)",
			"code", a.Code, "severity", a.Severity, "unauthenticated", unauth)
		return
	}
	if v >= 0 {
		ob.dropped[ob.mem[v].a.Severity]++
		if ob.mem[v].unauth {
			ob.memUnauth--
		}
		ob.mem = append(ob.mem[:v], ob.mem[v+1:]...)
	}
	ob.seq++
	ob.mem = append(ob.mem, queued{a: a, seq: ob.seq, unauth: unauth})
	if unauth {
		ob.memUnauth++
	}
}

// bucket is the flash budget of unauthenticated alarms: n a minute.
type bucket struct {
	n, tokens float64
	at        time.Time
}

// take takes a write from the budget if there is one left at now.
func (b *bucket) take(now time.Time) bool {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(b.n, b.tokens+b.n*d.Minutes())
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// pending is everything queued, oldest first by alarm time.
func (ob *Outbox) pending() ([]queued, spool.Drops, error) {
	entries, err := ob.o.Spool.List()
	if err != nil {
		return nil, spool.Drops{}, err
	}
	var unauth []spool.Entry
	if ob.o.Unauthenticated != nil {
		if unauth, err = ob.o.Unauthenticated.List(); err != nil {
			return nil, spool.Drops{}, err
		}
	}
	ob.mu.Lock()
	q := append([]queued(nil), ob.mem...)
	drops := ob.dropped
	ob.mu.Unlock()
	for _, e := range entries {
		q = append(q, queued{a: e.Alarm, id: e.ID})
	}
	for _, e := range unauth {
		q = append(q, queued{a: e.Alarm, id: e.ID, unauth: true})
	}
	sortQueued(q)
	for _, sp := range ob.spools() {
		sd := sp.Stats().Drops
		for i := range drops {
			drops[i] += sd[i]
		}
	}
	return q, drops, nil
}

// spools are the persistent queues: Spool, and Unauthenticated if set.
func (ob *Outbox) spools() []*spool.Spool {
	if ob.o.Unauthenticated == nil {
		return []*spool.Spool{ob.o.Spool}
	}
	return []*spool.Spool{ob.o.Spool, ob.o.Unauthenticated}
}

func sortQueued(q []queued) {
	// insertion sort keeps equal times in acceptance order; queues are small
	for i := 1; i < len(q); i++ {
		for j := i; j > 0 && q[j].a.Time.Before(q[j-1].a.Time); j-- {
			q[j], q[j-1] = q[j-1], q[j]
		}
	}
}

// Run delivers until ctx ends.
func (ob *Outbox) Run(ctx context.Context) error {
	for {
		q, drops, err := ob.pending()
		if err != nil {
			ob.o.Log.Error("reading the spool", "err", err)
		}
		if len(q) == 0 {
			if err := ob.sleep(ctx); err != nil {
				return nil
			}
			continue
		}
		// gather: the window runs from the oldest queued alarm's arrival
		now := ob.o.Now()
		ob.mu.Lock()
		at := ob.nextTry
		ob.mu.Unlock()
		if w := ob.o.DigestWindow; w > 0 {
			if end := oldest(q).Add(w); end.After(at) {
				at = end
			}
		}
		if next := ob.limitNext(now); next.After(at) {
			at = next
		}
		if at.After(now) {
			if err := ob.sleepUntil(ctx, at); err != nil {
				return nil
			}
			continue // look again: more may have come
		}
		ob.deliver(ctx, q, drops)
	}
}

func oldest(q []queued) time.Time {
	t := q[0].a.Time
	for _, e := range q[1:] {
		if e.a.Time.Before(t) {
			t = e.a.Time
		}
	}
	return t
}

func (ob *Outbox) limitNext(now time.Time) time.Time {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	return ob.limit.next(now)
}

// sleepUntil waits until t (by the Outbox's clock), a Flush or ctx's end.
func (ob *Outbox) sleepUntil(ctx context.Context, t time.Time) error {
	d := t.Sub(ob.o.Now())
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	case <-ob.flush:
		return nil
	}
}

// sleep waits for a new alarm or ctx's end.
func (ob *Outbox) sleep(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-ob.wake:
		return nil
	}
}

// mails splits what is queued into mails: one digest, or one mail per
// alarm when there is no digest window and the hourly cap allows it.
func (ob *Outbox) mails(q []queued, drops spool.Drops) []Mail {
	ob.mu.Lock()
	left := ob.limit.left(ob.o.Now())
	ob.mu.Unlock()
	if ob.o.DigestWindow > 0 || len(q) > left {
		m := Mail{Digest: Digest{Device: ob.o.Device, Dropped: drops}, entries: q}
		for _, e := range q {
			m.Alarms = append(m.Alarms, e.a)
		}
		return []Mail{m}
	}
	var ms []Mail
	for i, e := range q {
		m := Mail{Digest: Digest{Device: ob.o.Device, Alarms: []alarm.Alarm{e.a}}, entries: []queued{e}}
		if i == 0 {
			m.Dropped = drops
		}
		ms = append(ms, m)
	}
	return ms
}

// deliver sends what is queued and settles each mail's alarms.
func (ob *Outbox) deliver(ctx context.Context, q []queued, drops spool.Drops) {
	ms := ob.mails(q, drops)
	replies, errs := ob.o.Send(ctx, ms)
	for i, m := range ms {
		var err error
		if i < len(errs) {
			err = errs[i]
		} else {
			err = errors.New("not sent")
		}
		if err != nil {
			ob.failed(err)
			return
		}
		ob.delivered(m, replies[i])
	}
}

func (ob *Outbox) delivered(m Mail, reply string) {
	now := ob.o.Now()
	var ids, unauthIDs []spool.ID
	ob.mu.Lock()
	for _, e := range m.entries {
		switch {
		case e.id != "" && e.unauth:
			unauthIDs = append(unauthIDs, e.id)
			continue
		case e.id != "":
			ids = append(ids, e.id)
			continue
		}
		for i, q := range ob.mem {
			if q.seq == e.seq {
				if q.unauth {
					ob.memUnauth--
				}
				ob.mem = append(ob.mem[:i], ob.mem[i+1:]...)
				break
			}
		}
	}
	reported := m.Dropped
	for i := range ob.dropped {
		n := min(ob.dropped[i], reported[i])
		ob.dropped[i] -= n
		reported[i] -= n
	}
	ob.limit.record(now)
	recovered := ob.failing != nil
	ob.failures, ob.failing, ob.since, ob.nextTry = 0, nil, time.Time{}, time.Time{}
	ob.last = Delivery{Time: now, Reply: reply}
	ob.mu.Unlock()
	if recovered && ob.o.Notify != nil {
		ob.o.Notify(nil)
	}
	if err := ob.o.Spool.Remove(ids...); err != nil {
		ob.o.Log.Error("delivered alarms not removed from the spool; they may be sent twice", "err", err)
	}
	if len(unauthIDs) > 0 {
		if err := ob.o.Unauthenticated.Remove(unauthIDs...); err != nil {
			ob.o.Log.Error("delivered alarms not removed from the spool; they may be sent twice", "err", err)
		}
	}
	// The reported drops are taken from the spools in turn, as much as
	// each holds: the counts add up, whichever spool a drop was counted in.
	for _, sp := range ob.spools() {
		if reported.Total() == 0 {
			break
		}
		var take spool.Drops
		held := sp.Stats().Drops
		for i := range take {
			take[i] = min(reported[i], held[i])
			reported[i] -= take[i]
		}
		if take.Total() > 0 {
			if err := sp.ForgetDrops(take); err != nil {
				ob.o.Log.Error("drop counts not reset", "err", err)
			}
		}
	}
	ob.o.Log.Info("alarm mail delivered", "alarms", len(m.Alarms), "reply", reply)
}

func (ob *Outbox) failed(err error) {
	kind := classify(err)
	ob.mu.Lock()
	changed := ob.failing == nil || ob.failing.Error() != err.Error()
	if ob.failing == nil {
		ob.since = ob.o.Now()
	}
	ob.failures++
	ob.failing = err
	ob.nextTry = ob.o.Now().Add(backoff(kind, ob.failures))
	next := ob.nextTry
	ob.mu.Unlock()
	if changed && ob.o.Notify != nil {
		ob.o.Notify(err)
	}
	ob.o.Log.Warn("alarm mail not delivered; alarms kept", "err", err, "next_try", next)
}

// Flush ends a wait after a failure: the next try starts now (the hourly
// cap still holds).
func (ob *Outbox) Flush() {
	ob.mu.Lock()
	ob.nextTry = time.Time{}
	ob.mu.Unlock()
	select {
	case ob.flush <- struct{}{}:
	default:
	}
	select {
	case ob.wake <- struct{}{}:
	default:
	}
}

// Status is the delivery state.
type Status struct {
	Memory, Spooled int
	Oldest          time.Time
	Dropped         spool.Drops
	Last            Delivery
	// Failing is the last delivery error while delivery fails, Since when
	// it started failing and Failures the tries that failed in a row.
	Failing  string
	Since    time.Time
	Failures int
	NextTry  time.Time
}

// Status reports the queues and the delivery state.
func (ob *Outbox) Status() Status {
	q, drops, _ := ob.pending()
	ob.mu.Lock()
	defer ob.mu.Unlock()
	st := Status{Memory: len(ob.mem), Spooled: len(q) - len(ob.mem), Dropped: drops, Last: ob.last, NextTry: ob.nextTry}
	if len(q) > 0 {
		st.Oldest = oldest(q)
	}
	if ob.failing != nil {
		st.Failing, st.Since, st.Failures = fmt.Sprint(ob.failing), ob.since, ob.failures
	}
	return st
}
