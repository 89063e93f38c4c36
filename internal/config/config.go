// Package config loads a service's typed configuration from, in order of
// precedence, command-line flags, environment variables, a .env file and the
// defaults in struct tags. Loading is strict: an unknown flag, an unknown key
// in .env or a value that does not parse is an error that names the key.
//
// A config is a plain struct whose fields carry tags:
//
//	type Config struct {
//		Port  int           `flag:"port" env:"API_PORT" default:"8000" help:"HTTP port"`
//		Int8  bool          `flag:"int8" env:"USE_INT8" help:"quantize weights to Q8_0 at load"`
//		Drain time.Duration `flag:"drain-timeout" env:"DRAIN_TIMEOUT" default:"30s"`
//	}
//
// Embedded structs are flattened, so services share common fields. Supported
// field types are string, bool, int, int64, float64, time.Duration and
// []string (a repeatable flag; comma-separated in the environment).
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/joho/godotenv"
)

// Validator is implemented by configs that check their values after loading.
type Validator interface{ Validate() error }

// Source is where Load reads from. The zero value reads nothing; use OS for
// the process's own arguments and environment.
type Source struct {
	Args   []string                        // flags and positional arguments
	Lookup func(key string) (string, bool) // environment; nil means none
	DotEnv string                          // .env path; "" means none
	Usage  string                          // one-line usage for --help
	Output io.Writer                       // where --help goes; nil means stderr
}

// OS is a Source over args, the process environment and ./.env (or the file
// named by LLMO_ENV_FILE) if it exists.
func OS(args []string) Source {
	path := os.Getenv("LLMO_ENV_FILE")
	if path == "" {
		path = ".env"
	}
	if _, err := os.Stat(path); err != nil {
		path = ""
	}
	return Source{Args: args, Lookup: os.LookupEnv, DotEnv: path}
}

// ErrHelp is returned when --help was asked for; the usage was printed.
var ErrHelp = flag.ErrHelp

var (
	knownMu sync.Mutex
	known   = map[string]bool{"LLMO_ENV_FILE": true}
)

// Register records the environment keys of cfg (a pointer to a config struct
// or the struct itself) as known, so that a shared .env file may set keys
// that belong to other services without tripping strict checks.
func Register(cfg any) {
	fields, err := collect(reflect.New(reflect.TypeOf(cfg)).Elem())
	if err != nil {
		panic(err)
	}
	knownMu.Lock()
	defer knownMu.Unlock()
	for _, f := range fields {
		if f.env != "" {
			known[f.env] = true
		}
	}
}

// RegisterKeys records extra environment keys as known.
func RegisterKeys(keys ...string) {
	knownMu.Lock()
	defer knownMu.Unlock()
	for _, k := range keys {
		known[k] = true
	}
}

// tolerated are prefixes of .env keys that belong to tools llmo runs beside
// (Docker Compose reads the same .env file).
var tolerated = []string{"COMPOSE_", "DOCKER_", "GF_", "TRAEFIK_"}

type field struct {
	v       reflect.Value
	flag    string
	env     string
	def     string
	help    string
	setFrom string // "flag", "env", ".env" or "default"
}

// Load fills cfg (a pointer to a struct) from src and returns the positional
// arguments left after the flags.
func Load(name string, cfg any, src Source) ([]string, error) {
	rv := reflect.ValueOf(cfg)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: Load needs a pointer to a struct, got %T", cfg)
	}
	fields, err := collect(rv.Elem())
	if err != nil {
		return nil, err
	}
	Register(rv.Elem().Interface())

	// Defaults first, so every later layer overrides them.
	for _, f := range fields {
		if f.def == "" {
			continue
		}
		if err := set(f.v, f.def, true); err != nil {
			return nil, fmt.Errorf("config: default for %s: %w", f.key(), err)
		}
		f.setFrom = "default"
	}

	// .env, then the environment.
	if src.DotEnv != "" {
		vals, err := godotenv.Read(src.DotEnv)
		if err != nil {
			return nil, fmt.Errorf("config: reading %s: %w", src.DotEnv, err)
		}
		keys := make([]string, 0, len(vals))
		for k := range vals {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !isKnown(k) {
				return nil, fmt.Errorf("config: unknown key %s in %s", k, src.DotEnv)
			}
		}
		if err := applyEnv(fields, func(k string) (string, bool) { v, ok := vals[k]; return v, ok }, src.DotEnv); err != nil {
			return nil, err
		}
	}
	if src.Lookup != nil {
		if err := applyEnv(fields, src.Lookup, "environment"); err != nil {
			return nil, err
		}
	}

	// Flags win.
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, f := range fields {
		if f.flag == "" {
			continue
		}
		fs.Var(&flagValue{f: f}, f.flag, f.help)
	}
	out := src.Output
	if out == nil {
		out = os.Stderr
	}
	if err := fs.Parse(src.Args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			PrintUsage(out, name, src.Usage, fields)
			return nil, ErrHelp
		}
		return nil, fmt.Errorf("%s: %w (see --help)", name, err)
	}
	if v, ok := cfg.(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return fs.Args(), nil
}

