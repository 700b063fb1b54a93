package limit

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// fakeListener hands out what the test puts in next.
type fakeListener struct {
	next   chan accepted
	closed chan struct{}
}

type accepted struct {
	c   net.Conn
	err error
}

func newFakeListener() *fakeListener {
	return &fakeListener{next: make(chan accepted), closed: make(chan struct{})}
}

func (f *fakeListener) Accept() (net.Conn, error) {
	select {
	case a := <-f.next:
		return a.c, a.err
	case <-f.closed:
		return nil, &net.OpError{Op: "accept", Err: net.ErrClosed}
	}
}

func (f *fakeListener) Close() error   { close(f.closed); return nil }
func (f *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// fakeConn is a connection from remote that says when it is closed.
type fakeConn struct {
	net.Conn // nil: only what the Listener calls is here
	remote   net.Addr
	closed   chan struct{}
}

func newConn(ip string) *fakeConn {
	return &fakeConn{remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}, closed: make(chan struct{})}
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }
func (c *fakeConn) Close() error {
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	return nil
}

func (c *fakeConn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// emfile is the error accept(2) gives when the process is out of file
// descriptors, as package net wraps it.
var emfile = &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}

// harness runs l's Accept in a loop, as a server does, and hands out what
// it gives.
type harness struct {
	f   *fakeListener
	l   *Listener
	out chan net.Conn
}

func newHarness(t *testing.T, o ListenOptions) *harness {
	f := newFakeListener()
	h := &harness{f: f, l: Listen(f, o), out: make(chan net.Conn, 16)}
	go func() {
		for {
			c, err := h.l.Accept()
			if err != nil {
				return
			}
			h.out <- c
		}
	}()
	t.Cleanup(func() { h.l.Close() })
	return h
}

// offer hands c to the listener and returns what Accept gave out: c
// wrapped, or nil when c was refused.
func (h *harness) offer(c *fakeConn) net.Conn {
	h.f.next <- accepted{c: c}
	synctest.Wait()
	select {
	case lc := <-h.out:
		return lc
	default:
		return nil
	}
}

// TestListenerSurvivesAcceptErrors: out of file descriptors, Accept pauses
// (doubling from 5 ms) and tries again instead of returning the error, which
// ended the local socket's accept loop for good.
func TestListenerSurvivesAcceptErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeListener()
		l := Listen(f, ListenOptions{Name: "test", Max: 4})
		defer l.Close()
		want := newConn("192.0.2.1")
		go func() {
			for range 5 {
				f.next <- accepted{err: emfile}
			}
			f.next <- accepted{c: want}
		}()
		start := time.Now()
		c, err := l.Accept()
		if err != nil {
			t.Fatalf("Accept = %v, want the connection after the errors", err)
		}
		if c.RemoteAddr() != want.remote {
			t.Errorf("Accept gave %v, want the connection from %v", c.RemoteAddr(), want.remote)
		}
		if got, wantPause := time.Since(start), (5+10+20+40+80)*time.Millisecond; got != wantPause {
			t.Errorf("Accept paused %v in all, want %v (5 ms doubling)", got, wantPause)
		}
		if st := l.Stats(); st.AcceptErrors != 5 || st.Accepted != 1 || st.Open != 1 {
			t.Errorf("stats = %+v, want 5 accept errors, 1 accepted and open", st)
		}
	})
}

// TestListenerCloseEndsPause: Close ends an Accept that pauses after an
// error, with net.ErrClosed.
func TestListenerCloseEndsPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeListener()
		l := Listen(f, ListenOptions{Max: 1})
		done := make(chan error)
		go func() {
			_, err := l.Accept()
			done <- err
		}()
		f.next <- accepted{err: emfile}
		synctest.Wait() // pausing
		l.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close = %v, want net.ErrClosed", err)
		}
	})
}

