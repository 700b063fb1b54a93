// Package webui is the box's web interface: the admin page (to come) and
// the endpoints other systems post alarms to.
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
