package jsonfile

import (
	"strings"
	"testing"
)

// The expected strings are what Python 3 prints for repr(x) and
// json.dumps(x, indent=2, sort_keys=True).
var tenth = 0.1 // a variable, so that 0.1 + 0.2 is computed in float64

func TestFloatRepr(t *testing.T) {
	for _, c := range []struct {
		f    float64
		want string
	}{
		{0, "0.0"}, {1, "1.0"}, {0.05, "0.05"}, {1e-5, "1e-05"}, {0.0001, "0.0001"}, {1e16, "1e+16"},
		{123456789012345.0, "123456789012345.0"}, {1.5e20, "1.5e+20"}, {-2.5, "-2.5"}, {tenth + 0.2, "0.30000000000000004"},
		{1e100, "1e+100"}, {3.0e-7, "3e-07"},
	} {
		if got := FloatRepr(c.f); got != c.want {
			t.Errorf("FloatRepr(%v) = %s, want %s", c.f, got, c.want)
		}
	}
}

func TestEncode(t *testing.T) {
	v, err := Decode([]byte(`{"z": [1, "é", {"b": null, "a": 0.0}], "a": {}, "m": [], "t": true}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"a\": {},\n  \"m\": [],\n  \"t\": true,\n  \"z\": [\n    1,\n    \"\\u00e9\",\n    {\n      \"a\": 0.0,\n      \"b\": null\n    }\n  ]\n}"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if o := v.(*Object); strings.Join(o.Keys(), ",") != "z,a,m,t" {
		t.Errorf("key order %v", o.Keys())
	}
	if _, err := Decode([]byte(`{"a": 1, "a": 2}`)); err == nil {
		t.Error("duplicate key accepted")
	}
	if !Equal(v, v.(*Object).Clone()) || Equal(v, NewObject()) {
		t.Error("Equal")
	}
}
