package message

import "testing"

// FuzzBytes renders arbitrary text in every free-text field: Bytes must
// succeed (the addresses are valid) and keep every rule checkRendered
// asserts: the expected header fields once each, CRLF lines of at most
// 998 octets, no line starting with '.', and a parse that gives back the
// cleaned names, subject and header value and the normalised body.
func FuzzBytes(f *testing.F) {
	for _, tt := range renderTests {
		f.Add(tt.fromName, tt.toName, tt.subject, tt.value, tt.body, "")
	}
	f.Add("", "", "", "", "", "Zentrale Küche\r\n")
	f.Fuzz(func(t *testing.T, fromName, toName, subject, value, body, host string) {
		m := newTestMessage(fromName, toName, subject, value, body)
		m.Host = host
		out, err := m.Bytes()
		if err != nil {
			t.Fatalf("Bytes() error: %v", err)
		}
		checkRendered(t, m, out)
		if err := checkID(m.MessageID); err != nil {
			t.Fatalf("MessageID %q: %v", m.MessageID, err)
		}
	})
}
