//go:build !nopage

package main

import (
	"net/http"

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
		Log:        env.Log,
	})
	return page, login, err
}
