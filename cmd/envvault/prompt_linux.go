//go:build linux

package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// readNoEcho turns the terminal's echo off, then writes prompt to w, then
// reads a line from f: nothing typed once the prompt shows is echoed.
// (term.ReadPassword alone turns echo off only when it starts to read, a
// moment after the prompt is out, and a fast typist's or a script's first
// characters would appear.) The terminal's state is restored after.
func readNoEcho(f *os.File, w io.Writer, prompt string) ([]byte, error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("read the terminal's settings: %w", err)
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, fmt.Errorf("turn the terminal's echo off: %w", err)
	}
	defer func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }()
	fmt.Fprint(w, prompt)
	return term.ReadPassword(fd)
}
