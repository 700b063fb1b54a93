package agent

import (
	"fmt"
	"log/syslog"
	"os"
)

// deliveryChanged is told by the outbox when mail starts failing and when
// it works again. Since mail is the thing that is broken, the box says so
// other ways: the agent's log and status, the local syslog, and the
// board's attention indicator.
func (a *Agent) deliveryChanged(failing error) {
	a.mu.Lock()
	a.failingErr = failing
	a.mu.Unlock()
	led := "0"
	msg := "alarm mail is delivered again"
	prio := syslog.LOG_NOTICE
	if failing != nil {
		led = "1"
		msg = fmt.Sprintf("alarm mail cannot be delivered: %v", failing)
		if h := Hint(failing); h != "" {
			msg += "; " + h
		}
		prio = syslog.LOG_ERR
	}
	if path := a.board.Attention; path != "" {
		if err := os.WriteFile(path, []byte(led+"\n"), 0o644); err != nil {
			a.log.Warn("attention indicator not set", "path", path, "err", err)
		}
	}
	if w, err := syslog.New(prio|syslog.LOG_DAEMON, "mailagent"); err == nil {
		w.Write([]byte(msg))
		w.Close()
	}
	if failing != nil {
		a.log.Error(msg)
	} else {
		a.log.Info(msg)
	}
}
