//go:build !nopage

package main

import (
	"net"
	"net/http"
	"os"

	"mailagent/appliance/agent"
	"mailagent/appliance/config"
	"mailagent/webui"
)

// adminPage is the web page: the admin page, auth.htm and the API, with
// the alarm endpoints. login tells the administrator how to log in.
func adminPage(backend *agent.Admin, env *Env, c *config.Config, alarms http.Handler) (page http.Handler, login string, err error) {
	setupCode := ""
	login = "a password is set: log in with the admin password"
	if backend.PasswordHash() == "" {
		setupCode = agent.NewSetupCode()
		login = "no admin password is set: open the page and enter the one-time setup code " + setupCode + " to choose one"
	}
	page, err = webui.New(webui.Options{
		Backend:    backend,
		Alarm:      alarms,
		SetupCode:  setupCode,
		TrustProxy: c.HTTP.TrustProxy,
		BaseURL:    c.HTTP.BaseURL,
		Hosts:      pageHosts(c),
		Log:        env.Log,
	})
	return page, login, err
}

// pageHosts are the names the page answers to besides IP addresses,
// localhost and http.base_url's: http.listen's host, and the box's host
// name, alone and under .local (mDNS).
func pageHosts(c *config.Config) []string {
	var hs []string
	if host, _, err := net.SplitHostPort(c.HTTP.Listen); err == nil && host != "" {
		hs = append(hs, host)
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		hs = append(hs, h, h+".local")
	}
	return hs
}
