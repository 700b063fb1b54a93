// Command vulndb builds an offline copy of the Go vulnerability database
// for govulncheck -db file://DIR, from the golang.org/x/vulndb module on
// the module proxy: these machines reach no vulnerability service, but
// they reach the proxy.
//
//	go run ./scripts/vulndb [-out build/vulndb] [VERSION]
//
// VERSION is the module's version (default: the one pinned in
// scripts/vulncheck.sh; "latest" asks the proxy). The database goes to
// OUT/VERSION, built once and kept: it prints that directory and the
// database's date, the time of the vulndb commit (its OSV files carry no
// dates of their own).
//
// The layout is the one vuln.go.dev serves
// (https://go.dev/security/vuln/database#api), uncompressed, as
// govulncheck reads it from a directory:
//
//	index/db.json       {"modified": DATE}
//	index/modules.json  [{"path": MODULE, "vulns": [{"id", "modified"}]}]
//	index/vulns.json    [{"id", "modified", "aliases"}]
//	ID/GO-YYYY-NNNN.json  the OSV entry, as the module holds it
//
// The index leaves out "fixed", which the schema makes optional: govulncheck
// then reads every entry of each module it checks and decides by the
// entry's own ranges.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "build/vulndb", "directory for the databases, one per version")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: vulndb [-out DIR] VERSION")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	dir, date, err := build(*out, flag.Arg(0))
	if err != nil {
		fmt.Fprintf(os.Stderr, "vulndb: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(dir)
	fmt.Println(date.UTC().Format(time.RFC3339))
}

// module is what "go mod download -json" says about a module version.
type module struct {
	Version, Dir, Info, Error string
}

// build makes the database of golang.org/x/vulndb@version under out,
// unless it is there, and returns its directory and date.
func build(out, version string) (string, time.Time, error) {
	m, err := download("golang.org/x/vulndb@" + version)
	if err != nil {
		return "", time.Time{}, err
	}
	var info struct{ Time time.Time }
	if err := readJSON(m.Info, &info); err != nil {
		return "", time.Time{}, err
	}
	dir, err := filepath.Abs(filepath.Join(out, m.Version))
	if err != nil {
		return "", time.Time{}, err
	}
	var meta dbMeta
	if err := readJSON(filepath.Join(dir, "index", "db.json"), &meta); err == nil {
		return dir, meta.Modified, nil // built before
	}
	// Built beside its place and renamed there, so that an interrupted
	// build leaves no half database to be taken for a whole one.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", time.Time{}, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".vulndb")
	if err != nil {
		return "", time.Time{}, err
	}
	defer os.RemoveAll(tmp)
	date, err := write(tmp, filepath.Join(m.Dir, "data", "osv"), info.Time)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("build from %s: %w", m.Dir, err)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", time.Time{}, err
	}
	return dir, date, nil
}

// download fetches a module version through the go command (and so the
// module proxy and its cache), outside this module so that go.mod and
// go.sum stay as they are.
func download(query string) (module, error) {
	cmd := exec.Command("go", "mod", "download", "-json", query)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	var m module
	if jerr := json.Unmarshal(outb, &m); jerr == nil && m.Error != "" {
		return module{}, fmt.Errorf("go mod download %s: %s", query, m.Error)
	}
	if err != nil {
		return module{}, fmt.Errorf("go mod download %s: %v: %s", query, err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(outb, &m); err != nil || m.Dir == "" {
		return module{}, fmt.Errorf("go mod download %s: no module directory in %q", query, outb)
	}
	return m, nil
}

type dbMeta struct {
	Modified time.Time `json:"modified"`
}

// entry is what the index needs of an OSV entry.
type entry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
	} `json:"affected"`
}

type moduleVulns struct {
	Path  string      `json:"path"`
	Vulns []vulnIndex `json:"vulns"`
}

type vulnIndex struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
}

// write builds the database in dir from the OSV files in osvDir, dated
// date unless an entry was modified later, and returns its date.
func write(dir, osvDir string, date time.Time) (time.Time, error) {
	dated := date
	files, err := filepath.Glob(filepath.Join(osvDir, "GO-*.json"))
	if err != nil {
		return time.Time{}, err
	}
	if len(files) == 0 {
		return time.Time{}, errors.New("no GO-*.json files in data/osv")
	}
	for _, d := range []string{"ID", "index"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return time.Time{}, err
		}
	}
	modules := map[string]*moduleVulns{}
	var vulns []vulnIndex
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return time.Time{}, err
		}
		var e entry
		if err := json.Unmarshal(data, &e); err != nil {
			return time.Time{}, fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
		if e.ID+".json" != filepath.Base(f) {
			return time.Time{}, fmt.Errorf("%s holds %q", filepath.Base(f), e.ID)
		}
		if e.Modified.IsZero() {
			e.Modified = dated // the OSV files carry no dates: the commit's
		}
		if e.Modified.After(date) {
			date = e.Modified
		}
		if err := os.WriteFile(filepath.Join(dir, "ID", e.ID+".json"), data, 0o644); err != nil {
			return time.Time{}, err
		}
		vulns = append(vulns, vulnIndex{ID: e.ID, Modified: e.Modified, Aliases: e.Aliases})
		for _, a := range e.Affected {
			p := a.Package.Name
			if modules[p] == nil {
				modules[p] = &moduleVulns{Path: p, Vulns: []vulnIndex{}}
			}
			if !slices.ContainsFunc(modules[p].Vulns, func(v vulnIndex) bool { return v.ID == e.ID }) {
				modules[p].Vulns = append(modules[p].Vulns, vulnIndex{ID: e.ID, Modified: e.Modified})
			}
		}
	}
	var mods []*moduleVulns
	for _, m := range modules {
		mods = append(mods, m)
	}
	slices.SortFunc(mods, func(a, b *moduleVulns) int { return strings.Compare(a.Path, b.Path) })
	for _, w := range []struct {
		name string
		v    any
	}{
		{"modules.json", mods},
		{"vulns.json", vulns},
		{"db.json", dbMeta{Modified: date}}, // last: it marks a complete database
	} {
		b, err := json.Marshal(w.v)
		if err != nil {
			return time.Time{}, err
		}
		if err := os.WriteFile(filepath.Join(dir, "index", w.name), b, 0o644); err != nil {
			return time.Time{}, err
		}
	}
	return date, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
