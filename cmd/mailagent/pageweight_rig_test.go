//go:build rig

package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// pageBudget is what loading the login page or the admin page, with
// every request it makes, may transfer: the box may sit behind a slow
// link, and the page is embedded in a binary with a size budget.
const pageBudget = 64 << 10

// TestPageWeight loads the login page and the admin page in headless
// Chromium with its cache off and counts the bytes each transfers, as the
// browser's network panel does: headers and bodies of the page, its
// stylesheet and script, and the API calls it makes to fill itself in.
// make bench prints the figures (MAILAGENT_PAGE_RESULT).
func TestPageWeight(t *testing.T) {
	agent := startWebAgent(t, t.TempDir())
	ctx := startBrowser(t)
	if _, err := chromedp.Call(ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
		t.Fatalf("turn the cache off: %v", err)
	}
	m := &transferMeter{}
	if err := chromedp.Listen(ctx, m.record); err != nil {
		t.Fatalf("watch the network: %v", err)
	}

	login := m.measure(t, ctx, "login page", chromedp.Navigate(agent.base+"/login"),
		chromedp.WaitVisible(chromedp.ID("setup-form")))
	firstLogin(t, ctx, agent)
	admin := m.measure(t, ctx, "admin page", chromedp.Navigate(agent.base+"/"),
		chromedp.WaitVisible(chromedp.ID("cfg-form")), chromedp.WaitReady(keySel("mail.from")))

	var report strings.Builder
	for _, p := range []pageLoad{login, admin} {
		var each []string
		for _, r := range p.requests {
			each = append(each, fmt.Sprintf("%s %d", strings.TrimPrefix(r.url, agent.base), r.bytes))
		}
		fmt.Fprintf(&report, "%s: %d bytes in %d requests (budget %d): %s\n", p.name, p.total(), len(p.requests), pageBudget, strings.Join(each, ", "))
	}
	t.Log(report.String())
	for _, p := range []pageLoad{login, admin} {
		if p.total() > pageBudget {
			t.Errorf("%s transfers %d bytes, over the budget of %d", p.name, p.total(), pageBudget)
		}
	}
	// What the admin page must load for the count to mean anything.
	for _, want := range []string{"/", "/static/app.js", "/static/style.css", "/api/config", "/api/status"} {
		if !slices.ContainsFunc(admin.requests, func(r transfer) bool { return r.url == agent.base+want }) {
			t.Errorf("loading the admin page did not count %s; it counted %v", want, admin.requests)
		}
	}
	if out := os.Getenv("MAILAGENT_PAGE_RESULT"); out != "" {
		if err := os.WriteFile(out, []byte(report.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// transfer is one finished request: its address and the bytes the browser
// received for it (headers and encoded body).
type transfer struct {
	url   string
	bytes int64
}

// pageLoad is what loading a page transferred.
type pageLoad struct {
	name     string
	requests []transfer
}

func (p pageLoad) total() int64 {
	var n int64
	for _, r := range p.requests {
		n += r.bytes
	}
	return n
}

// transferMeter counts the bytes of the requests of one tab.
type transferMeter struct {
	mu       sync.Mutex
	urls     map[network.RequestID]string
	pending  int
	finished []transfer
	failed   []string
}

func (m *transferMeter) record(ev any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if strings.HasPrefix(ev.Request.URL, "data:") {
			return // Chromium's own icons, nothing transferred
		}
		if _, seen := m.urls[ev.RequestID]; !seen {
			m.pending++
		}
		m.urls[ev.RequestID] = ev.Request.URL // a redirect keeps the ID
	case *network.EventLoadingFinished:
		if _, ok := m.urls[ev.RequestID]; !ok {
			return
		}
		m.pending--
		m.finished = append(m.finished, transfer{m.urls[ev.RequestID], int64(ev.EncodedDataLength)})
	case *network.EventLoadingFailed:
		if _, ok := m.urls[ev.RequestID]; !ok {
			return
		}
		m.pending--
		m.failed = append(m.failed, m.urls[ev.RequestID]+": "+ev.ErrorText)
	}
}

// measure runs load and counts what the tab transfers until it has had
// no request in flight for a second.
func (m *transferMeter) measure(t *testing.T, ctx context.Context, name string, load ...chromedp.Action[chromedp.Void]) pageLoad {
	t.Helper()
	m.mu.Lock()
	m.urls, m.pending, m.finished, m.failed = map[network.RequestID]string{}, 0, nil, nil
	m.mu.Unlock()
	do(t, ctx, "load the "+name, load...)
	quiet := 0
	for deadline := time.Now().Add(stepTimeout); quiet < 10; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: requests still in flight after %v", name, stepTimeout)
		}
		m.mu.Lock()
		idle := m.pending == 0
		m.mu.Unlock()
		if idle {
			quiet++
		} else {
			quiet = 0
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.failed {
		if !strings.Contains(f, "/favicon.ico") {
			t.Errorf("%s: a request failed: %s", name, f)
		}
	}
	return pageLoad{name, slices.Clone(m.finished)}
}
