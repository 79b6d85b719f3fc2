package main

import (
	"errors"
	"net"
	"net/http"
	"net/url"

	vclient "github.com/envvault/envvault/client"
	"github.com/envvault/envvault/vault"
)

// Exit codes, documented in `envvault --help` (exitHelp) and the README.
// A script tells apart what went wrong without reading the message.
const (
	exitOK       = 0
	exitFailure  = 1 // anything else: a task that failed under --follow, a file that cannot be read, ...
	exitUsage    = 2 // unknown command or flag, a missing argument
	exitNotFound = 3 // 404: no such secret, profile or task (or a name that names none)
	exitInvalid  = 4 // 400, 413, 415, 422, or input refused before sending (a value given as an argument)
	exitConflict = 5 // 409: a name already taken
	exitAuth     = 6 // 401 (no valid token), 403 (the token's scope), or no token configured
	exitServer   = 7 // 5xx or 429 (try later), or the server cannot be reached
)

const exitHelp = `EXIT CODES
  0  success                         4  invalid input (HTTP 400, 413, 415, 422)
  1  other failure                   5  conflict (HTTP 409)
  2  usage: unknown command or flag  6  not allowed (HTTP 401, 403, no token)
  3  not found (HTTP 404)            7  server error or unreachable (HTTP 5xx, 429)`

// exitError is an error with the exit code it should end the process with.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is err with exit code 2.
func usageError(err error) error { return &exitError{code: exitUsage, err: err} }

// invalidError is err with exit code 4.
func invalidError(err error) error { return &exitError{code: exitInvalid, err: err} }

// authError is err with exit code 6.
func authError(err error) error { return &exitError{code: exitAuth, err: err} }

// notFoundError is err with exit code 3.
func notFoundError(err error) error { return &exitError{code: exitNotFound, err: err} }

// exitCode is the exit code err should end the process with: its own, that
// of an API error's status, 7 when the server could not be reached, else
// otherwise.
func exitCode(err error, otherwise int) int {
	var ee *exitError
	var ae *vclient.APIError
	var ue *url.Error // what http.Client.Do returns: the server was not reached, or cut the connection
	var oe *net.OpError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ae):
		return statusExit(ae.Status)
	case errors.As(err, &ue), errors.As(err, &oe):
		return exitServer
	}
	// The server-side commands meet the vault's errors directly.
	var ve *vault.Error
	if errors.As(err, &ve) {
		switch ve.Code {
		case vault.ENOTFOUND:
			return exitNotFound
		case vault.EINVALID:
			return exitInvalid
		case vault.ECONFLICT:
			return exitConflict
		}
	}
	return otherwise
}

// statusExit is the exit code of an API error status.
func statusExit(status int) int {
	switch {
	case status == http.StatusNotFound:
		return exitNotFound
	case status == http.StatusConflict:
		return exitConflict
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return exitAuth
	case status == http.StatusTooManyRequests || status >= 500:
		return exitServer
	case status >= 400:
		return exitInvalid
	}
	return exitFailure
}
