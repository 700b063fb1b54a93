//go:build rig

package main

import (
	"context"
	"maps"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mailagent/appliance/oauthtest"
	"mailagent/appliance/testrig"
)

// TestBrowserGenericOAuth2 is an administrator's first visit in headless
// Chromium: log in with the setup code and choose a password, fill in the
// form for the generic OAuth2 mode against the strict test authorization
// server, press Authorise, be refused once (error=access_denied) and then
// sign in through the window auth.htm opens, see "authorised as …", press
// "Send test mail" and find the mail in the real Postfix's Maildir. The
// page must load nothing from another origin and report no CSP violation.
// It leaves screenshots of the page and of auth.htm in var/screenshots.
func TestBrowserGenericOAuth2(t *testing.T) {
	rig := testrig.Start(t)
	data := t.TempDir()
	agent := startWebAgent(t, data)
	redirect := agent.base + "/auth.htm"
	srv := oauthtest.NewServer(t, oauthtest.Options{
		Flavour: oauthtest.Generic, Rotation: oauthtest.RotateRevokeOnReuse, Hub: rig.Tokens, Account: rig.User,
		AuthParams: map[string][]string{"scope": {"mail.send offline"}},
		Clients: []oauthtest.Client{{ID: "generic-client", Secret: "generic-secret", Auth: oauthtest.AuthPost,
			RedirectURIs: []string{redirect}}},
	})
	to := "ops-browser-generic@example.test"

	ctx := startBrowser(t)
	admin := watchTab(t, ctx)
	firstLogin(t, ctx, agent)

	fillForm(t, ctx, rig, to, "client-secret-post", map[string]string{
		"oauth2.auth_url": srv.AuthURL(), "oauth2.token_url": srv.TokenURL(),
		"oauth2.client_id": "generic-client", "oauth2.client_secret": "generic-secret",
	})
	// The page suggests the redirect URI to register: its own auth.htm.
	shown := get(t, ctx, "redirect URI", chromedp.Text(chromedp.ID("redirect-uri")))
	if shown != redirect {
		t.Fatalf("the page says to register %q as the redirect URI, want %q", shown, redirect)
	}
	fillKey(t, ctx, "oauth2.redirect_url", shown)

	// The user declines at the provider: auth.htm says so, nothing is stored.
	srv.DenyNext()
	popup, pw := waitPopup(t, ctx, "Authorise", chromedp.Click(chromedp.ID("btn-authorize")))
	waitShown(t, popup, "auth.htm after the refusal", "auth-failed")
	if code := get(t, popup, "provider error", chromedp.Text(chromedp.ID("auth-error"))); code != "access_denied" {
		t.Errorf("auth.htm shows the provider's error as %q, want access_denied", code)
	}
	if hint := get(t, popup, "hint", chromedp.Text(chromedp.ID("auth-hint"))); hint == "" {
		t.Error("auth.htm says nothing about what to do after the refusal")
	}
	checkAuthPage(t, popup, pw, agent.base)
	screenshot(t, popup, "auth-failure.png", 560, 720, false)
	waitJS(t, ctx, "the page hears of the failure",
		`document.getElementById('form-msg').textContent.indexOf('authorisation failed') >= 0`,
		`document.getElementById('form-msg').textContent`)
	if s := statusText(t, ctx); strings.Contains(s, "authorised as") {
		t.Errorf("after access_denied the status says:\n%s", s)
	}
	do(t, popup, "close the window", chromedp.Evaluate[chromedp.Void](`window.close()`))

	// Again, and the user consents.
	popup, pw = waitPopup(t, ctx, "Authorise again", chromedp.Click(chromedp.ID("btn-authorize")))
	waitShown(t, popup, "auth.htm after the sign-in", "auth-ok")
	headline := get(t, popup, "auth.htm headline", chromedp.Text(chromedp.ID("auth-headline")))
	if !strings.Contains(headline, "authorised to send mail as "+rig.User) {
		t.Errorf("auth.htm says %q", headline)
	}
	checkAuthPage(t, popup, pw, agent.base)
	screenshot(t, popup, "auth-success.png", 560, 720, false)
	waitAuthorised(t, ctx, rig.User)

	sendTestMail(t, ctx, rig, to)
	do(t, ctx, "close Other settings", chromedp.Click(chromedp.CSS("#more > summary")))
	screenshot(t, ctx, "admin-desktop.png", 1280, 900, false)
	screenshot(t, ctx, "admin-phone.png", 390, 844, true)
	do(t, ctx, "desktop again", chromedp.EmulateViewport(1280, 900))

	checkAdminPage(t, ctx, admin, agent.base)
}

