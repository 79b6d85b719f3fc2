package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/vault"
)

// Strict JSON request bodies.
//
// A request body is read whole (up to the body limit) and checked in this
// order; the first failure is the answer:
//
//	415 unsupported_media_type  Content-Type is not application/json (charset, if given, utf-8)
//	413 body_too_large          the body is longer than the limit
//	400 malformed_json          empty, not JSON, invalid UTF-8 (bytes or a lone \u surrogate
//	                            escape), data after the object, not an object, a key given twice
//	422 invalid (with field)    a key the schema does not know (also one differing only in case),
//	                            a value of another type, null where null means nothing, nesting
//	                            deeper than the schema
//
// The schema is the Go type the body decodes into: its json tags are the
// only keys accepted, exactly as spelled. string, bool, int, []T,
// map[string]T, *T (may be omitted, never null) and Nullable[T] (may be
// omitted or null) are understood. Only after the body passes is it decoded
// with encoding/json, which then has nothing left to guess.

// Nullable is a body field that may be omitted, null or a value, three
// cases PATCH tells apart.
type Nullable[T any] struct {
	Set   bool // the key was present
	Null  bool // its value was null
	Value T    // the value, when present and not null
}

// UnmarshalJSON records that the field was present and whether it was null.
func (n *Nullable[T]) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Null = true
		var zero T
		n.Value = zero
		return nil
	}
	n.Null = false
	return json.Unmarshal(b, &n.Value)
}

func (n *Nullable[T]) elemType() reflect.Type { return reflect.TypeFor[T]() }

type nullable interface{ elemType() reflect.Type }

var nullableType = reflect.TypeFor[nullable]()

// maxReportedKey bounds how much of a client's key an error message repeats.
const maxReportedKey = 64

// decodeJSON reads the request body of c into dst, a pointer to a struct,
// under the rules above. Every error it returns is an *apiError or a
// *vault.Error with code EINVALID.
func decodeJSON(c echo.Context, limit int64, dst any) error {
	req := c.Request()
	if err := checkContentType(req.Header); err != nil {
		return err
	}
	body, err := readBody(req, limit)
	if err != nil {
		return err
	}
	return unmarshalStrict(body, dst)
}

func checkContentType(h http.Header) error {
	ct := h.Values(echo.HeaderContentType)
	if len(ct) != 1 {
		return errUnsupportedMediaType
	}
	mt, params, err := mime.ParseMediaType(ct[0])
	if err != nil || mt != echo.MIMEApplicationJSON {
		return errUnsupportedMediaType
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return errUnsupportedMediaType
		}
	}
	return nil
}

// readBody reads the whole body, refusing one over limit bytes before it
// reads anything when Content-Length already says so.
func readBody(req *http.Request, limit int64) ([]byte, error) {
	if req.ContentLength > limit {
		return nil, errBodyTooLarge(limit)
	}
	if req.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return nil, errBodyTooLarge(limit)
	case err != nil:
		// A broken chunked encoding or a client gone: the client's doing.
		return nil, malformed("request body could not be read")
	case int64(len(body)) > limit:
		return nil, errBodyTooLarge(limit)
	}
	return body, nil
}

// unmarshalStrict checks body against the schema of dst and decodes it.
func unmarshalStrict(body []byte, dst any) error {
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("api: decode into %v: want a pointer to a struct", t)
	}
	if err := checkWellFormed(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	w := walker{dec: dec}
	tok, err := dec.Token()
	if err != nil {
		return malformed("request body is not valid JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return malformed("request body must be a JSON object")
	}
	if err := w.object(t.Elem(), "", ""); err != nil {
		return err
	}
	strict := json.NewDecoder(bytes.NewReader(body))
	strict.DisallowUnknownFields()
	if err := strict.Decode(dst); err != nil {
		// The walk accepted what encoding/json refuses: a schema type
		// the walker does not model. That is our bug, not the client's.
		return fmt.Errorf("api: decode checked body into %v: %w", t, err)
	}
	return nil
}

// checkWellFormed refuses a body that is empty, not valid UTF-8, not one
// JSON value, or holds a \u escape of a lone UTF-16 surrogate (which
// encoding/json would silently turn into U+FFFD).
func checkWellFormed(body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return malformed("request body is empty")
	}
	if !utf8.Valid(body) {
		return malformed("request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			// The offset helps; the syntax error's own text quotes the
			// client's input, which may be a secret value.
			return malformed(fmt.Sprintf("request body is not valid JSON (syntax error at byte %d)", syn.Offset))
		}
		return malformed("request body is not valid JSON")
	}
	if rest := body[dec.InputOffset():]; len(bytes.TrimSpace(rest)) > 0 {
		return malformed(fmt.Sprintf("request body has data after the JSON value (at byte %d)", dec.InputOffset()))
	}
	if off := loneSurrogate(body); off >= 0 {
		return malformed(fmt.Sprintf("request body has an escaped lone UTF-16 surrogate, which is not valid Unicode (at byte %d)", off))
	}
	return nil
}

// loneSurrogate returns the offset of the first \u escape in a string of
// the well-formed JSON text b that is a UTF-16 surrogate not part of a
// high-low pair, or -1.
func loneSurrogate(b []byte) int {
	inString := false
	for i := 0; i < len(b); i++ {
		switch {
		case !inString:
			inString = b[i] == '"'
		case b[i] == '"':
			inString = false
		case b[i] == '\\':
			if b[i+1] != 'u' {
				i++ // skip the escaped character
				continue
			}
			r := hex4(b[i+2 : i+6])
			switch {
			case r >= 0xDC00 && r <= 0xDFFF:
				return i
			case r >= 0xD800 && r <= 0xDBFF:
				if i+12 > len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
					return i
				}
				if lo := hex4(b[i+8 : i+12]); lo < 0xDC00 || lo > 0xDFFF {
					return i
				}
				i += 11
			default:
				i += 5
			}
		}
	}
	return -1
}

