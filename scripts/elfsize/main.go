// Command elfsize prints the bytes an ELF binary loads into memory: the
// sum of its allocated sections (code, read-only data, data; bss is not
// in the file). File sizes move in steps of the segment alignment (64 KiB
// on ARM), so a difference of a few kilobytes shows here and not there.
//
//	go run ./scripts/elfsize FILE...
package main

import (
	"debug/elf"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: elfsize FILE...")
		os.Exit(2)
	}
	for _, name := range os.Args[1:] {
		n, err := loaded(name)
		if err != nil {
			fmt.Fprintf(os.Stderr, "elfsize: %v\n", err)
			os.Exit(1)
		}
		fmt.Println(n)
	}
}

// loaded sums the sizes of the allocated sections that have file contents.
func loaded(name string) (uint64, error) {
	f, err := elf.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n uint64
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC != 0 && s.Type != elf.SHT_NOBITS {
			n += s.Size
		}
	}
	return n, nil
}
