package agent

import (
	"path/filepath"
	"testing"

	"mailagent/board"
)

// TestWebCertificate: the certificate is kept in the data directory under
// the names boxes have it today, and a second start serves the same one.
func TestWebCertificate(t *testing.T) {
	dir := t.TempDir()
	a, err := New(Options{Board: board.Profile{Name: "host"}, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	first, err := a.WebCertificate([]string{"box.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "webui-cert.pem"); first.File != want {
		t.Errorf("File = %s, want %s", first.File, want)
	}
	if first.Fingerprint == "" || first.Certificate.Leaf == nil {
		t.Errorf("fingerprint %q, leaf %v", first.Fingerprint, first.Certificate.Leaf)
	}
	again, err := a.WebCertificate([]string{"other"})
	if err != nil || again.Fingerprint != first.Fingerprint {
		t.Errorf("second WebCertificate = %s, %v; want %s", again.Fingerprint, err, first.Fingerprint)
	}
}
