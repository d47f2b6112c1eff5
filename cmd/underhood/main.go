// Command underhood is the whole backend in one binary: it serves the
// PocketBase-compatible API and manages its data directory. It is the only
// package that picks concrete engines and wires them together.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}