// TestListenerPerClient: a client at its limit makes room by losing its
// own quiet or idle connection, never a busy one; with all of them busy the
// new connection is refused. Other clients are not touched.
func TestListenerPerClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, ListenOptions{Max: 10, PerClient: 2})
		l := h.l
		a1, a2, b1 := newConn("192.0.2.1"), newConn("192.0.2.1"), newConn("192.0.2.2")
		la1 := h.offer(a1)
		l.Active(la1)
		time.Sleep(time.Second)
		h.offer(a2)
		h.offer(b1)
		a3 := newConn("192.0.2.1")
		la3 := h.offer(a3)
		if la3 == nil || !a2.isClosed() || a1.isClosed() || b1.isClosed() {
			t.Fatalf("third connection of a client: handed out %v; closed: a1 %v a2 %v b1 %v; want a2 (quiet) closed for it",
				la3 != nil, a1.isClosed(), a2.isClosed(), b1.isClosed())
		}
		l.Active(la3)
		a4 := newConn("192.0.2.1")
		if la4 := h.offer(a4); la4 != nil || !a4.isClosed() {
			t.Errorf("a client with every connection busy got another one")
		}
		if st := l.Stats(); st.Open != 3 || st.Evicted != 1 || st.Refused != 1 {
			t.Errorf("stats = %+v, want 3 open, 1 evicted, 1 refused", st)
		}
		// Once a connection is closed, its place is free again.
		la1.Close()
		if la5 := h.offer(newConn("192.0.2.1")); la5 == nil {
			t.Error("no connection after one of the client's closed")
		}
	})
}

// TestListenerMax: a full listener closes a quiet connection before an
// idle one, and of idle ones one of the client holding the most, the
// oldest.
func TestListenerMax(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, ListenOptions{Max: 4})
		l := h.l
		a1, a2, b1, q := newConn("192.0.2.1"), newConn("192.0.2.1"), newConn("192.0.2.2"), newConn("192.0.2.3")
		for _, c := range []*fakeConn{b1, a1, a2} {
			lc := h.offer(c)
			l.Active(lc)
			time.Sleep(time.Second)
			l.Idle(lc) // served a request, waits for the next
		}
		h.offer(q) // quiet: sent nothing yet
		lc1 := h.offer(newConn("192.0.2.4"))
		if lc1 == nil || !q.isClosed() {
			t.Fatalf("full listener: the quiet connection was not the one closed (quiet %v, a1 %v, a2 %v, b1 %v)",
				q.isClosed(), a1.isClosed(), a2.isClosed(), b1.isClosed())
		}
		l.Active(lc1)
		c2 := newConn("192.0.2.5")
		if h.offer(c2) == nil || !a1.isClosed() || a2.isClosed() || b1.isClosed() {
			t.Errorf("full listener of idle connections: closed a1 %v, a2 %v, b1 %v; want a1 (client with most, oldest idle; b1 idle longer but alone)",
				a1.isClosed(), a2.isClosed(), b1.isClosed())
		}
	})
}

// wrapped is a connection on top of the Listener's, as *tls.Conn is.
type wrapped struct{ net.Conn }

func (w wrapped) NetConn() net.Conn { return w.Conn }

// TestListenerMarksThroughWrappers: Active and Idle find the connection
// under a TLS connection, which is what net/http's ConnState hook gets.
func TestListenerMarksThroughWrappers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, ListenOptions{Max: 1})
		l := h.l
		a := newConn("192.0.2.1")
		la := h.offer(a)
		l.Active(wrapped{la})
		if lc := h.offer(newConn("192.0.2.2")); lc != nil || a.isClosed() {
			t.Errorf("a busy connection marked through its wrapper was closed for room")
		}
		l.Idle(wrapped{la})
		if lc := h.offer(newConn("192.0.2.2")); lc == nil || !a.isClosed() {
			t.Errorf("an idle connection marked through its wrapper was not closed for room")
		}
	})
}

// TestListenerWaitsForRoom: when every connection of a full listener is
// busy, a new one waits for one to end or fall idle, up to roomWait, and
// is refused after that.
func TestListenerWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, ListenOptions{Max: 2})
		l := h.l
		la, lb := h.offer(newConn("192.0.2.1")), h.offer(newConn("192.0.2.2"))
		l.Active(la)
		l.Active(lb)
		c := newConn("192.0.2.3")
		if lc := h.offer(c); lc != nil || c.isClosed() {
			t.Fatalf("a connection to a full, busy listener: handed out %v, closed %v; want it waiting", lc != nil, c.isClosed())
		}
		la.Close() // a request ends, and its connection with it
		synctest.Wait()
		var lc net.Conn
		select {
		case lc = <-h.out:
		default:
			t.Fatal("the waiting connection was not handed out once another closed")
		}
		// Again, until the wait runs out.
		l.Active(lc)
		d := newConn("192.0.2.4")
		h.offer(d)
		time.Sleep(roomWait)
		synctest.Wait()
		if !d.isClosed() {
			t.Errorf("a connection that waited %v for room is not refused", roomWait)
		}
		if st := l.Stats(); st.Refused != 1 || st.Evicted != 0 {
			t.Errorf("stats = %+v, want 1 refused, none evicted", st)
		}
	})
}
