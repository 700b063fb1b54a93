package main

import (
	"runtime/debug"
	"testing"
)

// TestApplyMemoryLimit: run gives the runtime the board's memory limit and
// says so, leaves one GOMEMLIMIT set, and puts the old limit back.
func TestApplyMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetMemoryLimit(-1)
	said, restore := applyMemoryLimit(20 << 20)
	if got := debug.SetMemoryLimit(-1); got != 20<<20 {
		t.Errorf("limit while running = %d, want %d", got, 20<<20)
	}
	if said != "memory limit 20 MiB" {
		t.Errorf("said %q", said)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("limit after = %d, want %d as before", got, before)
	}

	t.Setenv("GOMEMLIMIT", "64MiB")
	said, restore = applyMemoryLimit(20 << 20)
	defer restore()
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("with GOMEMLIMIT the limit is %d, want %d left as it was", got, before)
	}
	if said != "memory limit 64MiB (GOMEMLIMIT)" {
		t.Errorf("said %q", said)
	}
}
