//go:build rig

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"mailagent/appliance/agent"
	"mailagent/appliance/testrig"
	"mailagent/console/ptytest"
)

// TestOutageAndRejection: the mail server is unreachable for a while (a
// TCP proxy in front of the rig's Postfix stops listening) and comes back;
// then Postfix rejects the recipient with 550. Alarms are kept through
// both, the backoff and the server's reply show in status and in the
// banner of the serial console (a pseudo-terminal opened by the agent with
// go.bug.st/serial), and everything arrives once the cause is gone.
func TestOutageAndRejection(t *testing.T) {
	rig := testrig.Start(t)
	px := &proxy{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")), target: rig.Addr(rig.SubmissionPort)}
	t.Cleanup(px.down)
	_, port, _ := net.SplitHostPort(px.addr)
	data := t.TempDir()
	term := ptytest.Open(t)
	for k, v := range map[string]string{
		"console.port": term.Port, "device.name": "gw-outage", "mail.from": rig.User, "mail.to": "ops-outage@example.test",
		"smtp.host": "127.0.0.1", "smtp.port": port, "smtp.ca_file": rig.CAFile,
		"smtp.user": rig.User, "smtp.password": rig.Password,
		"alarms.digest_window": "0s", "http.listen": "127.0.0.1:0",
	} {
		mustRun(t, nil, "--data", data, "config", "set", k, v)
	}
	startAgent(t, data)
	const wait = time.Minute
	term.WaitFor("mailagent> ", 1, wait)

	// Down: the alarms stay, and status says why and when the next try is.
	codes := []string{"OUT-CRIT", "OUT-MAJ", "OUT-WARN"}
	for i, sev := range []string{"critical", "major", "warning"} {
		mustRun(t, nil, "--data", data, "alarm", "--severity", sev, "--code", codes[i], "--source", "psu", "alarm during the outage")
	}
	first := waitQueue(t, data, "a failed try", func(q queueReport) bool { return q.Failures >= 1 })
	if !strings.Contains(first.Failing, "connection refused") || first.FailingSince == nil || first.NextTry == nil {
		t.Fatalf("status while the server is down: %+v", first)
	}
	firstWait := first.NextTry.Sub(*first.FailingSince)
	// A try now (queue flush) fails too and waits longer: 30 s doubling,
	// each ±20 %, so the second wait is over 48 s and the first under 36 s.
	mustRun(t, nil, "--data", data, "queue", "flush")
	second := waitQueue(t, data, "a second failed try", func(q queueReport) bool { return q.Failures > first.Failures })
	if left := time.Until(*second.NextTry); left <= firstWait {
		t.Errorf("backoff did not grow: %v after the first failure, %v left after the second", firstWait, left)
	}
	text := mustRun(t, nil, "--data", data, "status")
	for _, want := range []string{"FAILING", "connection refused", fmt.Sprintf("%d tries in a row", second.Failures), "next try"} {
		if !strings.Contains(text, want) {
			t.Errorf("status does not say %q:\n%s", want, text)
		}
	}
	// The console's banner says it at the next prompt.
	term.Type("\r")
	term.WaitFor("!! MAIL CANNOT BE DELIVERED: ", 1, wait)
	term.WaitFor("connection refused", 1, wait)
	t.Logf("down: %d tries, waits %v then %v; status:\n%s", second.Failures, firstWait.Round(time.Second), time.Until(*second.NextTry).Round(time.Second), text)

	// Back: a flush (or the next try) delivers every alarm.
	px.up(t)
	mustRun(t, nil, "--data", data, "queue", "flush")
	for _, c := range codes {
		waitBody(t, rig, "ops-outage@", c)
	}
	ok := waitQueue(t, data, "delivery to work", func(q queueReport) bool { return q.Failing == "" && q.LastReply != "" })
	if !strings.HasPrefix(ok.LastReply, "250") || ok.Spooled != 0 {
		t.Errorf("after the outage: %+v, want a 250 reply and nothing queued", ok)
	}
	term.Type("log 50\r")
	term.WaitFor("ok: nothing stands in the way of mail any more", 1, wait)
	term.WaitFor("level=ERROR msg=\"alarm mail cannot be delivered: ", 1, wait)
	term.WaitFor("level=INFO msg=\"alarm mail is delivered again\"", 1, wait)
	t.Logf("the serial console:\n%s", strings.ReplaceAll(term.String(), "\r\n", "\n"))

	// Rejected: a 5xx keeps the alarm and shows the reply until fixed.
	mustRun(t, nil, "--data", data, "config", "set", "mail.to", "refused@example.test")
	mustRun(t, nil, "--data", data, "alarm", "--severity", "major", "--code", "REJ-1", "--source", "psu", "alarm for a refusing mailbox")
	rej := waitQueue(t, data, "the rejection", func(q queueReport) bool { return strings.Contains(q.Failing, "550") })
	if !strings.Contains(rej.Failing, "this mailbox refuses alarm mail") || rej.Spooled != 1 {
		t.Errorf("status after a 550: %+v, want the server's reply and the alarm kept on flash", rej)
	}
	if q := mustRun(t, nil, "--data", data, "queue"); !strings.Contains(q, "REJ-1") {
		t.Errorf("queue does not list the rejected alarm:\n%s", q)
	}
	mustRun(t, nil, "--data", data, "config", "set", "mail.to", "ops-outage@example.test")
	mustRun(t, nil, "--data", data, "queue", "flush")
	waitBody(t, rig, "ops-outage@", "REJ-1")
	waitQueue(t, data, "delivery to work again", func(q queueReport) bool { return q.Failing == "" && q.Spooled == 0 })
}

// waitQueue polls "mailagent status --json" until cond holds (at most a
// minute) and returns the queue part.
func waitQueue(t *testing.T, data, what string, cond func(queueReport) bool) queueReport {
	t.Helper()
	var r agent.Status
	for range 300 {
		if err := json.Unmarshal([]byte(mustRun(t, nil, "--data", data, "status", "--json")), &r); err != nil {
			t.Fatal(err)
		}
		if q := (queueReport{r.Queue, r.Delivery}); cond(q) {
			return q
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("waited a minute for %s; status: %+v %+v", what, r.Queue, r.Delivery)
	return queueReport{}
}

// queueReport is what status says of the queue and the delivery.
type queueReport struct {
	agent.QueueReport
	agent.DeliveryReport
}

// proxy forwards TCP connections from addr to target while it is up; while
// down nothing listens on addr, so connections are refused.
type proxy struct {
	addr, target string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func (p *proxy) up(t *testing.T) {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