// firstLogin opens the page, is sent to the setup form, enters the setup
// code and a new password, and lands on the admin page.
func firstLogin(t *testing.T, ctx context.Context, agent *webAgent) {
	t.Helper()
	do(t, ctx, "open the page", chromedp.Navigate(agent.base+"/"), chromedp.WaitVisible(chromedp.ID("setup-form")))
	if loc := get(t, ctx, "location", chromedp.Location()); loc != agent.base+"/login" {
		t.Errorf("without a session / went to %s, want the login page", loc)
	}
	const password = "correct horse battery"
	do(t, ctx, "setup form",
		chromedp.SendKeys(chromedp.ID("setup-code"), agent.setupCode),
		chromedp.SendKeys(chromedp.ID("setup-password"), password),
		chromedp.SendKeys(chromedp.ID("setup-password2"), password),
		chromedp.Click(chromedp.ID("btn-setup")),
	)
	do(t, ctx, "admin page", chromedp.WaitVisible(chromedp.ID("cfg-form")), chromedp.WaitReady(keySel("mail.from")))
	waitJS(t, ctx, "logged in", `document.getElementById('who').textContent !== ''`, "")
}

// fillForm fills in "Alarms and Errors as Email" for the rig and an OAuth2
// mode with its fields.
func fillForm(t *testing.T, ctx context.Context, rig *testrig.Rig, to, mode string, oauth2 map[string]string) {
	t.Helper()
	fillKey(t, ctx, "mail.from", rig.User)
	fillKey(t, ctx, "mail.to", to)
	fillKey(t, ctx, "smtp.host", rig.Host)
	fillKey(t, ctx, "smtp.port", strconv.Itoa(rig.SubmissionPort))
	fillKey(t, ctx, "smtp.auth", "oauth2")
	do(t, ctx, "OAuth2 fields", chromedp.WaitVisible(chromedp.ID("fs-oauth2")))
	fillKey(t, ctx, "oauth2.mode", mode)
	// The rig's server certificate is signed by its own CA.
	do(t, ctx, "open Other settings", chromedp.Click(chromedp.CSS("#more > summary")))
	fillKey(t, ctx, "smtp.ca_file", rig.CAFile)
	for _, k := range slices.Sorted(maps.Keys(oauth2)) {
		fillKey(t, ctx, k, oauth2[k])
	}
	do(t, ctx, "Save", chromedp.Click(chromedp.ID("btn-save")))
	waitJS(t, ctx, "saved", `/^Saved/.test(document.getElementById('form-msg').textContent)`,
		`document.getElementById('form-msg').textContent + ' | ' + Array.from(document.querySelectorAll('.err')).map(e => e.id + ': ' + e.textContent).filter(s => !/: $/.test(s)).join('; ')`)
}

// statusText is the status box's text.
func statusText(t *testing.T, ctx context.Context) string {
	t.Helper()
	return get(t, ctx, "status", chromedp.Evaluate[string](`document.getElementById('status').innerText`))
}

// waitAuthorised waits until the status box says "authorised as account".
func waitAuthorised(t *testing.T, ctx context.Context, account string) {
	t.Helper()
	waitJS(t, ctx, "status says authorised",
		`document.getElementById('status').textContent.indexOf(`+jsString("authorised as "+account)+`) >= 0`,
		`document.getElementById('status').innerText`)
}

