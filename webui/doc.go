// Package webui is the box's web interface: Server puts the admin page, the
// login, auth.htm (the OAuth2 redirect URI), the JSON API under /api/ and
// the alarm endpoints behind one http.Handler; routes.go lists every route
// and who may use it. The page is three embedded files under static (no
// framework, no build step, nothing external). Server talks to the agent
// through Backend; agent.Admin is the real one.
//
// Alarm endpoints (AlarmHandler), both behind HTTP Basic credentials
// ([http] alarm_user and alarm_password):
//
//	POST /alarm         one alarm or an array (application/json), or one
//	                    alarm as form fields (application/x-www-form-urlencoded)
//	POST /alertmanager  the Prometheus Alertmanager webhook, version 4
//
// An endpoint answers success only once every alarm of the request is safe,
// and a retryable 503 otherwise; see AlarmHandler.
package webui
