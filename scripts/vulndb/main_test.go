package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWrite builds a database from two OSV files, one affecting two
// modules, and reads back the files govulncheck reads.
func TestWrite(t *testing.T) {
	osv := t.TempDir()
	files := map[string]string{
		"GO-2026-0001.json": `{"id":"GO-2026-0001","modified":"0001-01-01T00:00:00Z","aliases":["CVE-1"],"affected":[{"package":{"name":"stdlib"}},{"package":{"name":"example.com/m"}}]}`,
		"GO-2026-0002.json": `{"id":"GO-2026-0002","modified":"2030-01-02T03:04:05Z","affected":[{"package":{"name":"example.com/m"}}]}`,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(osv, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	commit := time.Date(2026, 11, 5, 23, 49, 57, 0, time.UTC)
	date, err := write(dir, osv, commit)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC); !date.Equal(want) {
		t.Errorf("date %v, want %v: the latest entry's", date, want)
	}
	var meta dbMeta
	if err := readJSON(filepath.Join(dir, "index", "db.json"), &meta); err != nil || !meta.Modified.Equal(date) {
		t.Errorf("index/db.json: %v, %v; want modified %v", meta, err, date)
	}
	var mods []moduleVulns
	if err := readJSON(filepath.Join(dir, "index", "modules.json"), &mods); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(mods)
	want := `[{"path":"example.com/m","vulns":[{"id":"GO-2026-0001","modified":"2026-11-05T23:49:57Z"},{"id":"GO-2026-0002","modified":"2030-01-02T03:04:05Z"}]},` +
		`{"path":"stdlib","vulns":[{"id":"GO-2026-0001","modified":"2026-11-05T23:49:57Z"}]}]`
	if string(b) != want {
		t.Errorf("index/modules.json:\n%s\nwant\n%s", b, want)
	}
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(dir, "ID", name))
		if err != nil || string(got) != data {
			t.Errorf("ID/%s = %q, %v; want the OSV file as it is", name, got, err)
		}
	}
	if _, err := write(t.TempDir(), t.TempDir(), commit); err == nil {
		t.Error("write from a directory without OSV files succeeded")
	}
}
