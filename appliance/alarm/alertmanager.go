package alarm

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxAlertmanagerBody is the largest body ParseAlertmanager reads. A group
// of more alerts than fit is refused whole; Alertmanager's max_alerts in the
// webhook_config keeps a payload below it (100 alerts of ordinary size take
// about 100 KiB).
const MaxAlertmanagerBody = 1 << 20

// ParseAlertmanager reads the Prometheus Alertmanager webhook payload,
// version 4, as Alertmanager's notify/webhook Message (template.Data plus
// version, groupKey and truncatedAlerts) encodes it:
//
//	{"version": "4", "groupKey": …, "truncatedAlerts": 0, "status": "firing",
//	 "receiver": …, "groupLabels": {…}, "commonLabels": {…},
//	 "commonAnnotations": {…}, "externalURL": …,
//	 "alerts": [{"status": "firing", "labels": {…}, "annotations": {…},
//	             "startsAt": "…", "endsAt": "…", "generatorURL": …,
//	             "fingerprint": …}]}
//
// Fields this parser does not read are ignored, since Alertmanager adds
// fields without changing the version (notification_reason, routeLabels).
//
// One alarm per alert:
//   - Severity from labels.severity: critical, major, minor, warning, info
//     (any case), also "page" → critical, "error" → major, "warn" →
//     warning; otherwise warning. A resolved alert is Cleared.
//   - Code is labels.alertname (spaces become '_'; "alertmanager" if
//     missing), Source is labels.instance, else labels.job.
//   - Text is annotations.summary, then annotations.description on the
//     following lines (else annotations.message).
//   - Time is startsAt, or endsAt for a resolved alert; now when unset.
//   - Details: truncatedAlerts when Alertmanager left alerts out, the
//     fingerprint, the other labels and annotations in name order, and
//     generatorURL. What exceeds the model's limits is cut or counted in
//     an "omitted" detail, never an error.
//
// The body may hold at most MaxAlertmanagerBody bytes. A wrong version,
// status, type or time is an error naming the field and the alert
// ("alerts[3].startsAt: …").
func ParseAlertmanager(r io.Reader) ([]Alarm, error) {
	as, err := parseAlertmanager(r, time.Now())
	if err != nil {
		return nil, fmt.Errorf("parse alertmanager payload: %w", err)
	}
	return as, nil
}

// amAlert is one alert as read, before it becomes an alarm.
type amAlert struct {
	resolved            bool
	labels, annotations map[string]string
	startsAt, endsAt    time.Time
	generatorURL        string
	fingerprint         string
}

func parseAlertmanager(r io.Reader, now time.Time) ([]Alarm, error) {
	b, err := readBody(r, MaxAlertmanagerBody)
	if err != nil {
		return nil, err
	}
	raw, err := oneValue(b)
	if err != nil {
		return nil, err
	}
	m, err := jsonObject(raw, "", nil)
	if err != nil {
		return nil, err
	}
	switch v, ok, err := jsonString(m, "", "version"); {
	case err != nil:
		return nil, err
	case !ok:
		return nil, fmt.Errorf("version: missing (Alertmanager sends \"4\")")
	case v != "4":
		return nil, fmt.Errorf("version: %q is not \"4\"", cut(v, 16, ellipsis))
	}
	groupStatus, _, err := amStatus(m, "")
	if err != nil {
		return nil, err
	}
	var truncated uint64
	if raw, ok := m["truncatedAlerts"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &truncated); err != nil {
			return nil, fmt.Errorf("truncatedAlerts: not a count")
		}
	}
	rawAlerts, ok := m["alerts"]
	if !ok || string(rawAlerts) == "null" {
		return nil, fmt.Errorf("alerts: missing")
	}
	var items []json.RawMessage
	if len(rawAlerts) == 0 || rawAlerts[0] != '[' || json.Unmarshal(rawAlerts, &items) != nil {
		return nil, fmt.Errorf("alerts: not an array")
	}
	as := make([]Alarm, 0, len(items))
	for i, item := range items {
		path := fmt.Sprintf("alerts[%d]", i)
		al, err := amReadAlert(item, path, groupStatus)
		if err != nil {
			return nil, err
		}
		as = append(as, al.alarm(truncated, now))
	}
	return as, nil
}

// amStatus reads m["status"]: firing or resolved (or unset).
func amStatus(m map[string]json.RawMessage, path string) (status string, ok bool, err error) {
	s, ok, err := jsonString(m, path, "status")
	if err != nil || !ok {
		return "", false, err
	}
	if s != "firing" && s != "resolved" {
		return "", false, fmt.Errorf("%s: %q is not firing or resolved", fieldPath(path, "status"), cut(s, 16, ellipsis))
	}
	return s, true, nil
}

