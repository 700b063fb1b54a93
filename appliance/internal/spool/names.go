package spool

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"

	"mailagent/appliance/alarm"
)

// The files of a spool directory: records (ID.alarm), the drop counters,
// temporary files (.NAME.tmp) and damaged files set aside (NAME.bad).
const (
	recordExt = ".alarm"
	badExt    = ".bad"
	tmpExt    = ".tmp"
	dropsFile = "drops"
)

// name is what a record's file name says about it.
type name struct {
	seq uint64
	sev alarm.Severity
	tag uint32
}

func (n name) id() ID { return ID(fmt.Sprintf("%016x-%d-%08x", n.seq, n.sev, n.tag)) }

func (n name) file() string { return string(n.id()) + recordExt }

func (n name) compare(m name) int {
	switch {
	case n.seq != m.seq:
		return cmpUint(n.seq, m.seq)
	case n.tag != m.tag:
		return cmpUint(uint64(n.tag), uint64(m.tag))
	}
	return int(n.sev - m.sev)
}

func cmpUint(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
}

// parseName reads a record file name, exactly as name.file writes it.
func parseName(f string) (name, bool) {
	const size = 16 + 1 + 1 + 1 + 8
	stem, ok := strings.CutSuffix(f, recordExt)
	if !ok || len(stem) != size || stem[16] != '-' || stem[18] != '-' {
		return name{}, false
	}
	var n name
	for _, c := range []byte(stem[:16]) {
		d, ok := hexDigit(c)
		if !ok {
			return name{}, false
		}
		n.seq = n.seq<<4 | uint64(d)
	}
	if stem[17] < '0' || stem[17] > '0'+byte(alarm.Critical) {
		return name{}, false
	}
	n.sev = alarm.Severity(stem[17] - '0')
	for _, c := range []byte(stem[19:]) {
		d, ok := hexDigit(c)
		if !ok {
			return name{}, false
		}
		n.tag = n.tag<<4 | uint32(d)
	}
	return n, true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func randomTag() uint32 {
	var b [4]byte
	rand.Read(b[:]) // never fails
	return binary.LittleEndian.Uint32(b[:])
}
