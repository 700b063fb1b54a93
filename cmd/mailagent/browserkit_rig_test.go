//go:build rig

package main

// What the browser tests need around headless Chromium: the browser, the
// agent with its page, and a watch over each tab's requests and messages.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's Chromium (scripts/install-deps.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// screenshotDir is the repository's var/screenshots, which make test leaves
// behind; var/ is git-ignored.
const screenshotDir = "../../var/screenshots"

// stepTimeout bounds every wait in the browser: a step that hangs fails
// the test instead of hanging it.
const stepTimeout = 30 * time.Second

// webAgent is "mailagent run" in-process, serving its page on 127.0.0.1.
type webAgent struct {
	base      string // http://127.0.0.1:PORT, as printed
	setupCode string // the one-time setup code printed at the start
	stderr    *syncBuffer
}

// startWebAgent sets http.listen to a free 127.0.0.1 port, starts
// "mailagent run" on data until the test ends, and reads the page address
// and the setup code from what it prints.
func startWebAgent(t *testing.T, data string) *webAgent {
	t.Helper()
	mustRun(t, nil, "--data", data, "config", "set", "http.listen", fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp")))
	ctx, cancel := context.WithCancel(context.Background())
	stdoutR, stdoutW := io.Pipe()
	a := &webAgent{stderr: &syncBuffer{}}
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"--data", data, "run"}, strings.NewReader(""), stdoutW, a.stderr)
		stdoutW.Close()
		done <- code
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("mailagent run: exit %d\n%s", code, a.stderr.String())
		}
	})
	pageRe := regexp.MustCompile(`^web page: (http://127\.0\.0\.1:\d+)/$`)
	codeRe := regexp.MustCompile(`setup code ([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})\b`)
	var out strings.Builder
	sc := bufio.NewScanner(stdoutR)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if m := pageRe.FindStringSubmatch(line); m != nil {
			a.base = m[1]
		}
		if m := codeRe.FindStringSubmatch(line); m != nil {
			a.setupCode = m[1]
		}
		if strings.HasPrefix(line, "alarms: ") { // the line after the login advice
			break
		}
	}
	go io.Copy(io.Discard, stdoutR)
	if a.base == "" || a.setupCode == "" {
		t.Fatalf("mailagent run printed no page address or no setup code:\n%s\nstderr:\n%s", out.String(), a.stderr.String())
	}
	return a
}

// startBrowser starts headless Chromium with a new empty profile and
// returns the context of its first tab; the browser ends with the test.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("no Chromium at %s (run scripts/install-deps.sh as root): %v", chromiumPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// This network reaches no Google service: ask for none.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// tabWatch records what a tab requested and the messages it logged.
type tabWatch struct {
	mu       sync.Mutex
	requests []string // URLs, in order
	messages []string // console errors and warnings, log entries, exceptions
}

// watchTab starts recording the tab of ctx. Log and Runtime replay what
// was logged before, so a tab attached late reports its messages too.
func watchTab(t *testing.T, ctx context.Context) *tabWatch {
	t.Helper()
	w := &tabWatch{}
	if err := chromedp.Listen(ctx, w.record); err != nil {
		t.Fatalf("watch tab: %v", err)
	}
	return w
}

// record is the listener of a watched tab.
func (w *tabWatch) record(ev any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		w.requests = append(w.requests, ev.Request.URL)
	case *log.EventEntryAdded:
		e := ev.Entry
		if e.Level == log.EntryLevelVerbose || e.Level == log.EntryLevelInfo {
			return // Chromium's advice on forms and the like
		}
		w.messages = append(w.messages, fmt.Sprintf("log %s/%s: %s (%s)", e.Source, e.Level, e.Text, e.URL))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		w.messages = append(w.messages, fmt.Sprintf("exception: %s (%s:%d)", text, d.URL, d.LineNumber))
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, a.Description+string(a.Value))
			}
			w.messages = append(w.messages, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		}
	}
}

// Requests returns the URLs the tab requested so far.
func (w *tabWatch) Requests() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.requests...)
}

// Messages returns the messages the tab logged so far.
func (w *tabWatch) Messages() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.messages...)
}

// do runs actions in the tab of ctx within stepTimeout; what fails the
// test names the step.
func do(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// get runs one action with a value within stepTimeout.
func get[T any](t *testing.T, ctx context.Context, step string, action chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(sctx, action)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return v
}

// jsString quotes s for JavaScript (JSON is valid JavaScript).
func jsString(s string) string {
	return fmt.Sprintf("%q", s) // Go's quoting of printable ASCII matches JSON's
}

// waitJS waits until expr is truthy in the tab, and fails the test with
// what explain returns in the tab when it does not get so.
func waitJS(t *testing.T, ctx context.Context, step, expr, explain string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	_, err := chromedp.Run(sctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(stepTimeout-5*time.Second)))
	if err != nil {
		what := ""
		if explain != "" {
			ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
			what, _ = chromedp.Run(ectx, chromedp.Evaluate[string](explain))
			cancel()
		}
		t.Fatalf("%s: %v\nthe page shows: %s", step, err, what)
	}
}

