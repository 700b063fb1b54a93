package board

import (
	"testing"
	"testing/fstest"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name       string
		compatible string
		want       string
	}{
		{"no device tree", "", "host"},
		{"gateway", "vendor,box\x00fsl,imx6ul\x00", "gateway"},
		{"pbx first entry", "mailagent,pbx\x00marvell,kirkwood\x00", "pbx"},
		{"unknown", "acme,toaster\x00", "host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			if tt.compatible != "" {
				fsys["proc/device-tree/compatible"] = &fstest.MapFile{Data: []byte(tt.compatible)}
			}
			if got := Detect(fsys).Name; got != tt.want {
				t.Errorf("Detect(%q) = %q, want %q", tt.compatible, got, tt.want)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	for _, name := range Names() {
		p, err := Lookup(name)
		if err != nil || p.Name != name {
			t.Errorf("Lookup(%q) = %v, %v", name, p.Name, err)
		}
		if p.DataDir == "" || p.RunDir == "" || p.Listen == "" || p.MemoryLimit == 0 {
			t.Errorf("profile %q lacks a directory, listen address or memory limit", name)
		}
	}
	if _, err := Lookup("toaster"); err == nil {
		t.Error(`Lookup("toaster") succeeded, want an error`)
	}
}
