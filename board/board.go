// Package board describes the hardware mailagent runs on: where its files
// live, which serial port is its console, which indicator to raise while mail
// cannot be delivered, and how much memory the agent may use.
//
// A profile is plain data. Anyone may import this package; it imports only the
// standard library.
package board

import (
	"bytes"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// Profile is one kind of hardware.
type Profile struct {
	// Name selects the profile with --board.
	Name string
	// Description says in a few words what hardware this is.
	Description string
	// DataDir holds mailagent.toml, tokens.toml and the spool. Relative paths
	// are relative to the working directory (the host profile uses ./var).
	DataDir string
	// RunDir holds the agent's local socket.
	RunDir string
	// Listen is the default address of the web page and the alarm API.
	Listen string
	// ConsolePort is the serial device of the console, "" for none.
	ConsolePort string
	// ConsoleBaud is the console's speed.
	ConsoleBaud int
	// Attention is the sysfs brightness file of the indicator raised while mail
	// cannot be delivered, "" for none.
	Attention string
	// MemoryLimit is the soft memory limit for the Go runtime, in bytes, that
	// mailagent run sets (debug.SetMemoryLimit) unless GOMEMLIMIT is set; 0
	// means none.
	MemoryLimit int64
	// Compatible lists device-tree "compatible" strings that select this profile.
	Compatible []string
}

const mib = 1 << 20

var profiles = []Profile{
	{
		Name:        "host",
		Description: "development machine, data in ./var",
		DataDir:     "var",
		RunDir:      "var/run",
		Listen:      "127.0.0.1:8080",
		ConsoleBaud: 115200,
		MemoryLimit: 24 * mib,
	},
	{
		Name:        "gateway",
		Description: "ARMv7 gateway, data on the flash partition",
		DataDir:     "/flash/mailagent",
		RunDir:      "/run/mailagent",
		Listen:      ":8443",
		ConsolePort: "/dev/ttyS1",
		ConsoleBaud: 115200,
		Attention:   "/sys/class/leds/attention/brightness",
		MemoryLimit: 20 * mib,
		Compatible:  []string{"mailagent,gateway", "fsl,imx6ul"},
	},
	{
		Name:        "pbx",
		Description: "ARMv5 PBX, data on the flash partition",
		DataDir:     "/flash/mailagent",
		RunDir:      "/tmp/mailagent",
		Listen:      ":8443",
		ConsolePort: "/dev/ttyS0",
		ConsoleBaud: 115200,
		Attention:   "/sys/class/leds/alarm/brightness",
		MemoryLimit: 16 * mib,
		Compatible:  []string{"mailagent,pbx", "marvell,kirkwood"},
	},
}

// Default is the profile used when nothing else is named or detected.
const Default = "host"

// Lookup returns the profile called name.
func Lookup(name string) (Profile, error) {
	for _, p := range profiles {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("unknown board %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Names lists the known profiles.
func Names() []string {
	var names []string
	for _, p := range profiles {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return names
}

// Detect picks the profile whose compatible string appears in the device
// tree of root (a file system rooted at "/", such as os.DirFS("/")), and the
// host profile when there is no device tree or nothing matches.
func Detect(root fs.FS) Profile {
	data, err := fs.ReadFile(root, "proc/device-tree/compatible")
	if err == nil {
		for _, c := range bytes.Split(data, []byte{0}) {
			for _, p := range profiles {
				for _, pc := range p.Compatible {
					if string(c) == pc {
						return p
					}
				}
			}
		}
	}
	p, _ := Lookup(Default)
	return p
}
