package balance

import (
	"fmt"
	"testing"
)

type fake struct {
	id          string
	outstanding int64
	waiting     int64
	kv, lat     float64
}

func (f *fake) ID() string         { return f.id }
func (f *fake) Outstanding() int64 { return f.outstanding }
func (f *fake) Waiting() int64     { return f.waiting }
func (f *fake) KVUsage() float64   { return f.kv }
func (f *fake) Latency() float64   { return f.lat }

func replicas(n int) []*fake {
	out := make([]*fake, n)
	for i := range out {
		out[i] = &fake{id: fmt.Sprintf("http://10.0.0.%d:8001", i+1)}
	}
	return out
}

func TestPrefixIsDeterministicAcrossInstancesAndOrder(t *testing.T) {
	a, b := &Prefix[*fake]{LoadFactor: 1.25}, &Prefix[*fake]{LoadFactor: 1.25}
	rs := replicas(5)
	rev := []*fake{rs[4], rs[3], rs[2], rs[1], rs[0]}
	counts := map[string]int{}
	for k := uint64(0); k < 1000; k++ {
		key := HashKey([]byte(fmt.Sprint("prompt ", k)))
		x, y := rs[a.Pick(rs, key)], rev[b.Pick(rev, key)]
		if x != y {
			t.Fatalf("key %d: %s vs %s depending on instance/order", k, x.id, y.id)
		}
		counts[x.id]++
	}
	for id, c := range counts {
		if c < 120 || c > 280 {
			t.Errorf("%s owns %d of 1000 keys; want about 200", id, c)
		}
	}
}

func TestPrefixMinimalDisruption(t *testing.T) {
	p := &Prefix[*fake]{}
	rs := replicas(5)
	moved := 0
	for k := uint64(0); k < 1000; k++ {
		key := HashKey([]byte(fmt.Sprint(k)))
		before := rs[p.Pick(rs, key)]
		after := rs[:4][p.Pick(rs[:4], key)]
		if before != rs[4] && before != after {
			moved++
		}
	}
	if moved != 0 {
		t.Fatalf("removing one replica moved %d keys owned by the others", moved)
	}
}

func TestPrefixBoundedLoadSpillsOver(t *testing.T) {
	p := &Prefix[*fake]{LoadFactor: 1.25}
	rs := replicas(3)
	key := HashKey([]byte("hot prompt"))
	owner := rs[p.Pick(rs, key)]
	owner.outstanding = 10 // far above 1.25 * mean
	if got := rs[p.Pick(rs, key)]; got == owner {
		t.Fatal("overloaded owner still chosen")
	}
	owner.outstanding = 3 // under MinLoad: affinity holds at light load
	if got := rs[p.Pick(rs, key)]; got != owner {
		t.Fatal("owner not chosen back once its load is normal")
	}
}

func TestLeastLoadedPrefersLessLoaded(t *testing.T) {
	p := &LeastLoaded[*fake]{}
	cases := []struct {
		name  string
		a, b  fake
		wantA bool
	}{
		{"fewer outstanding", fake{outstanding: 1}, fake{outstanding: 5}, true},
		{"engine queue counts", fake{waiting: 4}, fake{outstanding: 2}, false},
		{"kv cache fuller", fake{kv: 0.9}, fake{kv: 0.1}, false},
		{"much slower", fake{lat: 0.5}, fake{lat: 0.05}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := c.a, c.b
			a.id, b.id = "a", "b"
			for i := 0; i < 50; i++ {
				got := []*fake{&a, &b}[p.Pick([]*fake{&a, &b}, 0)]
				if (got == &a) != c.wantA {
					t.Fatalf("picked %s", got.id)
				}
			}
		})
	}
	// Equal replicas share evenly (latency jitter under the floor ignored).
	a, b := &fake{id: "a", lat: 0.001}, &fake{id: "b", lat: 0.003}
	n := 0
	for i := 0; i < 1000; i++ {
		if p.Pick([]*fake{a, b}, 0) == 0 {
			n++
		}
	}
	if n < 400 || n > 600 {
		t.Fatalf("equal replicas: %d/1000 to a", n)
	}
}

func TestRoundRobin(t *testing.T) {
	p := &RoundRobin[*fake]{}
	rs := replicas(3)
	for i := 0; i < 9; i++ {
		if got := p.Pick(rs, 0); got != i%3 {
			t.Fatalf("pick %d = %d", i, got)
		}
	}
	if _, err := New[*fake]("random"); err == nil {
		t.Fatal("unknown policy accepted")
	}
}

func BenchmarkPick(b *testing.B) {
	rs := replicas(8)
	key := HashKey([]byte("system: you are helpful\x00user: hi"))
	for _, name := range []string{NameLeastLoaded, NamePrefix, NameRoundRobin} {
		p, _ := New[*fake](name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.Pick(rs, key)
			}
		})
	}
}