func hex4(b []byte) rune {
	n, err := strconv.ParseUint(string(b), 16, 16)
	if err != nil {
		return -1 // cannot happen in well-formed JSON
	}
	return rune(n)
}

// walker checks the tokens of a well-formed body against a Go type.
type walker struct {
	dec *json.Decoder
}

// token returns the next token. An error cannot happen once the body
// passed checkWellFormed; the walk stops at the first error it finds, so
// the rest of a refused value is never read.
func (w *walker) token() (json.Token, error) {
	tok, err := w.dec.Token()
	if err != nil {
		return nil, malformed("request body is not valid JSON")
	}
	return tok, nil
}

// object checks the members of an object whose '{' was read, for struct
// type t. path is where the object is ("" at the top); field is the
// top-level field it belongs to.
func (w *walker) object(t reflect.Type, path, field string) error {
	fields := jsonFields(t)
	seen := make(map[string]bool, len(fields))
	for w.dec.More() {
		tok, err := w.token()
		if err != nil {
			return err
		}
		key := tok.(string) // object keys are strings in well-formed JSON
		keyPath := joinPath(path, key)
		top := field
		if top == "" {
			top = reportKey(key)
		}
		if seen[key] {
			return &apiError{Status: http.StatusBadRequest, Code: codeMalformedJSON, Field: top,
				Message: fmt.Sprintf("%s: given twice", keyPath)}
		}
		seen[key] = true
		ft, ok := fields[key]
		if !ok {
			msg := keyPath + ": unknown field"
			for known := range fields {
				if strings.EqualFold(known, key) {
					msg += fmt.Sprintf(" (field names are case-sensitive: did you mean %q?)", joinPath(path, known))
					break
				}
			}
			return &vault.Error{Code: vault.EINVALID, Field: top, Message: msg}
		}
		if err := w.value(ft, keyPath, top); err != nil {
			return err
		}
	}
	_, err := w.token() // '}'
	return err
}

// value checks the next value against t.
func (w *walker) value(t reflect.Type, path, field string) error {
	tok, err := w.token()
	if err != nil {
		return err
	}
	want := describe(t)
	if reflect.PointerTo(t).Implements(nullableType) {
		if tok == nil {
			return nil
		}
		t = reflect.New(t).Interface().(nullable).elemType()
	} else if t.Kind() == reflect.Pointer {
		t = t.Elem() // *T marks an optional field; null is still refused
	}
	if tok == nil {
		return &vault.Error{Code: vault.EINVALID, Field: field, Message: path + ": cannot be null"}
	}
	wrong := func() error {
		return &vault.Error{Code: vault.EINVALID, Field: field, Message: path + ": must be " + want}
	}
	switch t.Kind() {
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return wrong()
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return wrong()
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, ok := tok.(json.Number)
		if !ok {
			return wrong()
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			return wrong()
		}
	case reflect.Slice:
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return wrong()
		}
		for i := 0; w.dec.More(); i++ {
			if err := w.value(t.Elem(), fmt.Sprintf("%s[%d]", path, i), field); err != nil {
				return err
			}
		}
		_, err := w.token() // ']'
		return err
	case reflect.Map:
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return wrong()
		}
		seen := map[string]bool{}
		for w.dec.More() {
			tok, err := w.token()
			if err != nil {
				return err
			}
			key := tok.(string)
			if seen[key] {
				return &apiError{Status: http.StatusBadRequest, Code: codeMalformedJSON, Field: field,
					Message: fmt.Sprintf("%s: given twice", joinPath(path, key))}
			}
			seen[key] = true
			if err := w.value(t.Elem(), joinPath(path, key), field); err != nil {
				return err
			}
		}
		_, err := w.token() // '}'
		return err
	case reflect.Struct:
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			return wrong()
		}
		return w.object(t, path, field)
	default:
		return fmt.Errorf("api: request schema type %v is not supported", t)
	}
	return nil
}

// describe names the JSON type a Go schema type stands for, in messages.
func describe(t reflect.Type) string {
	if reflect.PointerTo(t).Implements(nullableType) {
		return describe(reflect.New(t).Interface().(nullable).elemType()) + " or null"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return describe(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Slice:
		return "an array of " + plural(describe(t.Elem()))
	case reflect.Map:
		return "an object whose values are " + plural(describe(t.Elem()))
	case reflect.Struct:
		return "an object"
	}
	return t.String()
}

func plural(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "a "), "an ")
	// "array of …", "object whose …" pluralise their first word; a bare
	// "object" (an array of structs) just takes the s.
	if i := strings.IndexByte(s, ' '); i > 0 && (strings.HasPrefix(s, "array") || strings.HasPrefix(s, "object")) {
		return s[:i] + "s" + s[i:]
	}
	return s + "s"
}

// jsonFields maps each json key of struct type t to its field type.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func joinPath(path, key string) string {
	key = reportKey(key)
	if path == "" {
		return key
	}
	return path + "." + key
}

// reportKey shortens a client's key for messages.
func reportKey(key string) string { return truncate(key, maxReportedKey) }

func malformed(msg string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: codeMalformedJSON, Message: msg}
}
