package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// badDeps are packages that must never be linked into the binary, and why.
var badDeps = map[string]string{
	"testing":                                     "test code in the binary",
	"net/http/httptest":                           "test servers in the binary",
	"mailagent/appliance/smtptest":                "a test double",
	"mailagent/appliance/oauthtest":               "a test double",
	"mailagent/appliance/testrig":                 "the test rig",
	"mailagent/appliance/internal/flash/powercut": "the power-cut model, a file system in memory for tests",
	"mailagent/console/ptytest":                   "a test helper",
	"cloud.google.com/go/compute/metadata":        "x/oauth2/google pulls in the GCE metadata client; use x/oauth2/jwt",
	"golang.org/x/oauth2/google":                  "pulls in the GCE metadata client; use x/oauth2/jwt and endpoints",
}

// mayImport is which of our packages each of our packages may import in
// its non-test files (STYLE.md §3.1 "May import"; paths without
// "mailagent/"). Arrows point down: the domain never imports the page or
// the console, the page and the console reach the domain through the
// agent, and nothing outside appliance/ reaches appliance/internal (which
// the compiler refuses too). A package missing here fails the test until
// it is given its list.
var mayImport = map[string][]string{
	"board":                         {},
	"appliance/alarm":               {},
	"appliance/lograte":             {},
	"appliance/limit":               {"appliance/lograte"},
	"appliance/internal/flash":      {},
	"appliance/internal/message":    {},
	"appliance/internal/roots":      {},
	"appliance/config":              {"appliance/internal/flash", "board"},
	"appliance/oauth":               {"appliance/config", "appliance/internal/flash", "appliance/internal/roots"},
	"appliance/ingest":              {"appliance/alarm", "appliance/limit", "appliance/lograte"},
	"appliance/internal/selfsigned": {"appliance/internal/flash"},
	"appliance/internal/spool":      {"appliance/alarm", "appliance/internal/flash"},
	"appliance/internal/submit":     {"appliance/internal/roots"},
	"appliance/internal/outbox": {"appliance/alarm", "appliance/lograte", "appliance/internal/spool",
		"appliance/internal/message", "appliance/internal/submit"},
	"appliance/agent": {"appliance/alarm", "appliance/config", "appliance/ingest", "appliance/lograte", "appliance/oauth",
		"appliance/internal/flash", "appliance/internal/message", "appliance/internal/outbox", "appliance/internal/roots",
		"appliance/internal/selfsigned", "appliance/internal/spool", "appliance/internal/submit", "board"},
	"webui":         {"appliance/agent", "appliance/config", "appliance/alarm", "appliance/limit", "appliance/lograte", "board"},
	"console":       {"appliance/agent", "appliance/config", "appliance/alarm", "appliance/limit", "board"},
	"cmd/mailagent": {"appliance/agent", "appliance/alarm", "appliance/config", "appliance/ingest", "appliance/limit", "board", "console", "webui"},
	// test doubles and helpers, imported by _test.go files only
	"appliance/oauthtest":               {},
	"appliance/smtptest":                {},
	"appliance/testrig":                 {"appliance/oauthtest"},
	"appliance/internal/flash/powercut": {"appliance/internal/flash"},
	"console/ptytest":                   {},
	"scripts/elfsize":                   {},
	"scripts/vulndb":                    {},
}

// whyNot says why an import mayImport leaves out is wrong: by the arrow
// ("from -> to") where it has a reason of its own, else by what is
// imported.
var whyNot = map[string]string{
	"webui -> appliance/oauth":          "the page reaches OAuth2 through the agent (agent.PastedParams, Admin.StartAuthorize and FinishAuthorize)",
	"webui -> appliance/ingest":         "the page routes whatever handler Options.Alarm gives; cmd/mailagent wires ingest.HTTP",
	"webui":                             "only cmd/mailagent puts the admin page in the binary, and the nopage build leaves it out",
	"console":                           "only cmd/mailagent starts the console",
	"appliance/agent":                   "the agent is the API of the page, the console and the commands, and wires the packages below it; they never call back up",
	"appliance/oauth":                   "grants and tokens belong to the agent; reach them through it",
	"appliance/internal":                "the domain's insides: the agent wires them",
	"appliance/oauthtest":               "a test double, for _test.go files only",
	"appliance/smtptest":                "a test double, for _test.go files only",
	"appliance/testrig":                 "the test rig, for _test.go files only",
	"appliance/internal/flash/powercut": "the power-cut model, for _test.go files only",
	"console/ptytest":                   "a test helper, for _test.go files only",
}

// wrongArrows lists every import of ours in pkgs that mayImport does not
// allow, each with the reason and what the package may import.
func wrongArrows(pkgs []listedPackage) []string {
	var bad []string
	for _, p := range pkgs {
		from, ours := strings.CutPrefix(p.ImportPath, "mailagent/")
		if !ours {
			continue
		}
		may, known := mayImport[from]
		if !known {
			bad = append(bad, fmt.Sprintf("%s is not in mayImport: give it the packages of ours it may import", from))
			continue
		}
		for _, imp := range p.Imports {
			to, ours := strings.CutPrefix(imp, "mailagent/")
			if !ours || slices.Contains(may, to) {
				continue
			}
			why, ok := whyNot[from+" -> "+to]
			if !ok {
				why, ok = whyNot[to]
			}
			if !ok && strings.HasPrefix(to, "appliance/internal/") {
				why, ok = whyNot["appliance/internal"]
			}
			if !ok {
				why = "arrows point down (STYLE.md §3.1)"
			}
			list := strings.Join(may, ", ")
			if list == "" {
				list = "none of ours"
			}
			bad = append(bad, fmt.Sprintf("%s imports %s: %s; %s may import %s", from, to, why, from, list))
		}
	}
	return bad
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
	// The build without the page links no webui: the alarm endpoints, the
	// password, the setup code and the certificate live below it.
	for _, p := range goList(t, "-deps", "-tags", "nopage", ".") {
		if slices.Contains(p.Imports, "mailagent/webui") {
			t.Errorf("the nopage build links mailagent/webui, imported by %s: that build leaves the page out", p.ImportPath)
		}
	}
	if !slices.ContainsFunc(pkgs, func(p listedPackage) bool { return p.ImportPath == "mailagent/webui" }) {
		t.Error("the build with the page does not link mailagent/webui: is the nopage check looking at the right thing?")
	}
	for _, p := range goList(t, "mailagent/board") {
		for _, imp := range p.Imports {
			if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") || strings.HasPrefix(imp, "mailagent/") {
				t.Errorf("board imports %s: it may use the standard library only", imp)
			}
		}
	}
}

// TestImports checks every package of the module, in the build with the
// page and in the one without, against mayImport.
func TestImports(t *testing.T) {
	for _, tags := range []string{"", "nopage"} {
		pkgs := goList(t, "-tags", tags, "mailagent/...")
		if len(pkgs) < len(mayImport)/2 {
			t.Fatalf("go list -tags %q found only %d packages", tags, len(pkgs))
		}
		for _, msg := range wrongArrows(pkgs) {
			t.Errorf("-tags %q: %s", tags, msg)
		}
	}
	// The guard itself must see a wrong arrow where there is one.
	wrong := wrongArrows([]listedPackage{{ImportPath: "mailagent/webui", Imports: []string{"mailagent/appliance/oauth"}}})
	if len(wrong) != 1 || !strings.Contains(wrong[0], "agent.PastedParams") {
		t.Errorf("wrongArrows(webui -> oauth) = %q, want the one arrow and its reason", wrong)
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