// sendTestMail presses "Send test mail", waits for the page's answer and
// for the mail in the rig's Maildir.
func sendTestMail(t *testing.T, ctx context.Context, rig *testrig.Rig, to string) {
	t.Helper()
	// An earlier test mail's answer must not pass for this one's.
	do(t, ctx, "Send test mail",
		chromedp.Evaluate[chromedp.Void](`(m => { m.className = 'msg'; m.textContent = ''; })(document.getElementById('test-msg'))`),
		chromedp.Click(chromedp.ID("btn-test")))
	waitJS(t, ctx, "test mail answered", `/\b(ok|bad)\b/.test(document.getElementById('test-msg').className)`, "")
	msg := get(t, ctx, "test result", chromedp.Text(chromedp.ID("test-msg")))
	steps := get(t, ctx, "test steps", chromedp.Evaluate[string](`document.getElementById('test-steps').innerText`))
	if !strings.HasPrefix(msg, "The server accepted the mail") {
		t.Fatalf("the test mail failed: %s\nsteps:\n%s", msg, steps)
	}
	if !strings.Contains(steps, "as "+rig.User) {
		t.Errorf("the steps do not show the login as %s:\n%s", rig.User, steps)
	}
	rig.WaitMail(t, func(m *mail.Message, raw []byte) bool { return strings.Contains(m.Header.Get("To"), to) }, 30*time.Second)
}

// checkAuthPage checks that auth.htm, now shown in the tab, loaded nothing
// from another origin and reported no CSP violation. Its tab was attached
// only after it opened, so the resources come from the page's own
// performance entries; its messages come from the replay at attach.
func checkAuthPage(t *testing.T, ctx context.Context, w *tabWatch, origin string) {
	t.Helper()
	loc := get(t, ctx, "auth.htm location", chromedp.Location())
	if !strings.HasPrefix(loc, origin+"/auth.htm?") {
		t.Errorf("the window is at %s, want %s/auth.htm?…", loc, origin)
	}
	res := get(t, ctx, "auth.htm resources", chromedp.Evaluate[[]string](`performance.getEntriesByType('resource').map(e => e.name)`))
	if len(res) == 0 {
		t.Errorf("auth.htm loaded no resource; its stylesheet and script are missing")
	}
	sameOrigin(t, "auth.htm", res, origin)
	for _, m := range w.Messages() {
		t.Errorf("auth.htm logged: %s", m)
	}
}

// checkAdminPage checks that the admin page loaded nothing from another
// origin and that the tab logged no CSP violation or other error; then it
// breaks the CSP on purpose, to show the watch would see a violation.
// Messages naming one of expected (refusals the test caused) are allowed.
func checkAdminPage(t *testing.T, ctx context.Context, w *tabWatch, origin string, expected ...string) {
	t.Helper()
	sameOrigin(t, "the admin page", w.Requests(), origin)
	// The browser asks for an icon the page does not name.
	expected = append(expected, "/favicon.ico")
	for _, m := range w.Messages() {
		if !slices.ContainsFunc(expected, func(e string) bool { return strings.Contains(m, e) }) {
			t.Errorf("the admin page logged: %s", m)
		}
	}
	do(t, ctx, "inline script", chromedp.Evaluate[chromedp.Void](
		`(() => { const s = document.createElement('script'); s.textContent = 'window.inlineRan = true'; document.body.appendChild(s); })()`))
	waitCSP := func() bool {
		for range 50 {
			for _, m := range w.Messages() {
				if strings.Contains(m, "Content Security Policy") {
					t.Logf("the watch saw: %s", m)
					return true
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		return false
	}
	if !waitCSP() {
		t.Errorf("an inline script added on purpose was not reported as a CSP violation; messages: %q", w.Messages())
	}
	if ran := get(t, ctx, "inline script ran", chromedp.Evaluate[bool](`window.inlineRan === true`)); ran {
		t.Error("the CSP let an inline script run")
	}
}
