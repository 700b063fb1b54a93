// Package config is mailagent's configuration contract: the TOML file
// mailagent.toml, its keys, their defaults and what each OAuth2 mode needs.
//
// The toml tags below are the contract shared by the file, the console's
// set/show, the web form and the JSON API: one key table (Keys) is derived
// from them, so names cannot drift. A zero value means "use the default";
// WithDefaults fills defaults from the board profile without writing them to
// the file.
package config

// Config is the whole of mailagent.toml.
type Config struct {
	Device  Device  `toml:"device"`
	Mail    Mail    `toml:"mail"`
	SMTP    SMTP    `toml:"smtp"`
	OAuth2  OAuth2  `toml:"oauth2"`
	Alarms  Alarms  `toml:"alarms"`
	HTTP    HTTP    `toml:"http"`
	Syslog  Syslog  `toml:"syslog"`
	Console Console `toml:"console"`
	Admin   Admin   `toml:"admin"`

	// dataDir is the data directory the configuration is used in, from
	// the board profile (WithDefaults); "" when not known. Validate keeps
	// the file keys off mailagent's own files there.
	dataDir string
}

// Device is the box itself.
type Device struct {
	Name string `toml:"name" help:"the box's name in mail subjects; default: the host name"`
}

// Mail is who alarm mail comes from and goes to.
type Mail struct {
	From          string   `toml:"from" help:"sender address; with OAuth2, the mailbox the token is for"`
	FromName      string   `toml:"from_name" help:"sender's display name"`
	To            []string `toml:"to" help:"recipient addresses"`
	ToName        string   `toml:"to_name" help:"recipients' display name (one recipient only)"`
	SubjectPrefix string   `toml:"subject_prefix" help:"text put before every subject, e.g. [alarm]"`
}

// SMTP is the submission server.
type SMTP struct {
	Host     string `toml:"host" help:"submission server name; default from the OAuth2 mode (e.g. smtp.office365.com)"`
	Port     int    `toml:"port" help:"server port; default 587 for starttls, 465 for tls, 25 for none"`
	TLS      string `toml:"tls" help:"starttls (required, default), tls (implicit, port 465) or none (plaintext)" enum:"starttls,tls,none"`
	CAFile   string `toml:"ca_file" help:"PEM file of extra CA certificates to trust"`
	Auth     string `toml:"auth" help:"none, password or oauth2; default oauth2 when an OAuth2 mode is set, else password when a user is set, else none" enum:"none,password,oauth2"`
	User     string `toml:"user" help:"SMTP user name for password auth; for OAuth2 the mailbox (default: mail.from)"`
	Password Secret `toml:"password" help:"SMTP password for password auth"`
	HELO     string `toml:"helo" help:"name sent in EHLO; default: the host name"`
}

