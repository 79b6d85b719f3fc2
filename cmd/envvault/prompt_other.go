//go:build !linux

package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// readNoEcho writes prompt to w and reads a line from f without echo
// (term.ReadPassword turns echo off when it starts to read).
func readNoEcho(f *os.File, w io.Writer, prompt string) ([]byte, error) {
	fmt.Fprint(w, prompt)
	return term.ReadPassword(int(f.Fd()))
}
