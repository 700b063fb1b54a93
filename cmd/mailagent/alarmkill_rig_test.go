//go:build rig

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"net/mail"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"mailagent/appliance/agent"
	"mailagent/appliance/alarm"
	"mailagent/appliance/testrig"
	"mailagent/board"
)

// TestKillAgentWhileAlarmsArrive kills the agent with SIGKILL at random
// moments while alarms are raised, round after round. Every alarm that got a
// success answer must arrive in the Maildir in the end; duplicates are
// allowed (delivery is at least once) and counted.
func TestKillAgentWhileAlarmsArrive(t *testing.T) {
	const rounds = 200
	const perRound = 3
	rig := testrig.Start(t)
	bin := filepath.Join(t.TempDir(), "mailagent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := t.TempDir()
	for k, v := range map[string]string{
		"mail.from": rig.User, "mail.to": "ops-kill9@example.test", "smtp.host": rig.Host, "smtp.port": strconv.Itoa(rig.SubmissionPort),
		"smtp.ca_file": rig.CAFile, "smtp.user": rig.User, "smtp.password": rig.Password,
		"alarms.digest_window": "0s", "alarms.max_mails_per_hour": "100000", "alarms.persistent_queue_entries": "1000", "http.listen": "127.0.0.1:0",
	} {
		mustRun(t, nil, "--data", data, "config", "set", k, v)
	}
	raiser, err := agent.New(agent.Options{Board: board.Profile{Name: "host"}, DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	var accepted []string
	var spooledDirect int
	for i := range rounds {
		cmd := exec.Command(bin, "--data", data, "run")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		kill := time.Duration(rand.IntN(300)) * time.Millisecond
		var wg sync.WaitGroup
		var mu sync.Mutex
		for j := range perRound {
			code := fmt.Sprintf("K%03d-%d", i, j)
			wg.Go(func() {
				time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
				sev := alarm.Major
				if j%2 == 1 {
					sev = alarm.Critical
				}
				spooled, err := raiser.Raise(context.Background(), alarm.Alarm{Time: time.Now(), Severity: sev, Code: code, Text: "kill test"})
				if err == nil {
					mu.Lock()
					accepted = append(accepted, code)
					if spooled {
						spooledDirect++
					}
					mu.Unlock()
				}
			})
		}
		time.Sleep(kill)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		wg.Wait()
	}
	// A last agent delivers what is left.
	cmd := exec.Command(bin, "--data", data, "run")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	want := map[string]bool{}
	for _, c := range accepted {
		want[c] = true
	}
	seen := map[string]int{}
	code := regexp.MustCompile(`(?m)^(?:MAJOR|CRITICAL) (K\d{3}-\d)`)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		clear(seen)
		for _, raw := range rig.Mails(t) {
			m, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil || m.Header.Get("To") != "<ops-kill9@example.test>" {
				continue
			}
			body, _ := io.ReadAll(quotedprintable.NewReader(m.Body))
			for _, sm := range code.FindAllStringSubmatch(string(body), -1) {
				seen[sm[1]]++
			}
		}
		missing := 0
		for c := range want {
			if seen[c] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d accepted alarms never arrived", missing, len(want))
		}
		time.Sleep(500 * time.Millisecond)
	}
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("%d rounds, %d alarms raised, %d accepted (%d straight into the spool while no agent answered), %d arrived, %d duplicates, 0 lost",
		rounds, rounds*perRound, len(accepted), spooledDirect, len(seen), dups)
}
