//go:build rig

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mailagent/appliance/agent"
	"mailagent/appliance/alarm"
	"mailagent/appliance/testrig"
)

// TestStorm fires 10,000 alarms as fast as it can from two ways in (HTTP
// and the local socket) at an agent running as its own process. Every
// alarm must be accepted or refused with a retryable answer; every accepted
// one must end up in a mail (folded or not), reported as dropped, or still
// queued; and no more than max_mails_per_hour mails may leave. The agent's
// peak resident memory is logged (make bench prints it).
func TestStorm(t *testing.T) {
	const total = 10000
	const maxMails = 5
	rig := testrig.Start(t)
	bin := filepath.Join(t.TempDir(), "mailagent")
	if b := os.Getenv("MAILAGENT_STORM_BIN"); b != "" {
		bin = b // kept, e.g. for a profiler to read its symbols
	}
	if out, err := exec.Command("go", "build", "-tags", "nethttpomithttp2", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := t.TempDir()
	httpPort := freePort(t, "tcp")
	for k, v := range map[string]string{
		"device.name": "gw-storm", "mail.from": rig.User, "mail.to": "ops-storm@example.test",
		"smtp.host": rig.Host, "smtp.port": strconv.Itoa(rig.SubmissionPort), "smtp.ca_file": rig.CAFile,
		"smtp.user": rig.User, "smtp.password": rig.Password,
		"alarms.digest_window": "2s", "alarms.max_mails_per_hour": strconv.Itoa(maxMails), "alarms.min_severity": "info",
		"http.listen": fmt.Sprintf("127.0.0.1:%d", httpPort), "http.alarm_user": "poster", "http.alarm_password": "poster-password",
	} {
		mustRun(t, nil, "--data", data, "config", "set", k, v)
	}
	agent := exec.Command(bin, "--data", data, "run")
	stdout, _ := agent.StdoutPipe()
	var agentLog syncBuffer
	agent.Stderr = &agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		agent.Process.Signal(syscall.SIGTERM)
		agent.Wait()
		if t.Failed() {
			t.Logf("agent log:\n%s", agentLog.String())
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.Contains(sc.Text(), "running on board") {
	}
	go io.Copy(io.Discard, stdout)

	severities := []alarm.Severity{alarm.Info, alarm.Warning, alarm.Minor, alarm.Major, alarm.Critical}
	var accepted, refused, failed atomic.Int64
	var failures sync.Map
	socket := filepath.Join(data, "run", "mailagent.sock")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: time.Minute}
	start := time.Now()
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for w := range 24 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				a := alarm.Alarm{Time: time.Now(), Severity: severities[i%5], Code: fmt.Sprintf("STORM-%d", i%7),
					Source: fmt.Sprintf("way-%d", w%2), Text: fmt.Sprintf("storm alarm %d", i)}
				var ok, retry bool
				var why string
				if w%2 == 0 {
					body, _ := json.Marshal(a)
					req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/alarm", httpPort), bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.SetBasicAuth("poster", "poster-password")
					resp, err := client.Do(req)
					if err != nil {
						why = err.Error()
					} else {
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						ok, retry = resp.StatusCode == 200, resp.StatusCode == 503 && resp.Header.Get("Retry-After") != ""
						why = resp.Status + " " + string(b)
					}
				} else {
					answer, err := socketSend(socket, a)
					ok, retry = err == nil && answer == "ok", err == nil && strings.Contains(answer, "try again later")
					why = fmt.Sprint(answer, err)
				}
				switch {
				case ok:
					accepted.Add(1)
				case retry:
					refused.Add(1)
				default:
					failed.Add(1)
					failures.Store(why, true)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	cpu := procCPU(t, agent.Process.Pid)
	if n := failed.Load(); n != 0 {
		var whys []string
		failures.Range(func(k, _ any) bool { whys = append(whys, k.(string)); return len(whys) < 5 })
		t.Fatalf("%d alarms got neither success nor a retryable refusal: %q", n, whys)
	}
	// Let the agent mail what it can within the cap.
	time.Sleep(6 * time.Second)
	peak := procStatus(t, agent.Process.Pid, "VmHWM")

	// What the mails carry, between two looks at the queues that agree,
	// so that no mail left while the Maildir was read; the pause lets
	// Postfix file a mail it took just before the first look.
	var mailed, dropped, mails int
	var q stormQueue
	for try := 0; ; try++ {
		before := stormQueues(t, data)
		time.Sleep(time.Second)
		mailed, dropped, mails = stormMails(t, rig)
		if q = stormQueues(t, data); q == before {
			break
		}
		if try == 5 {
			t.Fatalf("the queues keep changing: %+v, then %+v", before, q)
		}
		time.Sleep(time.Second)
	}
	t.Logf("storm: %d alarms in %v (agent CPU %v) from HTTP and the socket: %d accepted, %d refused with a retryable answer; "+
		"%d mails (cap %d/h) carrying %d alarms (folded), %d reported dropped; %d dropped and not reported yet, %d on flash, %d in memory; agent peak RSS %.1f MiB",
		total, took.Round(time.Millisecond), cpu.Round(time.Millisecond), accepted.Load(), refused.Load(), mails, maxMails, mailed, dropped, q.droppedCount(t), q.Spooled, q.Memory, float64(peak)/(1<<20))
	if mails > maxMails {
		t.Errorf("%d mails left the box, max_mails_per_hour is %d", mails, maxMails)
	}
	if mails == 0 {
		t.Fatal("no storm mail arrived")
	}
	// Every accepted alarm is accounted for: mailed, dropped (reported in a
	// mail or counted for the next), or still queued.
	if got := int64(mailed + dropped + q.droppedCount(t) + q.Spooled + q.Memory); got != accepted.Load() {
		t.Errorf("accepted %d, but mailed %d + reported dropped %d + dropped since %d + on flash %d + in memory %d = %d",
			accepted.Load(), mailed, dropped, q.droppedCount(t), q.Spooled, q.Memory, got)
	}
	if out := os.Getenv("MAILAGENT_STORM_RESULT"); out != "" {
		os.WriteFile(out, []byte(fmt.Sprintf("storm %d alarms in %v (agent CPU %v): %d accepted, %d refused (retryable), %d mails (cap %d), peak RSS %.1f MiB (budget 24)\n",
			total, took.Round(time.Millisecond), cpu.Round(time.Millisecond), accepted.Load(), refused.Load(), mails, maxMails, float64(peak)/(1<<20))), 0o644)
	}
}

// stormMails counts what the storm's mails in the rig's Maildir carry:
// alarms (each group line once, or as often as it occurred) and the drops
// they report.
func stormMails(t *testing.T, rig *testrig.Rig) (mailed, dropped, mails int) {
	group := regexp.MustCompile(`(?m)^(?:CRITICAL|MAJOR|MINOR|WARNING|INFO) STORM-\d from way-\d\n  (?:at |occurred (\d+) times)`)
	drops := regexp.MustCompile(`(\d+) alarms were dropped because the queue was full`)
	for _, raw := range rig.Mails(t) {
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil || !strings.Contains(m.Header.Get("To"), "ops-storm") {
			continue
		}
		mails++
		b, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
		for _, g := range group.FindAllStringSubmatch(string(b), -1) {
			if g[1] == "" {
				mailed++
			} else {
				n, _ := strconv.Atoi(g[1])
				mailed += n
			}
		}
		for _, d := range drops.FindAllStringSubmatch(string(b), -1) {
			n, _ := strconv.Atoi(d[1])
			dropped += n
		}
	}
	return mailed, dropped, mails
}

// stormQueue is what "status --json" says of the queues.
type stormQueue struct {
	Memory   int    `json:"memory"`
	Spooled  int    `json:"spooled"`
	Dropped  string `json:"dropped"` // "N (by severity)", drops not reported yet
	LastMail string `json:"last_mail"`
}

func stormQueues(t *testing.T, data string) stormQueue {
	t.Helper()
	var st agent.Status
	if err := json.Unmarshal([]byte(mustRun(t, nil, "--data", data, "status", "--json")), &st); err != nil {
		t.Fatalf("status --json: %v", err)
	}
	q := stormQueue{Memory: st.Queue.Memory, Spooled: st.Queue.Spooled, Dropped: st.Queue.Dropped}
	if st.Delivery.LastMail != nil {
		q.LastMail = st.Delivery.LastMail.Format(time.RFC3339)
	}
	return q
}

// droppedCount adds up the Dropped text, "3 major, 40 info".
func (q stormQueue) droppedCount(t *testing.T) int {
	n := 0
	for part := range strings.SplitSeq(q.Dropped, ", ") {
		if part == "" {
			continue
		}
		f, _, _ := strings.Cut(part, " ")
		c, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("status says dropped %q, not counts by severity", q.Dropped)
		}
		n += c
	}
	return n
}

// socketSend sends one alarm over the agent's socket and returns its answer.
func socketSend(path string, a alarm.Alarm) (string, error) {
	c, err := net.DialTimeout("unix", path, 10*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	b, _ := json.Marshal(a)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}
