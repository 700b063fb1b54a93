package main

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// badDeps are packages that must never be linked into the binary, and why.
var badDeps = map[string]string{
	"testing":                              "test code in the binary",
	"net/http/httptest":                    "test servers in the binary",
	"mailagent/appliance/smtptest":         "a test double",
	"mailagent/appliance/oauthtest":        "a test double",
	"mailagent/appliance/testrig":          "the test rig",
	"mailagent/console/ptytest":            "a test helper",
	"cloud.google.com/go/compute/metadata": "x/oauth2/google pulls in the GCE metadata client; use x/oauth2/jwt",
	"golang.org/x/oauth2/google":           "pulls in the GCE metadata client; use x/oauth2/jwt and endpoints",
}

type listedPackage struct {
	ImportPath string
	Standard   bool
	Imports    []string
}

func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(out)
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	return pkgs
}

// TestDeps guards the binary's dependency graph.
func TestDeps(t *testing.T) {
	pkgs := goList(t, "-deps", ".")
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, msg := range badIn(pkgs) {
		t.Errorf("the binary links %s", msg)
	}
	// The guard itself must see a bad package where there is one.
	if bad := badIn(goList(t, "-deps", "mailagent/appliance/smtptest")); len(bad) == 0 {
		t.Error("badIn finds nothing in smtptest's dependencies, which include testing")
	}
	for _, p := range goList(t, "mailagent/board") {
		for _, imp := range p.Imports {
			if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") || strings.HasPrefix(imp, "mailagent/") {
				t.Errorf("board imports %s: it may use the standard library only", imp)
			}
		}
	}
}

func badIn(pkgs []listedPackage) []string {
	var bad []string
	for _, p := range pkgs {
		if why, ok := badDeps[p.ImportPath]; ok {
			bad = append(bad, p.ImportPath+": "+why)
		}
	}
	return bad
}
