package main

// mailagent.toml, tokens.toml and their good copies, each sound, empty,
// missing, cut short at a line end or with a bit flipped, in every
// combination: status names the damage, the good copy is used where it
// is sound, the box never runs on defaults without saying so, and
// "mailagent alarm" queues the alarm on flash.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailagent/appliance/agent"
	"mailagent/appliance/config"
	"mailagent/appliance/oauth"
)

// damageState is what a file on flash is like.
type damageState int

const (
	stateSound damageState = iota
	stateEmpty
	stateMissing
	stateCut     // at a line end, where what is left may still parse
	stateFlipped // the top bit of the middle byte
)

var damageStates = []damageState{stateSound, stateEmpty, stateMissing, stateCut, stateFlipped}

func (s damageState) String() string {
	return [...]string{"sound", "empty", "missing", "cut-short", "bit-flipped"}[s]
}

// damage writes data to path in state s.
func damage(t *testing.T, path string, data []byte, s damageState) {
	t.Helper()
	switch s {
	case stateMissing:
		return
	case stateEmpty:
		data = nil
	case stateCut:
		lines := bytes.SplitAfter(data, []byte("\n"))
		data = bytes.Join(lines[:len(lines)/2], nil)
	case stateFlipped:
		data = bytes.Clone(data)
		data[len(data)/2] ^= 0x80
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// saved returns the bytes config.Save and oauth.SaveTokens write for a
// box whose mail goes from who@example.test, with tokens of account who.
func saved(t *testing.T, who string) (cfg, tok []byte) {
	t.Helper()
	dir := t.TempDir()
	var c config.Config
	for k, v := range map[string]string{"mail.from": who + "@example.test", "mail.to": "ops@example.test",
		"oauth2.mode": "exchange", "oauth2.tenant": "contoso.example", "oauth2.client_id": "app-1", "oauth2.client_secret": "s3cret"} {
		key, err := config.LookupKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := key.Set(&c, v); err != nil {
			t.Fatal(err)
		}
	}
	cp := filepath.Join(dir, config.FileName)
	if err := config.Save(cp, &c); err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	tp := filepath.Join(dir, oauth.TokensFileName)
	if err := oauth.SaveTokens(tp, &oauth.Tokens{RefreshToken: config.NewSecret("rt-" + who), Mode: "exchange", ClientID: "app-1",
		Account: who + "@example.test", Obtained: when, Refreshed: when, State: oauth.StateOK}); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(cp)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err = os.ReadFile(tp); err != nil {
		t.Fatal(err)
	}
	return cfg, tok
}

// expectFor says which copy a file and its good copy in states f and g
// give ("file", "good" or "" for none) and what the warnings must name
// ("" for nothing): the rules of README "Files".
func expectFor(name string, f, g damageState) (from string, warn []string) {
	switch {
	case f == stateSound && (g == stateSound || g == stateMissing):
		return "file", nil
	case f == stateSound:
		return "file", []string{name + ".good is damaged"}
	case g == stateSound:
		return "good", []string{name + " is damaged", "using "}
	case f == stateMissing && g == stateMissing:
		return "", nil // a new box
	case f == stateEmpty && g == stateMissing:
		return "", []string{name + " is empty (0 bytes) and has no good copy"}
	case g == stateMissing:
		return "", []string{name + " is damaged"}
	}
	return "", []string{name + " is damaged", name + ".good cannot be used either"}
}

// TestDamagedFiles is must-show 5 of issue 12 and finding M6: every
// combination of the four files' states. Each time "mailagent status"
// exits 0, names the damage among its warnings, shows the configuration
// and tokens of the file or of its good copy where they are sound, and
// when it has no configuration says why (a new box, or the damage);
// "mailagent alarm" then queues the alarm on flash, and status counts it.
func TestDamagedFiles(t *testing.T) {
	fileCfg, fileTok := saved(t, "file")
	goodCfg, goodTok := saved(t, "good")
	ctx := context.Background()
	n := 0
	by := map[string]int{}
	for _, cf := range damageStates {
		for _, cg := range damageStates {
			for _, tf := range damageStates {
				for _, tg := range damageStates {
					n++
					name := fmt.Sprintf("config-%v_good-%v_tokens-%v_good-%v", cf, cg, tf, tg)
					dir := filepath.Join(t.TempDir(), "data")
					if err := os.Mkdir(dir, 0o700); err != nil {
						t.Fatal(err)
					}
					cp, tp := filepath.Join(dir, config.FileName), filepath.Join(dir, oauth.TokensFileName)
					damage(t, cp, fileCfg, cf)
					damage(t, cp+".good", goodCfg, cg)
					damage(t, tp, fileTok, tf)
					damage(t, tp+".good", goodTok, tg)

					var out, errOut bytes.Buffer
					code := run(ctx, []string{"--board", "host", "--data", dir, "alarm", "--severity", "major", "--code", "DISK-FULL", "disk full"}, nil, &out, &errOut)
					if code != 0 || !strings.Contains(out.String(), "queued on flash") {
						t.Errorf("%s: alarm exit %d\n%s%s", name, code, out.String(), errOut.String())
						continue
					}
					out.Reset()
					errOut.Reset()
					if code := run(ctx, []string{"--board", "host", "--data", dir, "status", "--json"}, nil, &out, &errOut); code != 0 {
						t.Errorf("%s: status exit %d\n%s", name, code, errOut.String())
						continue
					}
					var st agent.Status
					if err := json.Unmarshal(out.Bytes(), &st); err != nil {
						t.Fatalf("%s: %v\n%s", name, err, out.String())
					}
					warnings := strings.Join(st.Warnings, "\n")
					problems := fmt.Sprint(st.Problems)
					if st.Queue.Spooled != 1 {
						t.Errorf("%s: status counts %d alarms on flash, want the one queued", name, st.Queue.Spooled)
					}

					cfgFrom, cfgWarn := expectFor(config.FileName, cf, cg)
					tokFrom, tokWarn := expectFor(oauth.TokensFileName, tf, tg)
					for _, w := range append(cfgWarn, tokWarn...) {
						if !strings.Contains(warnings, w) {
							t.Errorf("%s: warnings do not say %q:\n%s", name, w, warnings)
						}
					}
					if cfgWarn == nil && strings.Contains(warnings, config.FileName+" ") || tokWarn == nil && strings.Contains(warnings, oauth.TokensFileName) {
						t.Errorf("%s: warnings about sound files:\n%s", name, warnings)
					}
					if got := strings.TrimSuffix(st.MailFrom, "@example.test"); got != cfgFrom {
						t.Errorf("%s: configuration from %q (mail.from %q), want %q", name, got, st.MailFrom, cfgFrom)
					}
					switch {
					case cfgFrom == "" && cfgWarn == nil:
						if !strings.Contains(problems, "no configuration yet") {
							t.Errorf("%s: a new box that does not say so: %s", name, problems)
						}
					case cfgFrom == "":
						if !strings.Contains(warnings, "sends no mail") && !strings.Contains(warnings, "there is no configuration") {
							t.Errorf("%s: no configuration, and the warnings do not say so:\n%s", name, warnings)
						}
					default:
						account := ""
						if st.OAuth2 != nil {
							account = strings.TrimSuffix(st.OAuth2.Account, "@example.test")
						}
						if account != tokFrom {
							t.Errorf("%s: tokens from %q, want %q (status %+v)", name, account, tokFrom, st.OAuth2)
						}
					}
					switch {
					case cfgFrom != "":
						by["configuration from "+cfgFrom+", tokens from "+or(tokFrom, "none")]++
					case cfgWarn == nil:
						by["a new box"]++
					default:
						by["no configuration, damage named"]++
					}
				}
			}
		}
	}
	t.Logf("%d combinations of %d states (%v) of the 4 files, each with an alarm queued on flash:", n, len(damageStates), damageStates)
	for _, k := range slices.Sorted(maps.Keys(by)) {
		t.Logf("  %3d %s", by[k], k)
	}
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// TestOneBadValue is finding H3 as the reviewer made it: config set of a
// value with a line break and a byte that is not UTF-8 is refused with
// the key named, the files stay as they were, and status, config check
// and alarm go on working. Before, both copies held the raw byte and all
// three exited 1.
func TestOneBadValue(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	mailagent := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(ctx, append([]string{"--board", "host", "--data", dir}, args...), strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}
	for _, kv := range [][2]string{{"mail.from", "alarm@example.test"}, {"mail.to", "ops@example.test"}, {"smtp.host", "smtp.example.test"},
		{"oauth2.mode", "google-service-account"}, {"oauth2.client_email", "sa@p.iam.gserviceaccount.com"}, {"oauth2.subject", "alarm@example.test"}} {
		if code, _, stderr := mailagent("config", "set", kv[0], kv[1]); code != 0 {
			t.Fatalf("config set %s: %s", kv[0], stderr)
		}
	}
	before, _ := os.ReadFile(filepath.Join(dir, config.FileName))
	good, _ := os.ReadFile(filepath.Join(dir, config.FileName+".good"))
	code, _, stderr := mailagent("config", "set", "oauth2.subject", "line1\nline2 caf\xe9")
	if code != 1 || !strings.Contains(stderr, "error: oauth2.subject: ") || !strings.Contains(stderr, "nothing was written") {
		t.Errorf("config set of the bad value: exit %d\n%s", code, stderr)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, config.FileName)); !bytes.Equal(now, before) {
		t.Errorf("mailagent.toml changed")
	}
	if now, _ := os.ReadFile(filepath.Join(dir, config.FileName+".good")); !bytes.Equal(now, good) {
		t.Errorf("mailagent.toml.good changed")
	}
	if code, _, stderr := mailagent("status"); code != 0 {
		t.Errorf("status: exit %d\n%s", code, stderr)
	}
	if code, stdout, stderr := mailagent("config", "check"); code != 1 || !strings.Contains(stderr, "oauth2.private_key: not set") {
		t.Errorf("config check: exit %d, want the missing key only\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := mailagent("alarm", "--severity", "critical", "--code", "PSU-FAIL", "power supply failed"); code != 0 || !strings.Contains(stdout, "queued on flash") {
		t.Errorf("alarm: exit %d\n%s%s", code, stdout, stderr)
	}
}
