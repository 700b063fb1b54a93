package powercut

import (
	"errors"
	"fmt"
)

// Cut is one cut point of an Enumerate run.
type Cut struct {
	// After is the change the power went after (1 is the first) of the Of
	// the operation makes when it runs to the end; Op is that change.
	After, Of int
	Op        Op
	Loss      Loss
}

func (c Cut) String() string {
	return fmt.Sprintf("cut after change %d of %d (%s), %s", c.After, c.Of, c.Op, c.Loss)
}

// Enumerate runs op on a clone of base to count the changes it makes;
// then, for each of those changes and each of Losses, runs op again on a
// new clone of base with the power cut after that change, and calls check
// with the cut, the file system that comes back (Restart) and what op
// returned. op must make the same changes each time it runs to the end,
// and must be done with fsys when it returns.
//
// It returns the number of cut points: the changes of one run. It fails
// when op makes no change, or when a run with a cut armed never got there
// (op is not deterministic, and some points would go untested).
func Enumerate[R any](base *FS, op func(fsys *FS) R, check func(c Cut, after *FS, r R)) (int, error) {
	probe := base.Clone()
	op(probe)
	ops := probe.Ops()
	if len(ops) == 0 {
		return 0, errors.New("powercut: the operation made no change: nothing to cut")
	}
	var errs []error
	for i, o := range ops {
		for _, loss := range Losses {
			fsys := base.Clone()
			fsys.CutAfter(i + 1)
			r := op(fsys)
			c := Cut{After: i + 1, Of: len(ops), Op: o, Loss: loss}
			if !fsys.Off() {
				errs = append(errs, fmt.Errorf("powercut: %s: the run made only %d changes, so the power never went", c, len(fsys.Ops())))
				continue
			}
			if got := fsys.Ops()[i]; got.Kind != o.Kind {
				errs = append(errs, fmt.Errorf("powercut: %s: the run's change %d was %s", c, i+1, got))
			}
			check(c, fsys.Restart(loss), r)
		}
	}
	return len(ops), errors.Join(errs...)
}
