//go:build rig

package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mailagent/appliance/oauthtest"
	"mailagent/appliance/testrig"
)

// TestBrowserExchange is the exchange mode in headless Chromium against the
// test authorization server on Microsoft's paths ({authority}{tenant}/oauth2/v2.0/…):
// first through the window auth.htm opens, then with a redirect URI the
// browser cannot reach (http://localhost/…, as Microsoft allows http only
// there), where the administrator copies the address the window ends on
// and pastes it into the page. Each time a test mail goes through the
// real Postfix with the token.
func TestBrowserExchange(t *testing.T) {
	rig := testrig.Start(t)
	agent := startWebAgent(t, t.TempDir())
	redirect := agent.base + "/auth.htm"
	// Nothing listens there: the window's last page does not load.
	unreachable := fmt.Sprintf("http://localhost:%d/auth.htm", freePort(t, "tcp"))
	srv := oauthtest.NewServer(t, oauthtest.Options{
		Flavour: oauthtest.Microsoft, Rotation: oauthtest.Rotate, Hub: rig.Tokens, Account: rig.User,
		Clients: []oauthtest.Client{{ID: "app-exchange", Secret: "exchange-secret", Auth: oauthtest.AuthPost,
			RedirectURIs: []string{redirect, unreachable}}},
	})

	ctx := startBrowser(t)
	admin := watchTab(t, ctx)
	firstLogin(t, ctx, agent)
	to := "ops-browser-exchange@example.test"
	fillForm(t, ctx, rig, to, "exchange", map[string]string{
		"oauth2.authority": srv.URL() + "/", "oauth2.tenant": srv.Tenant(),
		"oauth2.client_id": "app-exchange", "oauth2.client_secret": "exchange-secret",
		"oauth2.redirect_url": redirect,
	})

	// The box's own auth.htm: the window finishes the grant.
	popup, pw := waitPopup(t, ctx, "Authorise", chromedp.Click(chromedp.ID("btn-authorize")))
	waitShown(t, popup, "auth.htm after the sign-in", "auth-ok")
	if h := get(t, popup, "auth.htm headline", chromedp.Text(chromedp.ID("auth-headline"))); !strings.Contains(h, "authorised to send mail as "+rig.User) {
		t.Errorf("auth.htm says %q", h)
	}
	checkAuthPage(t, popup, pw, agent.base)
	if n := get(t, ctx, "paste note", chromedp.Evaluate[string](`document.getElementById('paste-msg').textContent`)); n != "" {
		t.Errorf("with the box's own auth.htm registered the page asks for a pasted address: %q", n)
	}
	waitAuthorised(t, ctx, rig.User)
	sendTestMail(t, ctx, rig, to)
	do(t, popup, "close the window", chromedp.Evaluate[chromedp.Void](`window.close()`))

	// A redirect URI that is not the box: the page says to paste the address.
	fillKey(t, ctx, "oauth2.redirect_url", unreachable)
	popup, _ = waitPopup(t, ctx, "Authorise with "+unreachable, chromedp.Click(chromedp.ID("btn-authorize")))
	waitJS(t, ctx, "the page explains the pasted address",
		`/paste/.test(document.getElementById('paste-msg').textContent) && document.getElementById('paste-box').classList.contains('hl')`,
		`document.getElementById('paste-msg').textContent`)
	// auth.htm explains first why the window will end on a page that does
	// not load, then goes on to the provider.
	waitShown(t, popup, "auth.htm's advice", "auth-paste")
	if r := get(t, popup, "redirect URI shown", chromedp.Text(chromedp.ID("auth-redirect"))); r != unreachable {
		t.Errorf("auth.htm names the redirect URI %q, want %q", r, unreachable)
	}
	screenshot(t, popup, "auth-paste.png", 560, 720, false)
	do(t, popup, "Continue to the sign-in", chromedp.Click(chromedp.ID("auth-continue")))
	ended := waitWindowAt(t, popup, unreachable+"?")
	if !strings.Contains(ended, "code=") || !strings.Contains(ended, "state=") {
		t.Fatalf("the window ended on %s, which carries no code and state", ended)
	}
	if s := statusText(t, ctx); !strings.Contains(s, "authorised as "+rig.User) {
		t.Errorf("the first token is gone while the second grant waits for its address:\n%s", s)
	}

	pasteAddress(t, ctx, ended)
	waitJS(t, ctx, "the paste is answered", `/\b(ok|bad)\b/.test(document.getElementById('paste-msg').className)`, "")
	if msg := get(t, ctx, "paste answer", chromedp.Text(chromedp.ID("paste-msg"))); msg != "Authorised as "+rig.User+"." {
		t.Fatalf("after pasting the address the page says %q", msg)
	}
	if v := get(t, ctx, "paste field", chromedp.Value(chromedp.ID("paste-url"))); v != "" {
		t.Errorf("the paste field still holds %q after the grant finished", v)
	}
	waitAuthorised(t, ctx, rig.User)

	// The same address again: its state was used; the page says so at the field.
	pasteAddress(t, ctx, ended)
	waitJS(t, ctx, "the replay is refused", `/\bbad\b/.test(document.getElementById('paste-msg').className)`,
		`document.getElementById('paste-msg').textContent`)
	if e := get(t, ctx, "paste field error", chromedp.Text(chromedp.ID("err-url"))); e == "" {
		t.Error("the replayed address gets no message next to the field")
	}

	to2 := "ops-browser-pasted@example.test"
	fillKey(t, ctx, "mail.to", to2)
	sendTestMail(t, ctx, rig, to2)
	// The replayed address was answered 400, which the browser logs.
	checkAdminPage(t, ctx, admin, agent.base, "400 (Bad Request) ("+agent.base+"/api/authorize/paste)")
}

// pasteAddress types address into "Paste the address" and presses
// "Finish authorisation".
func pasteAddress(t *testing.T, ctx context.Context, address string) {
	t.Helper()
	do(t, ctx, "paste the address",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('paste-msg').className = 'msg'`),
		clearField("#paste-url"),
		chromedp.SendKeys(chromedp.ID("paste-url"), address),
		chromedp.Click(chromedp.ID("btn-paste")),
	)
}

// waitWindowAt waits until the window of ctx is at an address starting
// with prefix, and returns it. A page that did not load shows an error
// page whose location is Chromium's own, so the address is the one the
// browser shows for the window: its target's URL.
func waitWindowAt(t *testing.T, ctx context.Context, prefix string) string {
	t.Helper()
	id := chromedp.FromContext(ctx).Target.TargetID
	var last string
	for deadline := time.Now().Add(stepTimeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		infos, err := chromedp.Targets(ctx)
		if err != nil {
			t.Fatalf("list the windows: %v", err)
		}
		for _, i := range infos {
			if i.TargetID == id {
				last = i.URL
			}
		}
		if strings.HasPrefix(last, prefix) {
			return last
		}
	}
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	text, _ := chromedp.Run(ectx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
	t.Fatalf("the window is at %q, want %s…; it shows:\n%s", last, prefix, text)
	return ""
}
