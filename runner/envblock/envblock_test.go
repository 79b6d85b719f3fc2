package envblock_test

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/envvault/envvault/runner/envblock"
)

const canary = "canary-5d0c1e7a-secret"

func TestRoundTrip(t *testing.T) {
	env := map[string]string{"B": "two\nlines", "A": "a=b", "EMPTY": "", "TOKEN": canary}
	b, err := envblock.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(append(b, "after"...))
	got, err := envblock.Read(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=a=b", "B=two\nlines", "EMPTY=", "TOKEN=" + canary}
	if !slices.Equal(got, want) {
		t.Errorf("Read = %q, want %q", got, want)
	}
	if r.Len() != len("after") {
		t.Errorf("Read consumed %d bytes past the block", len("after")-r.Len())
	}
	if got, err := envblock.Read(bytes.NewReader([]byte{0, 0, 0, 0})); err != nil || len(got) != 0 {
		t.Errorf("empty block: %q, %v", got, err)
	}
}

func TestEncodeRefuses(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"empty name":      {"": canary},
		"= in name":       {"A=B": canary},
		"NUL in value":    {"TOKEN": canary + "\x00"},
		"over the limit":  {"BIG": strings.Repeat("x", envblock.MaxSize-len("BIG")-1), "TOKEN": canary},
		"one byte over":   {"BIG": strings.Repeat("x", envblock.MaxSize-len("BIG")-1)},
		"NUL in the name": {"A\x00": canary},
	} {
		_, err := envblock.Encode(env)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(err.Error(), canary) {
			t.Errorf("%s: error holds the value: %v", name, err)
		}
	}
	at := map[string]string{"BIG": strings.Repeat("x", envblock.MaxSize-len("BIG")-2)}
	if _, err := envblock.Encode(at); err != nil {
		t.Errorf("exactly MaxSize: %v", err)
	}
}

func TestReadRefuses(t *testing.T) {
	block := func(size uint32, body string) []byte {
		b := binary.BigEndian.AppendUint32(nil, size)
		return append(b, body...)
	}
	for name, tc := range map[string]struct {
		in   []byte
		says string
	}{
		"no length":          {[]byte{0, 1}, "length"},
		"over MaxSize":       {block(envblock.MaxSize+1, ""), "more than"},
		"short":              {block(10, "A="+canary[:3]), "ended after 5 of its 10 bytes"},
		"no final NUL":       {block(uint32(len("A="+canary)), "A="+canary), "NUL"},
		"entry without name": {block(uint32(len("="+canary+"\x00")), "="+canary+"\x00"), "entry 0"},
		"entry without =":    {block(uint32(len("A=1\x00"+canary+"\x00")), "A=1\x00"+canary+"\x00"), "entry 1"},
	} {
		_, err := envblock.Read(bytes.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.says) || strings.Contains(err.Error(), canary) {
			t.Errorf("%s: %v, want an error saying %q and no value", name, err, tc.says)
		}
	}
}
