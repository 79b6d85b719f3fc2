package mask

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html"
	"net/url"
	"strings"
	"testing"
)

// special is a value with a character of every kind some form escapes.
const special = `a"b'c\"d<e>&f` + "\tg é\u2028h\u0085😀"

// TestMasksEveryForm masks each listed form of a value with special
// characters, written out by the standard library where it has the
// encoding and by hand where it does not, between two brackets.
func TestMasksEveryForm(t *testing.T) {
	goJSON, err := json.Marshal(special)
	if err != nil {
		t.Fatal(err)
	}
	uri := strings.ReplaceAll(url.QueryEscape(special), "+", "%20")
	forms := map[string]string{
		"as is":                     special,
		"hex":                       hex.EncodeToString([]byte(special)),
		"HEX":                       strings.ToUpper(hex.EncodeToString([]byte(special))),
		"uri":                       uri,
		"uri-component":             strings.ReplaceAll(uri, "%27", "'"),
		"form":                      url.QueryEscape(special),
		"json":                      `a\"b'c\\\"d<e>&f\tg é` + "\u2028h\u0085😀",
		"json-newtonsoft":           `a\"b'c\\\"d<e>&f\tg é\u2028h\u0085😀`,
		"json-go":                   string(goJSON[1 : len(goJSON)-1]),
		"json-ascii":                `a\"b'c\\\"d<e>&f\tg \u00e9\u2028h\u0085\ud83d\ude00`,
		"xml":                       `a&quot;b&apos;c\&quot;d&lt;e&gt;&amp;f` + "\tg é\u2028h\u0085😀",
		"html":                      html.EscapeString(special),
		"command-line":              `a\"b'c\\"d<e>&f` + "\tg é\u2028h\u0085😀",
		"expression":                `a"b''c\"d<e>&f` + "\tg é\u2028h\u0085😀",
		"backslash":                 `a"b'c"d<e>&f` + "\tg é\u2028h\u0085😀",
		"powershell-pre-ampersand":  `a"b'c\"d<e>&`,
		"powershell-post-ampersand": "f\tg é\u2028h\u0085😀",
	}
	if !strings.Contains(forms["json-go"], `\u003c`) || !strings.Contains(forms["json-go"], `\u2028`) {
		t.Fatalf("encoding/json wrote %s: the test no longer proves what it means to", goJSON)
	}
	for _, e := range encoders {
		if _, ok := forms[e.name]; !ok && e.name != "trim-quotes" {
			t.Errorf("form %s is not tested", e.name)
		}
	}
	for name, form := range forms {
		if got := maskString(t, "[ "+form+" ]", special); got != "[ *** ]" {
			t.Errorf("%s form %q masked as %q", name, form, got)
		}
	}
	t.Run("trim-quotes", func(t *testing.T) {
		if got := maskString(t, "[quoted-secret]", `"quoted-secret"`); got != "[***]" {
			t.Errorf("masked as %q", got)
		}
		// Eight bytes in quotes or fewer are left: GitHub's rule.
		if got := maskString(t, "[short]", `"short"`); got != "[short]" {
			t.Errorf("masked as %q", got)
		}
	})
	t.Run("powershell section shorter than 6 left", func(t *testing.T) {
		if got := maskString(t, "[abc&] [xyz]", "abc&xyz-long-enough"); got != "[abc&] [xyz]" {
			t.Errorf("masked as %q", got)
		}
	})
}

// TestMasksBase64AtEveryOffset masks the value base64-encoded after a
// prefix of every length modulo 3 and before more bytes, in both
// alphabets: at most the digits that also encode the prefix or what
// follows (one each side, with padding and the suffix's own) stay.
func TestMasksBase64AtEveryOffset(t *testing.T) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		for _, prefix := range []string{"", "u:", "user:", "abc"} {
			for _, suffix := range []string{"", "\n", "xyz!"} {
				b64 := enc.EncodeToString([]byte(prefix + special + suffix))
				got := maskString(t, b64, special)
				before, after, ok := strings.Cut(got, Placeholder)
				// The prefix's digits, and its last byte's share of the
				// value's first digit; the same after it.
				if !ok || strings.Count(got, Placeholder) != 1 || len(before) > (len(prefix)*4+2)/3+1 || len(after) > (len(suffix)*4+2)/3+3 {
					t.Errorf("base64 %q of %q+value+%q masked as %q", b64, prefix, suffix, got)
				}
			}
		}
	}
}

func maskString(t *testing.T, s string, values ...string) string {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, values)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
