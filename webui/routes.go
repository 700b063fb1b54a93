package webui

import "net/http"

// access says who may use a route.
type access int

const (
	// public routes need no session: the login and setup forms, the
	// page's static files, and the alarm endpoints (HTTP Basic of their own).
	public access = iota
	// page routes need a session; without one they redirect to /login.
	page
	// api routes need a session; without one they answer 401 JSON.
	api
	// callback is auth.htm: a session, or the grant cookie of the browser
	// that started the grant (the provider's redirect is a cross-site
	// navigation, which carries no SameSite=Strict cookie).
	callback
)

// route is one entry of the route table.
type route struct {
	method, path string
	access       access
	serve        func(s *Server) http.HandlerFunc
}

// routeTable is every route of the Server. A state-changing route behind a
// session also needs the session's CSRF token (RequireSession).
var routeTable = []route{
	{"GET", "/{$}", page, func(s *Server) http.HandlerFunc { return s.index }},
	{"GET", "/login", public, func(s *Server) http.HandlerFunc { return s.loginPage }},
	{"POST", "/login", public, func(s *Server) http.HandlerFunc { return s.login }},
	{"POST", "/setup", public, func(s *Server) http.HandlerFunc { return s.setupPassword }},
	{"POST", "/logout", page, func(s *Server) http.HandlerFunc { return s.logout }},
	{"GET", "/auth.htm", callback, func(s *Server) http.HandlerFunc { return s.authPage }},
	{"GET", "/static/app.js", public, func(s *Server) http.HandlerFunc { return s.file("app.js", "text/javascript; charset=utf-8") }},
	{"GET", "/static/style.css", public, func(s *Server) http.HandlerFunc { return s.file("style.css", "text/css; charset=utf-8") }},
	{"GET", "/api/session", api, func(s *Server) http.HandlerFunc { return s.apiSession }},
	{"GET", "/api/status", api, func(s *Server) http.HandlerFunc { return s.apiStatus }},
	{"GET", "/api/config", api, func(s *Server) http.HandlerFunc { return s.apiConfig }},
	{"POST", "/api/config", api, func(s *Server) http.HandlerFunc { return s.apiSetConfig }},
	{"POST", "/api/authorize", api, func(s *Server) http.HandlerFunc { return s.apiAuthorize }},
	{"POST", "/api/authorize/paste", api, func(s *Server) http.HandlerFunc { return s.apiPaste }},
	{"POST", "/api/test", api, func(s *Server) http.HandlerFunc { return s.apiTest }},
	{"GET", "/api/alarms", api, func(s *Server) http.HandlerFunc { return s.apiAlarms }},
	{"POST", "/api/import", api, func(s *Server) http.HandlerFunc { return s.apiImport }},
	{"POST", "/api/passwd", api, func(s *Server) http.HandlerFunc { return s.apiPasswd }},
	{"POST", "/alarm", public, func(s *Server) http.HandlerFunc { return s.alarmRoute }},
	{"POST", "/alertmanager", public, func(s *Server) http.HandlerFunc { return s.alarmRoute }},
}

// routes builds the mux from routeTable.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routeTable {
		var h http.Handler = rt.serve(s)
		switch rt.access {
		case page, api:
			h = s.sessions.RequireSession(h)
		}
		mux.Handle(rt.method+" "+rt.path, h)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, "no such API route")
	})
	return mux
}

// alarmRoute hands the alarm endpoints to Options.Alarm.
func (s *Server) alarmRoute(w http.ResponseWriter, r *http.Request) {
	if s.alarm == nil {
		http.NotFound(w, r)
		return
	}
	s.alarm.ServeHTTP(w, r)
}
