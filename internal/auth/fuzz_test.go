package auth

import (
	"testing"
)

// FuzzKeysFile feeds arbitrary bytes to the key-file parser as YAML and as
// JSON. It must never panic, and whatever it accepts must be usable: named,
// hashed, with no negative limits.
func FuzzKeysFile(f *testing.F) {
	f.Add("k.yaml", []byte("keys:\n  - name: a\n    key: sk-aaaaaaaa\n    models: [m1]\n    requests_per_minute: 60\n"))
	f.Add("k.json", []byte(`{"keys":[{"name":"b","sha256":"`+"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"+`","tokens_per_minute":10}]}`))
	f.Add("k.yaml", []byte("keys: &a [*a]\n"))
	f.Add("k.yaml", []byte("a: &a [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nkeys: []\n"))
	f.Add("k.json", []byte(`{"keys":[{"name":"a","key":"sk-aaaaaaaa","models":[""]}]}`))
	f.Add("k.yaml", []byte("keys:\n  - {name: x, key: sk-xxxxxxxx, requests_per_minute: 99999999999999999999}\n"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		keys, err := ParseKeysFile(name, data, 1, 2)
		if err != nil {
			return
		}
		for _, k := range keys {
			if k.Name == "" || k.Namespace == "" || k.RPM < 0 || k.TPM < 0 {
				t.Fatalf("accepted a bad key: %+v", k)
			}
			for _, m := range k.Models {
				if m == "" {
					t.Fatalf("accepted an empty model: %+v", k)
				}
			}
		}
		_ = checkDuplicates(keys)
	})
}
