package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"mailagent/appliance/agent"
	"mailagent/appliance/config"
	"mailagent/board"
)

// TestConcurrentConfigChanges is finding L2: "config set" of four keys at
// once (each opening the files for itself, as processes do) and the web
// page's Save of a fifth (Admin.UpdateConfig), for a bounded number of
// rounds. Every change succeeds and every one is in the file afterwards:
// none is lost, none fails because another was writing. Before, a save
// read the file, another saved, and the first wrote over it; and one
// save's clean-up removed the other's temporary file mid-rename.
func TestConcurrentConfigChanges(t *testing.T) {
	const rounds = 25
	dir := t.TempDir()
	path := filepath.Join(dir, config.FileName)
	a, err := agent.New(agent.Options{Board: board.Profile{Name: "host"}, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	page := agent.NewAdmin(a)
	keys := []string{"mail.from_name", "mail.to_name", "mail.subject_prefix", "device.name"}
	ctx := context.Background()
	failures := 0
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make(chan string, len(keys)+1)
		for _, k := range keys {
			wg.Go(func() {
				var out, stderr bytes.Buffer
				if code := run(ctx, []string{"--board", "host", "--data", dir, "config", "set", k, fmt.Sprintf("r%d", round)}, nil, &out, &stderr); code != 0 {
					errs <- fmt.Sprintf("config set %s: exit %d: %s", k, code, stderr.String())
				}
			})
		}
		wg.Go(func() {
			if err := page.UpdateConfig(func(c *config.Config) error {
				c.SMTP.HELO = fmt.Sprintf("r%d.example.test", round)
				return nil
			}); err != nil {
				errs <- fmt.Sprintf("page Save: %v", err)
			}
		})
		wg.Wait()
		close(errs)
		for e := range errs {
			failures++
			t.Errorf("round %d: %s", round, e)
		}
		f, err := config.Load(path)
		if err != nil || f.Damaged != nil {
			t.Fatalf("round %d: Load = %v, %v", round, err, f)
		}
		c := f.Config
		for _, k := range keys {
			key, _ := config.LookupKey(k)
			if got, want := key.Get(&c), fmt.Sprintf("r%d", round); got != want {
				t.Errorf("round %d: %s = %q, want %q: an update was lost", round, k, got, want)
			}
		}
		if got, want := c.SMTP.HELO, fmt.Sprintf("r%d.example.test", round); got != want {
			t.Errorf("round %d: the page's smtp.helo = %q, want %q: lost", round, got, want)
		}
	}
	t.Logf("%d rounds of %d config sets and a page Save at once: %d failures", rounds, len(keys), failures)
}
