package config

// Mode is one OAuth2 mode: the grant it uses, what the administrator must
// give, and the preset values used when a key is left empty.
type Mode struct {
	// Name is the value of oauth2.mode.
	Name string
	// Grant says in plain words how the token is obtained.
	Grant string
	// Interactive is true when a person must sign in (auth.htm, authorize).
	Interactive bool
	// Needs lists the keys that must be set. An entry "a|b" means a or b.
	Needs []string
	// NeedsWith lists keys that must be set once another key is.
	NeedsWith []Need
	// Refuses lists the values the mode cannot work with, each with the
	// reason and where the provider says so.
	Refuses []Refusal
	// SMTPHost and SMTPPort are the preset submission server, "" for none.
	SMTPHost string
	SMTPPort int
	// Scopes is the preset scope list.
	Scopes []string
	// Microsoft is true when endpoints live under authority + tenant.
	Microsoft bool
	// AuthURL, TokenURL and DeviceAuthURL are the preset endpoints
	// (Microsoft ones are built from authority and tenant).
	AuthURL, TokenURL, DeviceAuthURL string
}

const microsoftAuthority = "https://login.microsoftonline.com/"

// Modes lists every OAuth2 mode.
var Modes = []Mode{
	{
		Name:        "exchange",
		Grant:       "authorisation code with PKCE; a person signs in once",
		Interactive: true,
		Needs:       []string{"oauth2.tenant", "oauth2.client_id", "oauth2.client_secret"},
		Refuses:     []Refusal{entraRedirectScheme, entraRedirectIPv6, entraRedirectLength, entraOfflineAccess},
		SMTPHost:    "smtp.office365.com", SMTPPort: 587,
		Scopes:    []string{"https://outlook.office.com/SMTP.Send", "offline_access"},
		Microsoft: true,
	},
	{
		Name:  "microsoft365",
		Grant: "resource-owner password (legacy; blocked by MFA, prefer microsoft-app)",
		Needs: []string{"oauth2.tenant", "oauth2.client_id", "oauth2.username", "oauth2.password"},
		Refuses: []Refusal{
			// Microsoft, v2-oauth-ropc.md: the password grant works only
			// with the tenant or organizations (AADSTS9001023 for
			// common), and not for personal accounts (consumers).
			{Key: "oauth2.tenant", Refused: oneOf("common", "consumers"),
				Why: "mode microsoft365 (password grant) cannot use tenant %q: set the tenant ID or domain (or organizations), or use mode microsoft-app"},
			// Microsoft, v2-oauth-ropc.md: "no passwords with leading or
			// trailing spaces".
			{Key: "oauth2.password", Refused: spaceAtEnds,
				Why: "begins or ends with a space, which Microsoft's password grant does not accept: change the account's password, or use mode microsoft-app"},
		},
		SMTPHost: "smtp.office365.com", SMTPPort: 587,
		Scopes:    []string{"https://outlook.office.com/SMTP.Send", "offline_access"},
		Microsoft: true,
	},
	{
		Name:  "microsoft-app",
		Grant: "client credentials (app-only, SMTP.SendAsApp)",
		Needs: []string{"oauth2.tenant", "oauth2.client_id", "oauth2.client_secret|oauth2.private_key"},
		// Microsoft, certificate-credentials.md: the client assertion
		// carries x5t#S256, the thumbprint of the certificate uploaded
		// to the app registration.
		NeedsWith: []Need{{Key: "oauth2.certificate", With: "oauth2.private_key",
			Why: "mode microsoft-app with a private key needs the certificate uploaded to the app registration (it gives x5t#S256)"}},
		Refuses: []Refusal{
			// Microsoft, v2-oauth2-auth-code-flow.md (where /common is
			// refused): client credentials need the tenant ID or domain.
			{Key: "oauth2.tenant", Refused: oneOf("common", "consumers", "organizations"),
				Why: "mode microsoft-app (client credentials) cannot use tenant %q: set the directory (tenant) ID or domain"},
		},
		SMTPHost: "smtp.office365.com", SMTPPort: 587,
		Scopes:    []string{"https://outlook.office365.com/.default"},
		Microsoft: true,
	},
	{
		Name:        "gmail",
		Grant:       "authorisation code with PKCE, offline access; a person signs in once",
		Interactive: true,
		Needs:       []string{"oauth2.client_id", "oauth2.client_secret"},
		Refuses:     []Refusal{googleRedirectIP, googleMailScope},
		SMTPHost:    "smtp.gmail.com", SMTPPort: 587,
		Scopes:        []string{"https://mail.google.com/"},
		AuthURL:       "https://accounts.google.com/o/oauth2/auth",
		TokenURL:      "https://oauth2.googleapis.com/token",
		DeviceAuthURL: "https://oauth2.googleapis.com/device/code",
	},
	{
		Name:     "google-service-account",
		Grant:    "JWT bearer (service account with domain-wide delegation)",
		Needs:    []string{"oauth2.client_email", "oauth2.private_key", "oauth2.subject"},
		Refuses:  []Refusal{googleMailScope},
		SMTPHost: "smtp.gmail.com", SMTPPort: 587,
		Scopes:   []string{"https://mail.google.com/"},
		TokenURL: "https://oauth2.googleapis.com/token",
	},
	{
		Name:        "client-secret-post",
		Grant:       "authorisation code with PKCE, client secret in the request body",
		Interactive: true,
		Needs:       []string{"oauth2.auth_url", "oauth2.token_url", "oauth2.client_id", "oauth2.client_secret"},
	},
	{
		Name:        "private-key-jwt",
		Grant:       "authorisation code with PKCE, client authenticated by a signed JWT",
		Interactive: true,
		Needs:       []string{"oauth2.auth_url", "oauth2.token_url", "oauth2.client_id", "oauth2.private_key", "oauth2.key_id|oauth2.certificate"},
	},
}

// LookupMode returns the mode called name.
func LookupMode(name string) (Mode, bool) {
	for _, m := range Modes {
		if m.Name == name {
			return m, true
		}
	}
	return Mode{}, false
}

// ModeNames lists the mode names in table order.
func ModeNames() []string {
	names := make([]string, len(Modes))
	for i, m := range Modes {
		names[i] = m.Name
	}
	return names
}
