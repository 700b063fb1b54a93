package spool

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"mailagent/appliance/alarm"
)

func testAlarm() alarm.Alarm {
	return alarm.Alarm{
		Time:     time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC),
		Severity: alarm.Major,
		Code:     "LINK-DOWN",
		Source:   "eth0",
		Text:     "link down on port 1 — carrier lost",
		Details:  []alarm.Detail{{Key: "port", Value: "1"}},
	}
}

func mustEncode(t testing.TB, a alarm.Alarm) []byte {
	t.Helper()
	b, err := encodeAlarm(&a)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// patch returns a copy of b with f applied.
func patch(b []byte, f func([]byte) []byte) []byte {
	return f(bytes.Clone(b))
}

// reseal recomputes the checksum, so that only the field a test changed is
// wrong.
func reseal(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[12:], checksum(b))
	return b
}

func decodeTests(t testing.TB) []struct {
	name string
	data []byte
	want string // "" for success, else part of the error
} {
	good := mustEncode(t, testAlarm())
	return []struct {
		name string
		data []byte
		want string
	}{
		{"good", good, ""},
		{"empty", nil, "shorter than a header"},
		{"header only", good[:headerLen], "torn or truncated"},
		{"truncated by one", good[:len(good)-1], "torn or truncated"},
		{"extended", append(bytes.Clone(good), 0), "torn or truncated"},
		{"zeros", make([]byte, len(good)), "bad magic"},
		{"bad magic", patch(good, func(b []byte) []byte { b[0] = 'X'; return reseal(b) }), "bad magic"},
		{"version 2", patch(good, func(b []byte) []byte { b[4] = 2; return reseal(b) }), "format version 2"},
		{"kind 9", patch(good, func(b []byte) []byte { b[5] = 9; return reseal(b) }), "unknown record kind"},
		{"reserved set", patch(good, func(b []byte) []byte { b[7] = 1; return reseal(b) }), "unknown record kind"},
		{"huge length", patch(good, func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[8:], 1<<31)
			return b
		}), "over the limit"},
		{"flipped payload byte", patch(good, func(b []byte) []byte { b[headerLen+3] ^= 0x20; return b }), "checksum"},
		{"flipped checksum", patch(good, func(b []byte) []byte { b[12] ^= 1; return b }), "checksum"},
		{"drops record", encodeDrops(Drops{alarm.Info: 2}), "not an alarm"},
		{"not JSON", encodeFrame(kindAlarm, []byte("{")), "payload"},
		{"number severity", encodeFrame(kindAlarm, []byte(`{"severity":3,"code":"X","text":""}`)), "payload"},
		{"invalid alarm", encodeFrame(kindAlarm, []byte(`{"severity":"major","code":"","text":"t"}`)), "code is empty"},
	}
}

func TestDecodeAlarm(t *testing.T) {
	for _, tt := range decodeTests(t) {
		t.Run(tt.name, func(t *testing.T) {
			a, err := decodeAlarm(tt.data)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("decodeAlarm = %v, want success", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("decodeAlarm = %v, want an error with %q", err, tt.want)
			case tt.want == "":
				want := testAlarm()
				if !a.Time.Equal(want.Time) || a.Code != want.Code || a.Text != want.Text ||
					a.Severity != want.Severity || a.Source != want.Source || len(a.Details) != 1 {
					t.Errorf("decodeAlarm = %+v, want %+v", a, want)
				}
			}
		})
	}
}

func TestDecodeDrops(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want Drops
		err  string
	}{
		{"none", encodeDrops(Drops{}), Drops{}, ""},
		{"some", encodeDrops(Drops{alarm.Cleared: 1, alarm.Critical: 7}), Drops{alarm.Cleared: 1, alarm.Critical: 7}, ""},
		{"unknown severity", encodeFrame(kindDrops, []byte(`{"fatal":1}`)), Drops{}, "not a severity"},
		{"upper case", encodeFrame(kindDrops, []byte(`{"Major":1}`)), Drops{}, "not a severity"},
		{"negative", encodeFrame(kindDrops, []byte(`{"major":-1}`)), Drops{}, "negative"},
		{"alarm record", mustEncode(t, testAlarm()), Drops{}, "not the drop counters"},
		{"torn", encodeDrops(Drops{alarm.Info: 3})[:20], Drops{}, "torn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeDrops(tt.data)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("decodeDrops = %v, %v, want an error with %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("decodeDrops = %v, %v, want %v", got, err, tt.want)
			}
		})
	}
}

func TestParseName(t *testing.T) {
	n := name{seq: 0x2a, sev: alarm.Critical, tag: 0xdeadbeef}
	if got, want := n.file(), "000000000000002a-5-deadbeef.alarm"; got != want {
		t.Fatalf("file = %q, want %q", got, want)
	}
	tests := []struct {
		file string
		ok   bool
	}{
		{"000000000000002a-5-deadbeef.alarm", true},
		{"ffffffffffffffff-0-00000000.alarm", true},
		{"000000000000002a-6-deadbeef.alarm", false},
		{"000000000000002A-5-deadbeef.alarm", false},
		{"000000000000002a-5-deadbeef.alarm.bad", false},
		{".000000000000002a-5-deadbeef.alarm.tmp", false},
		{"000000000000002a-5-deadbeef", false},
		{"00000000000002a-5-deadbeef0.alarm", false},
		{"../../../etc/passwd.alarm", false},
		{"drops", false},
	}
	for _, tt := range tests {
		got, ok := parseName(tt.file)
		if ok != tt.ok {
			t.Errorf("parseName(%q) ok = %v, want %v", tt.file, ok, tt.ok)
		}
		if ok && got.file() != tt.file {
			t.Errorf("parseName(%q).file() = %q", tt.file, got.file())
		}
	}
}

// FuzzDecode feeds arbitrary bytes as a record file: the decoders never
// panic and never accept a file whose length and checksum do not match.
func FuzzDecode(f *testing.F) {
	for _, tt := range decodeTests(f) {
		f.Add(tt.data)
	}
	f.Add(encodeDrops(Drops{alarm.Major: 4}))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, aerr := decodeAlarm(data)
		_, derr := decodeDrops(data)
		if aerr != nil && derr != nil {
			return
		}
		if len(data) < headerLen {
			t.Fatalf("accepted %d bytes", len(data))
		}
		if n := binary.LittleEndian.Uint32(data[8:]); int(n) != len(data)-headerLen {
			t.Fatalf("accepted a payload length %d in a %d-byte file", n, len(data))
		}
		c := crc32.Checksum(append(bytes.Clone(data[:12]), data[headerLen:]...), crc32.MakeTable(crc32.Castagnoli))
		if c != binary.LittleEndian.Uint32(data[12:]) {
			t.Fatalf("accepted a record whose checksum does not match")
		}
		if aerr == nil {
			again, err := decodeAlarm(mustEncode(t, a))
			if err != nil || again.Code != a.Code || again.Text != a.Text || !again.Time.Equal(a.Time) {
				t.Fatalf("re-encoded alarm = %+v, %v, want %+v", again, err, a)
			}
		}
	})
}