// keySel selects the form field of a configuration key.
func keySel(key string) chromedp.CSS {
	return chromedp.CSS(fmt.Sprintf(`[data-key=%q]`, key))
}

// fillKey types value into the form field of key, or chooses it when the
// field is a list, and lets the page see the change.
func fillKey(t *testing.T, ctx context.Context, key, value string) {
	t.Helper()
	sel := keySel(key)
	tag := get(t, ctx, "field "+key, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%s)||{}).tagName||""`, jsString(string(sel)))))
	switch tag {
	case "SELECT":
		do(t, ctx, "choose "+key, chromedp.SetValue(sel, value),
			chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%s).dispatchEvent(new Event('change', {bubbles: true}))`, jsString(string(sel)))))
	case "INPUT", "TEXTAREA":
		do(t, ctx, "type "+key, chromedp.WaitVisible(sel), clearField(sel), chromedp.SendKeys(sel, value))
	default:
		t.Fatalf("the form has no field for %s", key)
	}
	if got := get(t, ctx, "read "+key, chromedp.Value(sel)); got != value {
		t.Fatalf("field %s holds %q after filling in %q", key, got, value)
	}
}

// clearField empties the field sel selects. chromedp.Clear empties its
// value attribute only, not what was typed into it, and chromedp.SetValue
// refuses an empty value.
func clearField(sel chromedp.CSS) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%s).value = ''`, jsString(string(sel))))
}

// popupsSeen are the windows waitPopup returned.
var (
	popupsMu   sync.Mutex
	popupsSeen = map[target.ID]bool{}
)

// waitPopup runs click and returns the context of the window it opens,
// watched from its attach on.
func waitPopup(t *testing.T, ctx context.Context, step string, click chromedp.Action[chromedp.Void]) (context.Context, *tabWatch) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	// A window closed before sends events too: only a target not seen yet
	// is the new one.
	known := map[target.ID]bool{}
	infos, err := chromedp.Targets(ctx)
	if err != nil {
		t.Fatalf("%s: list the windows: %v", step, err)
	}
	for _, i := range infos {
		known[i.TargetID] = true
	}
	popupsMu.Lock()
	for id := range popupsSeen {
		known[id] = true
	}
	popupsMu.Unlock()
	ch := chromedp.WaitNewTarget(wctx, func(i *target.Info) bool { return i.Type == "page" && !known[i.TargetID] })
	do(t, ctx, step, click)
	select {
	case id, ok := <-ch:
		if !ok {
			t.Fatalf("%s: no window opened", step)
		}
		popupsMu.Lock()
		popupsSeen[id] = true
		popupsMu.Unlock()
		w := &tabWatch{}
		pctx, pcancel := chromedp.NewContext(ctx, chromedp.WithTargetID(id), chromedp.WithListener(w.record))
		t.Cleanup(pcancel)
		// The first run binds the tab to its context: no timeout here.
		if err := chromedp.Do(pctx); err != nil {
			t.Fatalf("%s: attach to the window: %v", step, err)
		}
		return pctx, w
	case <-wctx.Done():
		t.Fatalf("%s: no window opened", step)
	}
	return nil, nil
}

// screenshot writes a PNG of the whole page in the tab to
// var/screenshots/name.
func screenshot(t *testing.T, ctx context.Context, name string, width, height int64, mobile bool) {
	t.Helper()
	opts := []chromedp.EmulateViewportOption{}
	if mobile {
		opts = append(opts, chromedp.EmulateScale(2), chromedp.EmulateMobile)
	}
	do(t, ctx, "viewport for "+name, chromedp.EmulateViewport(width, height, opts...))
	png := get(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("screenshot %s is not a PNG (%d bytes)", name, len(png))
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(screenshotDir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(path)
	t.Logf("screenshot %s (%d bytes)", abs, len(png))
}

// sameOrigin checks that every URL a tab requested is on origin.
func sameOrigin(t *testing.T, tab string, urls []string, origin string) {
	t.Helper()
	if len(urls) == 0 {
		t.Errorf("%s: no request was seen; the watch is broken", tab)
	}
	for _, u := range urls {
		if strings.HasPrefix(u, "data:") {
			continue // inline, nothing fetched (Chromium's own date-picker icon)
		}
		if u != origin && !strings.HasPrefix(u, origin+"/") {
			t.Errorf("%s loaded %s, which is not on the agent's origin %s", tab, u, origin)
		}
	}
}

// waitShown waits until the element with id is visible in the tab, and
// fails the test with the tab's address and text when it does not get so.
func waitShown(t *testing.T, ctx context.Context, step, id string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.WaitVisible(chromedp.ID(id))); err != nil {
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(ectx, chromedp.Location())
		text, _ := chromedp.Run(ectx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
		t.Fatalf("%s: #%s not shown: %v\nthe window is at %s and shows:\n%s", step, id, err, loc, text)
	}
}
