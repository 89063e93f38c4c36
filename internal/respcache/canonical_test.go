package respcache

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestCanonicalEquivalence(t *testing.T) {
	cases := []struct {
		a, b string
		same bool
	}{
		{`1`, `1.0`, true},
		{`1`, `1e0`, true},
		{`1`, `10e-1`, true},
		{`1`, `0.1e1`, true},
		{`100`, `1e2`, true},
		{`100`, `1E+2`, true},
		{`0`, `-0`, true},
		{`0`, `0.000e99`, true},
		{`0.5`, `5e-1`, true},
		{`-2.50`, `-25e-1`, true},
		{`1e400`, `10e399`, true},
		{`1`, `1.0000000000000000000001`, false}, // equal as float64, not as decimals: a (safe) miss
		{`0.1`, `0.2`, false},
		{`1`, `-1`, false},
		{`1`, `"1"`, false},
		{`{"a":1,"b":[true,null]}`, ` { "b" : [ true , null ] , "a" : 1.0 } `, true},
		{`{"a":1}`, `{"a":2,"a":1}`, true}, // last duplicate wins, as encoding/json
		{`{"a":{"y":1,"x":2}}`, `{"a":{"x":2,"y":1}}`, true},
		{`[1,2]`, `[2,1]`, false},
		{`"\u00e9"`, `"é"`, true},
		{`"a\/b"`, `"a/b"`, true},
		{`{"a":null}`, `{}`, false},
	}
	for _, c := range cases {
		ca, err := Canonical([]byte(c.a))
		if err != nil {
			t.Fatalf("Canonical(%s): %v", c.a, err)
		}
		cb, err := Canonical([]byte(c.b))
		if err != nil {
			t.Fatalf("Canonical(%s): %v", c.b, err)
		}
		if (string(ca) == string(cb)) != c.same {
			t.Errorf("Canonical(%s) = %s, Canonical(%s) = %s; same = %v, want %v", c.a, ca, c.b, cb, string(ca) == string(cb), c.same)
		}
	}
}

func TestCanonicalRejects(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a":1} x`, `[1,]`, `01`, `1.`, `.5`, `NaN`, `{"a" 1}`, `"\x"`} {
		if out, err := Canonical([]byte(in)); err == nil {
			t.Errorf("Canonical(%q) = %q; want an error", in, out)
		}
	}
}

func TestNormNumber(t *testing.T) {
	cases := map[string]string{
		"0": "0", "-0.0": "0", "1": "1", "1.0": "1", "1e0": "1", "12.5": "0.125e2", "-3": "-3",
		"1e20": "100000000000000000000", "1e21": "0.1e22", "0.001": "0.1e-2", "123456789012345678901234": "0.123456789012345678901234e24",
	}
	for in, want := range cases {
		if got := normNumber(in); got != want {
			t.Errorf("normNumber(%s) = %s; want %s", in, got, want)
		}
	}
}

// FuzzCanonical checks, for any input Canonical accepts: the output is
// valid JSON, canonicalising it again changes nothing, and it decodes to the
// same value as the input (through encoding/json, as the model service
// decodes requests).
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`1`, `1.0`, `-0`, `1e400`, `{"b":1,"a":[1,2.50,"x"]}`, `{"a":1,"a":2}`, `"\ud800"`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.0,"seed":42,"stop":["\n"]}`, `[[[]]]`, `null`, `1E-7`, `"\u0000<>&"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonical(in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("Canonical(%q) = %q: not valid JSON", in, out)
		}
		again, err := Canonical(out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, err)
		}
		var vi, vo any
		ei := json.Unmarshal(in, &vi)
		eo := json.Unmarshal(out, &vo)
		if (ei == nil) != (eo == nil) {
			t.Fatalf("encoding/json disagrees: input err %v, output err %v (%q -> %q)", ei, eo, in, out)
		}
		if ei == nil && !reflect.DeepEqual(vi, vo) {
			t.Fatalf("value changed: %q (%v) -> %q (%v)", in, vi, out, vo)
		}
	})
}
