package spool

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"

	"mailagent/appliance/alarm"
)

// TestSharedDirectory runs goroutines on two Spool values of one directory
// (as the agent and "mailagent alarm" would be): no entry is lost or
// duplicated, the bound holds and every drop is counted exactly once.
func TestSharedDirectory(t *testing.T) {
	const (
		workers = 4
		each    = 15
	)
	tests := []struct {
		name string
		max  int
	}{
		{"room for all", workers * each},
		{"evicting", 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s1, dir := newForTest(t, tt.max)
			s2 := openForTest(t, dir, tt.max)
			var wg sync.WaitGroup
			errs := make(chan error, workers*each)
			for w := range workers {
				s := []*Spool{s1, s2}[w%2]
				wg.Go(func() {
					for i := range each {
						if _, err := s.Put(mk(alarm.Minor, fmt.Sprintf("W%d-%d", w, i))); err != nil {
							errs <- err
						}
						if i%5 == 0 {
							if _, err := s.List(); err != nil {
								errs <- err
							}
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}

			l := list(t, s1)
			want := min(tt.max, workers*each)
			if len(l) != want {
				t.Fatalf("%d entries, want %d", len(l), want)
			}
			if err := s2.Rescan(); err != nil {
				t.Fatal(err)
			}
			if s2.Len() != want {
				t.Errorf("the other Spool sees %d entries, want %d", s2.Len(), want)
			}
			ids := make(map[ID]bool)
			for _, e := range l {
				if ids[e.ID] {
					t.Errorf("ID %s twice", e.ID)
				}
				ids[e.ID] = true
			}
			c := codes(l)
			if len(slices.Compact(slices.Sorted(slices.Values(c)))) != len(c) {
				t.Errorf("an alarm is queued twice: %q", c)
			}
			if got, want := s2.Stats().Drops, (Drops{alarm.Minor: workers*each - want}); got != want {
				t.Errorf("Drops = %v, want %v", got, want)
			}

			// Each removes half of what the other put.
			var half [2][]ID
			for i, e := range l {
				half[i%2] = append(half[i%2], e.ID)
			}
			wg.Go(func() {
				if err := s1.Remove(half[0]...); err != nil {
					t.Error(err)
				}
			})
			wg.Go(func() {
				if err := s2.Remove(half[1]...); err != nil {
					t.Error(err)
				}
			})
			wg.Wait()
			if l := list(t, s2); len(l) != 0 {
				t.Errorf("after removing all: %d entries", len(l))
			}
		})
	}
}

// TestTwoProcesses puts alarms from this process and a child process into
// one spool at the same time.
func TestTwoProcesses(t *testing.T) {
	const each, max = 20, 25
	s, dir := newForTest(t, max)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), "SPOOL_HELPER_DIR="+dir, "SPOOL_HELPER_N="+strconv.Itoa(each),
		"SPOOL_HELPER_MAX="+strconv.Itoa(max))
	out := make(chan error, 1)
	go func() {
		b, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, b)
		}
		out <- err
	}()
	for i := range each {
		put(t, s, mk(alarm.Warning, fmt.Sprint("PARENT-", i)))
	}
	if err := <-out; err != nil {
		t.Fatalf("child: %v", err)
	}
	l := list(t, s)
	if len(l) != max {
		t.Fatalf("%d entries, want %d", len(l), max)
	}
	if got, want := s.Stats().Drops, (Drops{alarm.Warning: 2*each - max}); got != want {
		t.Errorf("Drops = %v, want %v", got, want)
	}
	child := 0
	for _, e := range l {
		if e.Alarm.Source == "child" {
			child++
		}
	}
	t.Logf("%d of %d queued entries came from the child", child, len(l))
}

// TestHelperProcess is the child of TestTwoProcesses.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv("SPOOL_HELPER_DIR")
	if dir == "" {
		t.Skip("run by TestTwoProcesses")
	}
	n, _ := strconv.Atoi(os.Getenv("SPOOL_HELPER_N"))
	max, _ := strconv.Atoi(os.Getenv("SPOOL_HELPER_MAX"))
	s := openForTest(t, dir, max)
	for i := range n {
		a := mk(alarm.Warning, fmt.Sprint("CHILD-", i))
		a.Source = "child"
		put(t, s, a)
	}
}
