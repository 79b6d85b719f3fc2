package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/envvault/envvault/vault"
)

// refusal is what a refused body must answer.
type refusal struct {
	status int
	code   string
	field  string // "" when no field is expected
	msg    string // a substring of the message
}

func classify(t *testing.T, err error) refusal {
	t.Helper()
	var ae *apiError
	var ve *vault.Error
	switch {
	case errors.As(err, &ae):
		return refusal{ae.Status, ae.Code, ae.Field, ae.Message}
	case errors.As(err, &ve):
		return refusal{statusOf[ve.Code], ve.Code, ve.Field, ve.Message}
	}
	t.Fatalf("error %v (%T) is neither *apiError nor *vault.Error", err, err)
	return refusal{}
}

func TestUnmarshalStrictRefuses(t *testing.T) {
	bad := func(msg string) refusal { return refusal{400, codeMalformedJSON, "", msg} }
	inv := func(field, msg string) refusal { return refusal{422, vault.EINVALID, field, msg} }
	dup := func(field, msg string) refusal { return refusal{400, codeMalformedJSON, field, msg} }
	tests := []struct {
		name string
		body string
		dst  func() any
		want refusal
	}{
		{"empty", ``, secretCreate, bad("empty")},
		{"only spaces", " \n\t ", secretCreate, bad("empty")},
		{"not json", `name=X`, secretCreate, bad("not valid JSON")},
		{"truncated", `{"name":"X"`, secretCreate, bad("not valid JSON")},
		{"trailing comma", `{"name":"X",}`, secretCreate, bad("not valid JSON")},
		{"single quotes", `{'name':'X'}`, secretCreate, bad("not valid JSON")},
		{"comment", `{"name":"X" /* hi */}`, secretCreate, bad("not valid JSON")},
		{"NaN", `{"version":NaN}`, secretCreate, bad("not valid JSON")},
		{"trailing object", `{"name":"X"}{"name":"Y"}`, secretCreate, bad("data after")},
		{"trailing garbage", `{"name":"X"} x`, secretCreate, bad("data after")},
		{"trailing null", `{"name":"X"} null`, secretCreate, bad("data after")},
		{"array body", `[{"name":"X"}]`, secretCreate, bad("must be a JSON object")},
		{"string body", `"X"`, secretCreate, bad("must be a JSON object")},
		{"null body", `null`, secretCreate, bad("must be a JSON object")},
		{"number body", `12`, secretCreate, bad("must be a JSON object")},
		{"invalid utf8 in value", "{\"name\":\"X\",\"value\":\"a\xffb\"}", secretCreate, bad("UTF-8")},
		{"invalid utf8 in key", "{\"na\xc3me\":\"X\"}", secretCreate, bad("UTF-8")},
		{"overlong utf8", "{\"name\":\"\xc0\xafX\"}", secretCreate, bad("UTF-8")},
		{"utf16 surrogate bytes", "{\"name\":\"\xed\xa0\x80\"}", secretCreate, bad("UTF-8")},
		{"lone high surrogate escape", `{"value":"\ud800"}`, secretCreate, bad("surrogate")},
		{"lone low surrogate escape", `{"value":"\udc00x"}`, secretCreate, bad("surrogate")},
		{"high then non-low escape", `{"value":"\ud800\u0041"}`, secretCreate, bad("surrogate")},
		{"high at end of string", `{"value":"ab\uD83D"}`, secretCreate, bad("surrogate")},
		{"surrogate in key", `{"\udfff":"x"}`, secretCreate, bad("surrogate")},
		{"duplicate key", `{"name":"X","name":"Y"}`, secretCreate, dup("name", "name: given twice")},
		{"duplicate key by escape", `{"name":"X","n\u0061me":"Y"}`, secretCreate, dup("name", "given twice")},
		{"duplicate null key", `{"description":null,"description":"d"}`, secretPatch, dup("description", "given twice")},
		{"duplicate env key", `{"name":"p","image":"i","env":{"A":"1","A":"2"}}`, profileCreate, dup("env", "env.A: given twice")},
		{"upper-case key", `{"NAME":"X","value":"v"}`, secretCreate, inv("NAME", `did you mean "name"`)},
		{"mixed-case key beside real one", `{"name":"X","Name":"Y"}`, secretCreate, inv("Name", "case-sensitive")},
		{"case of profile_ids", `{"Profile_IDs":[]}`, secretPatch, inv("Profile_IDs", `did you mean "profile_ids"`)},
		{"unknown key", `{"name":"X","value":"v","owner":"usr_x"}`, secretCreate, inv("owner", "owner: unknown field")},
		{"read-only key id", `{"id":"sec_x","name":"X","value":"v"}`, secretCreate, inv("id", "unknown field")},
		{"read-only key version", `{"version":3}`, secretPatch, inv("version", "unknown field")},
		{"long unknown key is cut", `{"` + strings.Repeat("k", 500) + `":1}`, secretCreate, inv(strings.Repeat("k", 64)+"…", "unknown field")},
		{"name number", `{"name":1,"value":"v"}`, secretCreate, inv("name", "name: must be a string")},
		{"name bool", `{"name":true}`, secretCreate, inv("name", "must be a string")},
		{"name object", `{"name":{"x":"y"}}`, secretCreate, inv("name", "must be a string")},
		{"name array", `{"name":["X"]}`, secretCreate, inv("name", "must be a string")},
		{"name null on create", `{"name":null,"value":"v"}`, secretCreate, inv("name", "name: cannot be null")},
		{"scope null on create", `{"name":"X","value":"v","scope":null}`, secretCreate, inv("scope", "scope: cannot be null")},
		{"profile_ids null on create", `{"name":"X","value":"v","profile_ids":null}`, secretCreate, inv("profile_ids", "cannot be null")},
		{"value null on patch", `{"value":null}`, secretPatch, inv("value", "value: cannot be null")},
		{"name null on patch", `{"name":null}`, secretPatch, inv("name", "name: cannot be null")},
		{"scope null on patch", `{"scope":null}`, secretPatch, inv("scope", "scope: cannot be null")},
		{"profile_ids string", `{"profile_ids":"prof_x"}`, secretPatch, inv("profile_ids", "must be an array of strings or null")},
		{"profile_ids of numbers", `{"profile_ids":[1]}`, secretPatch, inv("profile_ids", "profile_ids[0]: must be a string")},
		{"profile_ids of null", `{"profile_ids":["prof_a",null]}`, secretPatch, inv("profile_ids", "profile_ids[1]: cannot be null")},
		{"profile_ids nested", `{"profile_ids":[["prof_a"]]}`, secretPatch, inv("profile_ids", "profile_ids[0]: must be a string")},
		{"description number", `{"description":5}`, secretPatch, inv("description", "must be a string or null")},
		{"command string", `{"name":"p","image":"i","command":"ls -l"}`, profileCreate, inv("command", "command: must be an array of strings")},
		{"command nested", `{"name":"p","image":"i","command":[["ls"]]}`, profileCreate, inv("command", "command[0]: must be a string")},
		{"command of objects", `{"command":[{"a":"b"}]}`, profilePatch, inv("command", "command[0]: must be a string")},
		{"setup_commands number", `{"setup_commands":[1,2]}`, profilePatch, inv("setup_commands", "setup_commands[0]")},
		{"env array", `{"env":["A=1"]}`, profilePatch, inv("env", "env: must be an object whose values are strings or null")},
		{"env value number", `{"name":"p","image":"i","env":{"A":1}}`, profileCreate, inv("env", "env.A: must be a string")},
		{"env value null", `{"env":{"A":null}}`, profilePatch, inv("env", "env.A: cannot be null")},
		{"env nested", `{"env":{"A":{"B":"c"}}}`, profilePatch, inv("env", "env.A: must be a string")},
		{"env value array", `{"env":{"A":["x"]}}`, profilePatch, inv("env", "env.A: must be a string")},
		{"image null on patch", `{"image":null}`, profilePatch, inv("image", "image: cannot be null")},
		{"deep nesting", `{"command":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`, profilePatch, inv("command", "command[0]: must be a string")},
		{"too deep for encoding/json", `{"command":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, profilePatch, bad("not valid JSON")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := tt.dst()
			before := reflect.ValueOf(dst).Elem().Interface()
			err := unmarshalStrict([]byte(tt.body), dst)
			if err == nil {
				t.Fatalf("accepted %q", tt.body)
			}
			got := classify(t, err)
			if got.status != tt.want.status || got.code != tt.want.code || got.field != tt.want.field || !strings.Contains(got.msg, tt.want.msg) {
				t.Errorf("got %d %s field %q %q, want %d %s field %q message containing %q",
					got.status, got.code, got.field, got.msg, tt.want.status, tt.want.code, tt.want.field, tt.want.msg)
			}
			if after := reflect.ValueOf(dst).Elem().Interface(); !reflect.DeepEqual(before, after) {
				t.Errorf("refused body changed the destination: %+v", after)
			}
		})
	}
}

func secretCreate() any  { return new(createSecretRequest) }
func secretPatch() any   { return new(updateSecretRequest) }
func profileCreate() any { return new(createProfileRequest) }
func profilePatch() any  { return new(updateProfileRequest) }

func TestUnmarshalStrictAccepts(t *testing.T) {
	str := func(s string) *string { return &s }
	tests := []struct {
		name string
		body string
		dst  any
		want any
	}{
		{"create secret", `{"name":"A_B","value":"v","scope":"agents","profile_ids":["p1","p2"],"description":"d"}`,
			new(createSecretRequest), &createSecretRequest{Name: "A_B", Value: "v", Scope: str("agents"), ProfileIDs: []string{"p1", "p2"}, Description: "d"}},
		{"whitespace around", " \n{ \"name\" : \"X\" }\n\t", new(createSecretRequest), &createSecretRequest{Name: "X"}},
		{"empty object", `{}`, new(createSecretRequest), &createSecretRequest{}},
		{"escapes and surrogate pair", `{"value":"\u00e9\ud83d\ude00\n\"\\\/"}`, new(createSecretRequest), &createSecretRequest{Value: "é😀\n\"\\/"}},
		{"raw multibyte", `{"value":"é😀"}`, new(createSecretRequest), &createSecretRequest{Value: "é😀"}},
		{"backslash before quote in key", `{"description":"a\\","name":"X"}`, new(createSecretRequest), &createSecretRequest{Description: `a\`, Name: "X"}},
		{"patch omitted", `{}`, new(updateSecretRequest), &updateSecretRequest{}},
		{"patch nulls", `{"description":null,"profile_ids":null}`, new(updateSecretRequest),
			&updateSecretRequest{Description: Nullable[string]{Set: true, Null: true}, ProfileIDs: Nullable[[]string]{Set: true, Null: true}}},
		{"patch empties", `{"description":"","profile_ids":[],"name":"","value":""}`, new(updateSecretRequest),
			&updateSecretRequest{Name: str(""), Value: str(""), Description: Nullable[string]{Set: true}, ProfileIDs: Nullable[[]string]{Set: true, Value: []string{}}}},
		{"patch values", `{"scope":"all","description":"x"}`, new(updateSecretRequest),
			&updateSecretRequest{Scope: str("all"), Description: Nullable[string]{Set: true, Value: "x"}}},
		{"profile create", `{"name":"p","image":"i","command":["a","b"],"setup_commands":[],"env":{"A":"1","B":""}}`, new(createProfileRequest),
			&createProfileRequest{Name: "p", Image: "i", Command: []string{"a", "b"}, SetupCommands: []string{}, Env: map[string]string{"A": "1", "B": ""}}},
		{"profile patch clears", `{"command":null,"setup_commands":[],"env":{}}`, new(updateProfileRequest),
			&updateProfileRequest{Command: Nullable[[]string]{Set: true, Null: true}, SetupCommands: Nullable[[]string]{Set: true, Value: []string{}},
				Env: Nullable[map[string]string]{Set: true, Value: map[string]string{}}}},
		{"env key case kept", `{"env":{"a":"1","A":"2"}}`, new(updateProfileRequest),
			&updateProfileRequest{Env: Nullable[map[string]string]{Set: true, Value: map[string]string{"a": "1", "A": "2"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := unmarshalStrict([]byte(tt.body), tt.dst); err != nil {
				t.Fatalf("refused %q: %v", tt.body, err)
			}
			if !reflect.DeepEqual(tt.dst, tt.want) {
				t.Errorf("got %+v, want %+v", tt.dst, tt.want)
			}
		})
	}
}

// TestRequestTypesAreModelled walks every request type with a body that
// fills each field, so a type the walker cannot model fails here, not as a
// 500 in production.
func TestRequestTypesAreModelled(t *testing.T) {
	for _, dst := range []any{new(createSecretRequest), new(updateSecretRequest), new(createProfileRequest), new(updateProfileRequest)} {
		for name, ft := range jsonFields(reflect.TypeOf(dst).Elem()) {
			d := describe(ft)
			if strings.Contains(d, ".") || strings.Contains(d, "[") {
				t.Errorf("%T.%s: type %v is not modelled (%s)", dst, name, ft, d)
			}
		}
	}
}

func TestLoneSurrogate(t *testing.T) {
	tests := map[string]int{
		`{"a":"x"}`:                 -1,
		`{"a":"\ud83d\ude00"}`:      -1,
		`{"a":"\\ud800"}`:           -1, // an escaped backslash, then text
		`{"a":"\\\ud800"}`:          8,
		`{"a":"\ud800"}`:            6,
		`{"a":"\uDFFF"}`:            6,
		`{"a":"\ud83d\ud83d"}`:      6,
		`["\u0041","\ud800\udc00"]`: -1,
		`"\"\ud800"`:                3,
	}
	for in, want := range tests {
		if got := loneSurrogate([]byte(in)); got != want {
			t.Errorf("loneSurrogate(%s) = %d, want %d", in, got, want)
		}
	}
}

func TestNullableUnmarshal(t *testing.T) {
	var n Nullable[[]string]
	if err := n.UnmarshalJSON([]byte(`["a"]`)); err != nil || !n.Set || n.Null || len(n.Value) != 1 {
		t.Fatalf("value: %+v %v", n, err)
	}
	if err := n.UnmarshalJSON([]byte(`null`)); err != nil || !n.Set || !n.Null || n.Value != nil {
		t.Fatalf("null: %+v %v", n, err)
	}
}

func TestDecodeJSONRequest(t *testing.T) {
	const limit = 64
	body := `{"name":"X","value":"v"}`
	tests := []struct {
		name        string
		contentType []string
		body        string
		chunked     bool // no Content-Length: the limit is found while reading
		want        refusal
	}{
		{"json", []string{"application/json"}, body, false, refusal{}},
		{"json charset", []string{"application/json; charset=UTF-8"}, body, false, refusal{}},
		{"json upper case", []string{"Application/JSON"}, body, false, refusal{}},
		{"no content type", nil, body, false, refusal{415, codeUnsupportedMediaType, "", "application/json"}},
		{"text", []string{"text/plain"}, body, false, refusal{415, codeUnsupportedMediaType, "", ""}},
		{"form", []string{"application/x-www-form-urlencoded"}, body, false, refusal{415, codeUnsupportedMediaType, "", ""}},
		{"json suffix", []string{"application/problem+json"}, body, false, refusal{415, codeUnsupportedMediaType, "", ""}},
		{"latin1", []string{"application/json; charset=latin1"}, body, false, refusal{415, codeUnsupportedMediaType, "", ""}},
		{"other param", []string{"application/json; foo=bar"}, body, false, refusal{415, codeUnsupportedMediaType, "", ""}},
		{"bad media type", []string{"application/json; ;"}, body, false, refusal{415, codeUnsupportedMediaType, "", ""}},
		{"two content types", []string{"application/json", "application/json"}, body, false, refusal{415, codeUnsupportedMediaType, "", ""}},
		{"at limit", []string{"application/json"}, `{"name":"` + strings.Repeat("X", limit-11) + `"}`, false, refusal{}},
		{"over limit", []string{"application/json"}, `{"name":"` + strings.Repeat("X", limit-10) + `"}`, false, refusal{413, codeBodyTooLarge, "", "64 bytes"}},
		{"over limit chunked", []string{"application/json"}, `{"name":"` + strings.Repeat("X", limit) + `"}`, true, refusal{413, codeBodyTooLarge, "", ""}},
		{"415 before 413", []string{"text/plain"}, strings.Repeat("X", 2*limit), false, refusal{415, codeUnsupportedMediaType, "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/v1/secrets", strings.NewReader(tt.body))
			if tt.chunked {
				req.ContentLength = -1
			}
			for _, ct := range tt.contentType {
				req.Header.Add(echo.HeaderContentType, ct)
			}
			c := echo.New().NewContext(req, httptest.NewRecorder())
			var dst createSecretRequest
			err := decodeJSON(c, limit, &dst)
			if tt.want.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			got := classify(t, err)
			if got.status != tt.want.status || got.code != tt.want.code || !strings.Contains(got.msg, tt.want.msg) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzUnmarshalStrict checks that no body panics the decoder or gets an
// error that is not the client's (which would answer 500), and that an
// accepted body is one encoding/json reads the same way.
func FuzzUnmarshalStrict(f *testing.F) {
	for _, s := range []string{
		`{"name":"A","value":"v","scope":"agents","profile_ids":["p"],"description":"d"}`,
		`{"name":"p","image":"i","command":["a"],"setup_commands":[],"env":{"A":"1"}}`,
		`{"description":null,"profile_ids":null,"command":null,"env":null}`,
		`{"name":"X","name":"Y"}`, `{"NAME":"x"}`, `{"value":"\ud800"}`, `{} {}`, "{\"a\":\"\xff\"}", `[`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, newDst := range []func() any{secretCreate, secretPatch, profileCreate, profilePatch} {
			dst := newDst()
			err := unmarshalStrict(body, dst)
			if err != nil {
				var ae *apiError
				var ve *vault.Error
				if !errors.As(err, &ae) && !errors.As(err, &ve) {
					t.Fatalf("%T: %q: unexpected error %v", dst, body, err)
				}
				continue
			}
			plain := newDst()
			if err := json.Unmarshal(body, plain); err != nil {
				t.Fatalf("%T: accepted %q, which encoding/json refuses: %v", dst, body, err)
			}
			if !reflect.DeepEqual(dst, plain) {
				t.Fatalf("%T: %q: got %+v, encoding/json %+v", dst, body, dst, plain)
			}
		}
	})
}
