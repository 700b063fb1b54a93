//go:build nopage

package main

import (
	"net/http"

	"mailagent/appliance/agent"
	"mailagent/appliance/config"
)

// adminPage, built with -tags nopage, leaves the admin page, auth.htm and
// the API out: the box takes alarms over HTTP and is configured on the
// console. make bench builds it to print what the page adds to the binary.
func adminPage(backend *agent.Admin, env *Env, c *config.Config, alarms http.Handler) (page http.Handler, login string, err error) {
	return alarms, "this build has no admin page (-tags nopage): configure the box with \"mailagent config\"", nil
}