// OAuth2 is how the box gets access tokens; see Modes for what each mode needs.
type OAuth2 struct {
	Mode            string   `toml:"mode" help:"exchange, microsoft365, microsoft-app, gmail, google-service-account, client-secret-post or private-key-jwt"`
	ClientID        string   `toml:"client_id" help:"the application (client) ID registered at the provider"`
	ClientSecret    Secret   `toml:"client_secret" help:"the client secret value (not its ID)"`
	SecretExpires   Date     `toml:"secret_expires" help:"date the client secret expires (YYYY-MM-DD); warnings 30, 7 and 1 days ahead"`
	Tenant          string   `toml:"tenant" help:"Microsoft: directory (tenant) ID or domain"`
	Authority       string   `toml:"authority" help:"Microsoft: base URL; default https://login.microsoftonline.com/"`
	AuthURL         string   `toml:"auth_url" help:"authorisation endpoint; default from the mode"`
	TokenURL        string   `toml:"token_url" help:"token endpoint; default from the mode"`
	DeviceAuthURL   string   `toml:"device_auth_url" help:"device authorisation endpoint; default from the mode"`
	Scopes          []string `toml:"scopes" help:"scopes to request; default from the mode"`
	RedirectURL     string   `toml:"redirect_url" help:"redirect URI registered at the provider, e.g. https://box.example.com/auth.htm"`
	LoginHint       string   `toml:"login_hint" help:"account proposed at sign-in; default: mail.from"`
	Username        string   `toml:"username" help:"microsoft365 (ROPC): the account's user name"`
	Password        Secret   `toml:"password" help:"microsoft365 (ROPC): the account's password"`
	ClientEmail     string   `toml:"client_email" help:"Google service account: client_email from the JSON key"`
	PrivateKeyID    string   `toml:"private_key_id" help:"Google service account: private_key_id from the JSON key"`
	PrivateKey      Secret   `toml:"private_key" help:"PEM private key (service account, certificate or private-key-jwt)" multiline:"true"`
	Subject         string   `toml:"subject" help:"Google service account: mailbox to send as"`
	KeyID           string   `toml:"key_id" help:"private-key-jwt: key ID (kid) registered at the provider"`
	Certificate     string   `toml:"certificate" help:"PEM certificate of the private key (gives x5t#S256)" multiline:"true"`
	KeepAccessToken bool     `toml:"keep_access_token" help:"also keep the access token in tokens.toml (one flash write per refresh; saves a token request at start)"`
}

// Alarms is how alarms become mail.
type Alarms struct {
	MinSeverity            string   `toml:"min_severity" help:"lowest severity that is mailed; default warning" enum:"critical,major,minor,warning,info"`
	PersistSeverity        string   `toml:"persist_severity" help:"alarms at least this severe are kept on flash until mailed; default major" enum:"critical,major,minor,warning,info"`
	MemoryQueueEntries     int      `toml:"memory_queue_entries" help:"alarms held in memory; default 100"`
	PersistentQueueEntries int      `toml:"persistent_queue_entries" help:"alarms held on flash; default 50"`
	DigestWindow           Duration `toml:"digest_window" help:"alarms within this time share one mail; default 30s, 0s sends each at once"`
	MaxMailsPerHour        int      `toml:"max_mails_per_hour" help:"mails per hour at most; default 30"`
	KeepaliveInterval      Duration `toml:"keepalive_interval" help:"OAuth2 refresh at least this often even when idle; default 24h"`
}

// HTTP is the web page, auth.htm and the alarm API.
type HTTP struct {
	Listen        string   `toml:"listen" help:"address of the web page; default from the board"`
	BaseURL       string   `toml:"base_url" help:"address of the page as the browser sees it, e.g. https://box.example.com"`
	TLSCert       string   `toml:"tls_cert" help:"PEM certificate file; default: the board's or a self-signed one"`
	TLSKey        string   `toml:"tls_key" help:"PEM key file of tls_cert"`
	TrustProxy    []string `toml:"trust_proxy" help:"addresses of the admin web server in front that authenticates users"`
	AlarmUser     string   `toml:"alarm_user" help:"user name other boxes use to post alarms"`
	AlarmPassword Secret   `toml:"alarm_password" help:"password other boxes use to post alarms"`
}

// Syslog is the syslog listeners.
type Syslog struct {
	ListenUDP   string `toml:"listen_udp" help:"UDP address for syslog, e.g. :514; empty: off"`
	ListenTCP   string `toml:"listen_tcp" help:"TCP address for syslog; empty: off"`
	MinSeverity string `toml:"min_severity" help:"lowest severity taken from syslog; default warning" enum:"critical,major,minor,warning,info"`
}

// Console is the serial console.
type Console struct {
	Port         string `toml:"port" help:"serial device; default from the board"`
	Baud         int    `toml:"baud" help:"speed; default from the board"`
	RequireLogin bool   `toml:"require_login" help:"ask for the admin password on the console"`
}

// Admin is the web page's administrator.
type Admin struct {
	PasswordHash Secret `toml:"password_hash" help:"hash of the admin password (set with passwd)"`
}
