package spool

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"

	"mailagent/appliance/alarm"
)

// A record file is a 16-byte header and a JSON payload:
//
//	offset size
//	0      4    magic "MASP"
//	4      1    format version, 1
//	5      1    kind: 1 an alarm, 2 the drop counters
//	6      2    zero
//	8      4    payload length, little endian
//	12     4    CRC-32C (Castagnoli) of bytes 0-11 and the payload, little endian
//	16     n    payload
//
// A file is good only if it is exactly 16+n bytes long and every field
// checks; anything else (torn, truncated, extended, flipped) is damage.
const (
	headerLen     = 16
	formatVersion = 1
	// maxPayload bounds what the decoder allocates and accepts. The largest
	// valid alarm is about 21 KB of text, 130 KB if every byte is escaped.
	maxPayload = 1 << 20
)

var magic = [4]byte{'M', 'A', 'S', 'P'}

type kind byte

const (
	kindAlarm kind = 1
	kindDrops kind = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeFrame puts a header in front of payload.
func encodeFrame(k kind, payload []byte) []byte {
	b := make([]byte, headerLen+len(payload))
	copy(b, magic[:])
	b[4] = formatVersion
	b[5] = byte(k)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(payload)))
	copy(b[headerLen:], payload)
	binary.LittleEndian.PutUint32(b[12:], checksum(b))
	return b
}

// checksum is the CRC-32C of a frame's header (without the checksum) and
// payload.
func checksum(frame []byte) uint32 {
	c := crc32.Update(0, castagnoli, frame[:12])
	return crc32.Update(c, castagnoli, frame[headerLen:])
}

// decodeFrame checks a whole file and returns its kind and payload, which
// aliases data.
func decodeFrame(data []byte) (kind, []byte, error) {
	if len(data) < headerLen {
		return 0, nil, fmt.Errorf("%d bytes, shorter than a header", len(data))
	}
	if !bytes.Equal(data[:4], magic[:]) {
		return 0, nil, errors.New("not a spool record (bad magic)")
	}
	if data[4] != formatVersion {
		return 0, nil, fmt.Errorf("format version %d, this program reads %d", data[4], formatVersion)
	}
	n := binary.LittleEndian.Uint32(data[8:])
	if n > maxPayload {
		return 0, nil, fmt.Errorf("payload length %d is over the limit %d", n, maxPayload)
	}
	if got := len(data) - headerLen; uint32(got) != n {
		return 0, nil, fmt.Errorf("payload length %d, file holds %d (torn or truncated)", n, got)
	}
	if sum := binary.LittleEndian.Uint32(data[12:]); sum != checksum(data) {
		return 0, nil, fmt.Errorf("checksum %08x does not match %08x", sum, checksum(data))
	}
	k := kind(data[5])
	if (k != kindAlarm && k != kindDrops) || data[6] != 0 || data[7] != 0 {
		return 0, nil, fmt.Errorf("unknown record kind %d/%d/%d", data[5], data[6], data[7])
	}
	return k, data[headerLen:], nil
}

// encodeAlarm is the record file for a.
func encodeAlarm(a *alarm.Alarm) ([]byte, error) {
	p, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	return encodeFrame(kindAlarm, p), nil
}

// decodeAlarm reads an alarm record file.
func decodeAlarm(data []byte) (alarm.Alarm, error) {
	k, p, err := decodeFrame(data)
	if err != nil {
		return alarm.Alarm{}, err
	}
	if k != kindAlarm {
		return alarm.Alarm{}, fmt.Errorf("record kind %d is not an alarm", k)
	}
	var a alarm.Alarm
	if err := json.Unmarshal(p, &a); err != nil {
		return alarm.Alarm{}, fmt.Errorf("payload: %w", err)
	}
	if err := a.Validate(); err != nil {
		return alarm.Alarm{}, fmt.Errorf("payload: %w", err)
	}
	return a, nil
}

// encodeDrops is the drop counters file for d.
func encodeDrops(d Drops) []byte {
	m := make(map[string]int)
	for sev, n := range d {
		if n != 0 {
			m[alarm.Severity(sev).String()] = n
		}
	}
	p, _ := json.Marshal(m) // a map of strings to ints always encodes
	return encodeFrame(kindDrops, p)
}

// decodeDrops reads a drop counters file.
func decodeDrops(data []byte) (Drops, error) {
	k, p, err := decodeFrame(data)
	if err != nil {
		return Drops{}, err
	}
	if k != kindDrops {
		return Drops{}, fmt.Errorf("record kind %d is not the drop counters", k)
	}
	var m map[string]int
	if err := json.Unmarshal(p, &m); err != nil {
		return Drops{}, fmt.Errorf("payload: %w", err)
	}
	var d Drops
	for name, n := range m {
		sev, err := alarm.ParseSeverity(name)
		if err != nil || sev.String() != name {
			return Drops{}, fmt.Errorf("payload: %q is not a severity", name)
		}
		if n < 0 {
			return Drops{}, fmt.Errorf("payload: %s count %d is negative", name, n)
		}
		d[sev] = n
	}
	return d, nil
}
