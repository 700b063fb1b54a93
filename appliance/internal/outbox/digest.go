// Package outbox turns queued alarms into mail: digests, folding of
// repeats, the hourly cap, backoff and the delivery loop.
//
// This file renders a digest: the alarms that share one mail.
package outbox

import (
	"fmt"
	"sort"
	"strings"

	"mailagent/appliance/alarm"
	"mailagent/appliance/internal/spool"
)

// group is the alarms of one source and code in a digest.
type group struct {
	source, code string
	first, last  alarm.Alarm
	count        int
	worst        alarm.Severity
	cleared      *alarm.Alarm // the last clear, if the group ended with one
}

// Digest is one mail's worth of alarms.
type Digest struct {
	// Device is the box's name, for the subject.
	Device string
	// Alarms are the alarms in arrival order.
	Alarms []alarm.Alarm
	// Dropped counts alarms dropped since the last mail, by severity.
	Dropped spool.Drops
}

// fold groups the alarms by source and code, in order of first arrival.
func (d *Digest) fold() []*group {
	var groups []*group
	index := map[string]*group{}
	for _, a := range d.Alarms {
		key := a.Source + "\x00" + a.Code
		g := index[key]
		if g == nil {
			g = &group{source: a.Source, code: a.Code, first: a}
			index[key] = g
			groups = append(groups, g)
		}
		if a.Severity == alarm.Cleared {
			c := a
			g.cleared = &c
			continue
		}
		if g.count == 0 || a.Severity > g.worst {
			g.worst = a.Severity
		}
		if g.count == 0 {
			g.first = a
		}
		g.count++
		g.last = a
		g.cleared = nil
	}
	return groups
}

// worst is the highest severity among the alarms that are not cleared.
func (d *Digest) worst() (alarm.Severity, bool) {
	var w alarm.Severity
	found := false
	for _, a := range d.Alarms {
		if a.Severity != alarm.Cleared && (!found || a.Severity > w) {
			w, found = a.Severity, true
		}
	}
	return w, found
}

// Subject is "device: SEVERITY CODE - text" for one alarm, and a summary
// for several: "device: 3 alarms, worst MAJOR (LINK-DOWN, FAN)".
func (d *Digest) Subject() string {
	if len(d.Alarms) == 1 {
		a := d.Alarms[0]
		first, _, _ := strings.Cut(a.Text, "\n")
		s := fmt.Sprintf("%s: %s %s", d.Device, strings.ToUpper(a.Severity.String()), a.Code)
		if first = strings.TrimSpace(first); first != "" {
			s += " - " + first
		}
		return s
	}
	var codes []string
	seen := map[string]bool{}
	for _, g := range d.fold() {
		if !seen[g.code] {
			seen[g.code] = true
			codes = append(codes, g.code)
		}
	}
	if len(codes) > 4 {
		codes = append(codes[:4], "…")
	}
	s := fmt.Sprintf("%s: %d alarms", d.Device, len(d.Alarms))
	if w, ok := d.worst(); ok {
		s += ", worst " + strings.ToUpper(w.String())
	} else {
		s += ", all cleared"
	}
	return s + " (" + strings.Join(codes, ", ") + ")"
}

const timeLayout = "2006-01-02 15:04:05 MST"

// Body is the mail text: one block per source and code, repeats folded
// ("occurred 57 times, first … last …"), a clear shown with the alarm it
// clears, and what was dropped.
func (d *Digest) Body() string {
	var b strings.Builder
	if n := d.Dropped.Total(); n > 0 {
		fmt.Fprintf(&b, "%d alarms were dropped because the queue was full (%s).\n\n", n, alarm.CountsText(d.Dropped))
	}
	groups := d.fold()
	sort.SliceStable(groups, func(i, j int) bool { return groups[i].worst > groups[j].worst })
	for i, g := range groups {
		if i > 0 {
			b.WriteString("\n")
		}
		if g.count == 0 { // only a clear
			fmt.Fprintf(&b, "CLEARED %s", g.code)
			writeSource(&b, g.source)
			fmt.Fprintf(&b, " at %s\n", g.cleared.Time.Format(timeLayout))
			writeText(&b, g.cleared.Text)
			continue
		}
		fmt.Fprintf(&b, "%s %s", strings.ToUpper(g.worst.String()), g.code)
		writeSource(&b, g.source)
		b.WriteString("\n")
		if g.count == 1 {
			fmt.Fprintf(&b, "  at %s\n", g.last.Time.Format(timeLayout))
		} else {
			fmt.Fprintf(&b, "  occurred %d times, first %s, last %s\n", g.count, g.first.Time.Format(timeLayout), g.last.Time.Format(timeLayout))
		}
		writeText(&b, g.last.Text)
		for _, det := range g.last.Details {
			fmt.Fprintf(&b, "  %s: %s\n", det.Key, det.Value)
		}
		if g.cleared != nil {
			fmt.Fprintf(&b, "  cleared at %s", g.cleared.Time.Format(timeLayout))
			if t := strings.TrimSpace(g.cleared.Text); t != "" {
				fmt.Fprintf(&b, ": %s", firstLine(t))
			}
			b.WriteString("\n")
		}
	}
	fmt.Fprintf(&b, "\n-- \nmailagent on %s\n", d.Device)
	return b.String()
}

func writeSource(b *strings.Builder, source string) {
	if source != "" {
		fmt.Fprintf(b, " from %s", source)
	}
}

func writeText(b *strings.Builder, text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if line = strings.TrimRight(line, "\r"); line != "" {
			fmt.Fprintf(b, "  %s\n", line)
		}
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}
