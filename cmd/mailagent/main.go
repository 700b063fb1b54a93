// Command mailagent owns a box's outbound alarm and event mail: the mail
// configuration, OAuth2 tokens, alarm delivery and the console.
//
// Run "mailagent help" for the commands.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