func isKnown(k string) bool {
	knownMu.Lock()
	defer knownMu.Unlock()
	if known[k] {
		return true
	}
	for _, p := range tolerated {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func applyEnv(fields []*field, lookup func(string) (string, bool), where string) error {
	for _, f := range fields {
		if f.env == "" {
			continue
		}
		s, ok := lookup(f.env)
		if !ok {
			continue
		}
		if err := set(f.v, s, true); err != nil {
			return fmt.Errorf("config: %s=%q (from %s): %w", f.env, s, where, err)
		}
		f.setFrom = where
	}
	return nil
}

func (f *field) key() string {
	if f.flag != "" {
		return "--" + f.flag
	}
	return f.env
}

var durationType = reflect.TypeOf(time.Duration(0))

func collect(v reflect.Value) ([]*field, error) {
	var out []*field
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		fv := v.Field(i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			sub, err := collect(fv)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		fl, env := sf.Tag.Get("flag"), sf.Tag.Get("env")
		if fl == "" && env == "" {
			continue
		}
		if !sf.IsExported() {
			return nil, fmt.Errorf("config: field %s is tagged but unexported", sf.Name)
		}
		if !supported(sf.Type) {
			return nil, fmt.Errorf("config: field %s has unsupported type %s", sf.Name, sf.Type)
		}
		out = append(out, &field{v: fv, flag: fl, env: env, def: sf.Tag.Get("default"), help: sf.Tag.Get("help")})
	}
	return out, nil
}

func supported(t reflect.Type) bool {
	if t == durationType {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return false
}

// set parses s into v. For a []string, replace says whether s (split on
// commas) replaces the list or is appended as one more element (a repeated
// flag).
func set(v reflect.Value, s string, replace bool) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not a duration (want e.g. 30s, 2m)")
		}
		if d < 0 {
			return fmt.Errorf("must not be negative")
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not a boolean (want true or false)")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		v.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		v.SetFloat(x)
	case reflect.Slice:
		var parts []string
		if replace {
			for _, p := range strings.Split(s, ",") {
				if p = strings.TrimSpace(p); p != "" {
					parts = append(parts, p)
				}
			}
			v.Set(reflect.ValueOf(parts))
		} else {
			v.Set(reflect.Append(v, reflect.ValueOf(s)))
		}
	}
	return nil
}

type flagValue struct {
	f       *field
	touched bool
}

func (fv *flagValue) String() string {
	if fv == nil || fv.f == nil {
		return ""
	}
	return fmt.Sprint(fv.f.v.Interface())
}

func (fv *flagValue) Set(s string) error {
	// The first use of a repeatable flag replaces values from lower layers.
	if fv.f.v.Kind() == reflect.Slice && !fv.touched {
		fv.f.v.Set(reflect.Zero(fv.f.v.Type()))
	}
	fv.touched = true
	fv.f.setFrom = "flag"
	return set(fv.f.v, s, false)
}

func (fv *flagValue) IsBoolFlag() bool { return fv.f.v.Kind() == reflect.Bool }

// PrintUsage writes the flag table for a command.
func PrintUsage(w io.Writer, name, usage string, fields []*field) {
	if usage != "" {
		fmt.Fprintf(w, "Usage: %s\n\n", usage)
	}
	fmt.Fprintln(w, "Flags (each also read from the environment variable shown, and from .env):")
	for _, f := range fields {
		if f.flag == "" {
			continue
		}
		arg := ""
		switch {
		case f.v.Type() == durationType:
			arg = " DURATION"
		case f.v.Kind() == reflect.Bool:
		case f.v.Kind() == reflect.Slice:
			arg = " VALUE (repeatable)"
		case f.v.Kind() == reflect.String:
			arg = " STRING"
		default:
			arg = " N"
		}
		fmt.Fprintf(w, "  --%s%s\n        %s", f.flag, arg, f.help)
		var extra []string
		if f.env != "" {
			extra = append(extra, "env "+f.env)
		}
		if f.def != "" {
			extra = append(extra, "default "+f.def)
		}
		if len(extra) > 0 {
			fmt.Fprintf(w, " (%s)", strings.Join(extra, ", "))
		}
		fmt.Fprintln(w)
	}
}

// KnownKeys lists every registered environment key, sorted. The README test
// uses it to keep the documented environment in step with the code.
func KnownKeys() []string {
	knownMu.Lock()
	defer knownMu.Unlock()
	keys := make([]string, 0, len(known))
	for k := range known {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Field describes one configuration field, for documentation and tests.
type Field struct {
	Flag, Env, Default, Help string
	Type                     string
}

// Describe lists the fields of cfg (a config struct or a pointer to one).
func Describe(cfg any) []Field {
	t := reflect.TypeOf(cfg)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fields, err := collect(reflect.New(t).Elem())
	if err != nil {
		panic(err)
	}
	out := make([]Field, 0, len(fields))
	for _, f := range fields {
		out = append(out, Field{Flag: f.flag, Env: f.env, Default: f.def, Help: f.help, Type: f.v.Type().String()})
	}
	return out
}