func amReadAlert(raw json.RawMessage, path, groupStatus string) (amAlert, error) {
	m, err := jsonObject(raw, path, nil)
	if err != nil {
		return amAlert{}, err
	}
	var al amAlert
	status, ok, err := amStatus(m, path)
	switch {
	case err != nil:
		return amAlert{}, err
	case !ok && groupStatus == "":
		return amAlert{}, fmt.Errorf("%s: missing", fieldPath(path, "status"))
	case !ok:
		status = groupStatus
	}
	al.resolved = status == "resolved"
	for _, f := range []struct {
		name string
		dst  *map[string]string
	}{{"labels", &al.labels}, {"annotations", &al.annotations}} {
		kvs, err := jsonStrings(m, path, f.name)
		if err != nil {
			return amAlert{}, err
		}
		*f.dst = make(map[string]string, len(kvs))
		for _, kv := range kvs {
			(*f.dst)[kv[0]] = kv[1]
		}
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"startsAt", &al.startsAt}, {"endsAt", &al.endsAt}} {
		s, ok, err := jsonString(m, path, f.name)
		if err != nil || !ok {
			if err != nil {
				return amAlert{}, err
			}
			continue
		}
		if *f.dst, _, err = parseTime(s); err != nil {
			return amAlert{}, fmt.Errorf("%s: %w", fieldPath(path, f.name), err)
		}
	}
	if al.generatorURL, _, err = jsonString(m, path, "generatorURL"); err != nil {
		return amAlert{}, err
	}
	if al.fingerprint, _, err = jsonString(m, path, "fingerprint"); err != nil {
		return amAlert{}, err
	}
	return al, nil
}

// amSeverity maps the severity label.
func amSeverity(label string) Severity {
	switch l := strings.ToLower(strings.TrimSpace(label)); l {
	case "page":
		return Critical
	case "error":
		return Major
	case "warn":
		return Warning
	case "cleared":
		return Warning // only resolution clears
	default:
		if s, err := ParseSeverity(l); err == nil {
			return s
		}
	}
	return Warning
}

func (al amAlert) alarm(truncated uint64, now time.Time) Alarm {
	used := map[string]bool{"alertname": true}
	a := Alarm{
		Severity: amSeverity(al.labels["severity"]),
		Code:     cleanCode(al.labels["alertname"], "alertmanager"),
		Time:     al.startsAt,
	}
	if al.resolved {
		a.Severity = Cleared
		if !al.endsAt.IsZero() {
			a.Time = al.endsAt
		}
	}
	if strings.EqualFold(strings.TrimSpace(al.labels["severity"]), a.Severity.String()) {
		used["severity"] = true // said by Severity; kept when it says more
	}
	if a.Time.IsZero() {
		a.Time = now
	}
	for _, l := range []string{"instance", "job"} {
		if s := cleanLine(al.labels[l]); s != "" {
			a.Source, used[l] = cut(s, MaxSource, ellipsis), true
			break
		}
	}

	usedAnn := map[string]bool{}
	var text []string
	summary := strings.TrimSpace(al.annotations["summary"])
	description := strings.TrimSpace(al.annotations["description"])
	if summary != "" {
		text, usedAnn["summary"] = append(text, summary), true
	}
	if description != "" {
		if description != summary {
			text = append(text, description)
		}
		usedAnn["description"] = true
	}
	if message := strings.TrimSpace(al.annotations["message"]); len(text) == 0 && message != "" {
		text, usedAnn["message"] = append(text, message), true
	}
	a.Text = cut(cleanText(strings.Join(text, "\n\n")), MaxText, ellipsis)

	var d details
	if truncated > 0 {
		d.add("truncatedAlerts", strconv.FormatUint(truncated, 10))
	}
	if al.fingerprint != "" {
		d.add("fingerprint", al.fingerprint)
	}
	for _, kv := range []struct {
		m    map[string]string
		used map[string]bool
	}{{al.labels, used}, {al.annotations, usedAnn}} {
		keys := make([]string, 0, len(kv.m))
		for k := range kv.m {
			if !kv.used[k] {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			d.add(k, kv.m[k])
		}
	}
	if al.generatorURL != "" {
		d.add("generatorURL", al.generatorURL)
	}
	a.Details = d.result()
	return a
}
