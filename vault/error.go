package vault

import (
	"errors"
	"fmt"
)

// Error codes. The domain decides a code, never a status: the API maps each
// code to one HTTP status in api/errors.go (statusOf), and the dashboard
// decides its pages' statuses in web.fail and web.refuseStatus.
const (
	EINVALID      = "invalid"      // a rule on the input is broken (422)
	ENOTFOUND     = "not_found"    // no such object for this user (404)
	ECONFLICT     = "conflict"     // the write collides with existing state (409)
	EUNAUTHORIZED = "unauthorized" // missing or bad credentials (401)
	EFORBIDDEN    = "forbidden"    // the credential is good but its scope does not allow this (403)
	ELIMIT        = "too_many"     // the user has as much pending as allowed: retry later (429)
	EUNAVAILABLE  = "unavailable"  // the store cannot be reached now: nothing was done, retry later (503)
	EINTERNAL     = "internal"     // anything unexpected (500)
)

// Error is the one error type of the domain. Message is safe to show to the
// client: it never contains a secret value or key material.
type Error struct {
	Code    string
	Field   string // the input field the error concerns, if any
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error about one field. The message names the
// field and the rule: "name: must match ^[A-Z_][A-Z0-9_]*$".
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it is or wraps an *Error, and
// EINTERNAL otherwise (and "" for nil).
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err if it is an *Error,
// and "internal error" otherwise.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorField returns the field err concerns, if it is an *Error naming one.
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
