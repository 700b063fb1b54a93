//go:build rig

package main

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"mailagent/appliance/oauthtest"
	"mailagent/appliance/testrig"
)

// TestKillDuringRefresh kills "mailagent test" with SIGKILL at random
// moments while it refreshes its token against a provider that rotates
// refresh tokens on every use (Microsoft's policy: the old one stays
// valid). After every kill, tokens.toml must parse and hold a refresh token
// the server still accepts, and the box must still send mail at the end.
func TestKillDuringRefresh(t *testing.T) {
	const rounds = 120
	rig := testrig.Start(t)
	bin := filepath.Join(t.TempDir(), "mailagent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	srv := oauthtest.NewServer(t, oauthtest.Options{Flavour: oauthtest.Microsoft, Rotation: oauthtest.Rotate, Hub: rig.Tokens,
		Account: rig.User, Clients: []oauthtest.Client{{ID: "app-kill", Secret: "kill-secret", Auth: oauthtest.AuthPost, RedirectURIs: []string{redirectURL}}}})
	data := t.TempDir()
	for k, v := range map[string]string{
		"mail.from": rig.User, "mail.to": "ops-kill@example.test", "smtp.host": rig.Host, "smtp.port": strconv.Itoa(rig.SubmissionPort),
		"smtp.ca_file": rig.CAFile, "smtp.auth": "oauth2", "oauth2.mode": "exchange", "oauth2.authority": srv.URL() + "/",
		"oauth2.tenant": srv.Tenant(), "oauth2.client_id": "app-kill", "oauth2.client_secret": "kill-secret", "oauth2.redirect_url": redirectURL,
	} {
		mustRun(t, nil, "--data", data, "config", "set", k, v)
	}
	authorize(t, srv, data, "paste")

	tokensPath := filepath.Join(data, "tokens.toml")
	onFlash := func() string {
		var f struct {
			RefreshToken string `toml:"refresh_token"`
		}
		b, err := os.ReadFile(tokensPath)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := toml.Decode(string(b), &f); err != nil {
			t.Fatalf("tokens.toml does not parse after a kill: %v", err)
		}
		return f.RefreshToken
	}
	var finished, behind, advanced int
	for i := range rounds {
		before := onFlash()
		issued := srv.Requests("refresh_token")
		cmd := exec.Command(bin, "--data", data, "test")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.IntN(100_000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); err == nil {
			finished++
		}
		after := onFlash()
		if !slices.Contains(srv.LiveRefreshTokens(), after) {
			t.Fatalf("round %d: tokens.toml holds a refresh token the server no longer accepts", i)
		}
		refreshed := srv.Requests("refresh_token") > issued
		switch {
		case refreshed && after == before:
			behind++ // the server rotated, the kill came before the write: the old token is still valid
		case after != before:
			advanced++
		}
	}
	t.Logf("%d rounds: %d killed, %d finished first; %d refreshes saved, %d answered but killed before the write (old token kept, still valid)",
		rounds, rounds-finished, finished, advanced, behind)
	if v := srv.Violations(); len(v) != 0 {
		t.Errorf("violations: %v", v)
	}
	// The box still works.
	out := mustRun(t, nil, "--data", data, "test")
	if !strings.Contains(out, "ok: the server accepted the mail") {
		t.Errorf("mailagent test after the kills:\n%s", out)
	}
	status := mustRun(t, nil, "--data", data, "status")
	if !strings.Contains(status, "state:      ok") {
		t.Errorf("status after the kills:\n%s", status)
	}
}
