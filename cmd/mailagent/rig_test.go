//go:build rig

package main

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"mailagent/appliance/testrig"
)

// TestRig runs the scripts in testdata/rig against a real Postfix + Dovecot.
// Each script gets the rig in its environment:
//
//	RIG_HOST, RIG_SUBMISSION, RIG_SMTPS, RIG_BEARER, RIG_PLAIN  the ports
//	RIG_CA        the CA file that signed the server's certificate
//	RIG_USER, RIG_PASSWORD  the password account
//
// and these commands:
//
//	mint FILE USER [TTL]     write tokens.toml with an access token the rig accepts
//	waitmail REGEXP...       wait for a mail whose raw text matches every REGEXP; write it to mail.eml
//	checkmail FILE NAME TEXT check FILE is a valid mail: Message-ID, Date, Auto-Submitted,
//	                         an RFC 2047 encoded From name NAME and a quoted-printable body containing TEXT
//	waitsocket PATH          wait until something listens on the unix socket PATH
//	mountro DIR              mount a small tmpfs on DIR holding DIR's files, then make it read-only
func TestRig(t *testing.T) {
	rig := testrig.Start(t)
	testscript.Run(t, testscript.Params{
		Dir: "testdata/rig",
		Setup: func(env *testscript.Env) error {
			for k, v := range map[string]string{
				"RIG_HOST": rig.Host, "RIG_CA": rig.CAFile, "RIG_USER": rig.User, "RIG_PASSWORD": rig.Password,
				"RIG_SUBMISSION": strconv.Itoa(rig.SubmissionPort), "RIG_SMTPS": strconv.Itoa(rig.SMTPSPort),
				"RIG_BEARER": strconv.Itoa(rig.BearerPort), "RIG_PLAIN": strconv.Itoa(rig.PlainPort),
			} {
				env.Setenv(k, v)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"mint": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) < 2 {
					ts.Fatalf("usage: mint FILE USER [TTL]")
				}
				ttl := time.Hour
				if len(args) > 2 {
					d, err := time.ParseDuration(args[2])
					ts.Check(err)
					ttl = d
				}
				tok := rig.Tokens.MintSize(args[1], 2048, ttl, "https://outlook.office.com/SMTP.Send")
				doc := fmt.Sprintf("access_token = %q\ntoken_type = \"Bearer\"\nexpiry = %s\n", tok, time.Now().Add(ttl).UTC().Format(time.RFC3339))
				ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(doc), 0o600))
				// Scripts check that no output shows the token: give them its start.
				ts.Setenv("TOKEN_START", tok[:24])
			},
			"waitmail": func(ts *testscript.TestScript, neg bool, args []string) {
				var res []*regexp.Regexp
				for _, a := range args {
					res = append(res, regexp.MustCompile("(?m)"+a))
				}
				wait := 30 * time.Second
				if neg {
					wait = 5 * time.Second // a mail that should not come: wait less
				}
				deadline := time.Now().Add(wait)
				for {
					for _, raw := range rig.Mails(t) {
						if matchAll(res, raw) {
							if neg {
								ts.Fatalf("a mail matching %q arrived", args)
							}
							ts.Check(os.WriteFile(ts.MkAbs("mail.eml"), raw, 0o600))
							return
						}
					}
					if time.Now().After(deadline) {
						if neg {
							return
						}
						ts.Fatalf("no mail matching %q arrived in 30s; the Maildir holds %d mails", args, len(rig.Mails(t)))
					}
					time.Sleep(100 * time.Millisecond)
				}
			},
			"checkmail": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 3 {
					ts.Fatalf("usage: checkmail FILE NAME TEXT")
				}
				raw, err := os.ReadFile(ts.MkAbs(args[0]))
				ts.Check(err)
				ts.Check(checkMail(raw, args[1], args[2]))
			},
			"waitsocket": func(ts *testscript.TestScript, neg bool, args []string) {
				deadline := time.Now().Add(30 * time.Second)
				for {
					c, err := net.Dial("unix", ts.MkAbs(args[0]))
					if err == nil {
						c.Close()
						return
					}
					if time.Now().After(deadline) {
						ts.Fatalf("nothing listens on %s: %v", args[0], err)
					}
					time.Sleep(50 * time.Millisecond)
				}
			},
			"mountro": func(ts *testscript.TestScript, neg bool, args []string) {
				dir := ts.MkAbs(args[0])
				files, err := os.ReadDir(dir)
				ts.Check(err)
				saved := map[string][]byte{}
				for _, f := range files {
					b, err := os.ReadFile(filepath.Join(dir, f.Name()))
					ts.Check(err)
					saved[f.Name()] = b
				}
				ts.Check(syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k,mode=0700"))
				ts.Defer(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
				for name, b := range saved {
					ts.Check(os.WriteFile(filepath.Join(dir, name), b, 0o600))
				}
				ts.Check(syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY, "size=256k,mode=0700"))
			},
		},
	})
}

func matchAll(res []*regexp.Regexp, raw []byte) bool {
	for _, re := range res {
		if !re.Match(raw) {
			return false
		}
	}
	return true
}

// checkMail checks what a delivered alarm mail must have.
func checkMail(raw []byte, name, text string) error {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("not a mail: %v", err)
	}
	h := m.Header
	if ok, _ := regexp.MatchString(`^<[^<>@\s]+@[^<>@\s]+>$`, h.Get("Message-ID")); !ok {
		return fmt.Errorf("Message-ID %q is not valid", h.Get("Message-ID"))
	}
	if _, err := h.Date(); err != nil {
		return fmt.Errorf("Date: %v", err)
	}
	if h.Get("Auto-Submitted") != "auto-generated" {
		return fmt.Errorf("Auto-Submitted = %q", h.Get("Auto-Submitted"))
	}
	rawFrom := h.Get("From")
	if !strings.Contains(strings.ToLower(rawFrom), "=?utf-8?") {
		return fmt.Errorf("From %q has no RFC 2047 encoded word", rawFrom)
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != name {
		return fmt.Errorf("From = %v (%v), want name %q", from, err, name)
	}
	if cte := h.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		return fmt.Errorf("Content-Transfer-Encoding = %q", cte)
	}
	if mt, params, err := mime.ParseMediaType(h.Get("Content-Type")); err != nil || mt != "text/plain" || !strings.EqualFold(params["charset"], "utf-8") {
		return fmt.Errorf("Content-Type = %q", h.Get("Content-Type"))
	}
	body, err := decodeQP(m)
	if err != nil {
		return err
	}
	if !strings.Contains(body, text) {
		return fmt.Errorf("body does not contain %q:\n%s", text, body)
	}
	return nil
}

func decodeQP(m *mail.Message) (string, error) {
	b, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	return string(b), err
}
