// Package webui is the box's web interface: Server puts the admin page, the
// login, auth.htm (the OAuth2 redirect URI), the JSON API under /api/ and
// the alarm endpoints behind one http.Handler; routes.go lists every route
// and who may use it. The page is three embedded files under static (no
// framework, no build step, nothing external). Server talks to the agent
// through Backend; agent.Admin is the real one.
//
// The alarm endpoints, POST /alarm and POST /alertmanager, are whatever
// handler Options.Alarm gives (ingest.HTTP, as cmd/mailagent wires it):
// Server routes them, and a build without the page serves that handler
// alone.
package webui
