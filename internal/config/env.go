package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts every override variable.
const EnvPrefix = "EVENTRELAY_"

var (
	durationType = reflect.TypeOf(time.Duration(0))
	timeType     = reflect.TypeOf(time.Time{})
)

// applyEnv sets each field whose variable is set: the field's YAML path in
// upper case with '_' between parts, e.g. EVENTRELAY_SOURCE_KINESIS_STREAM.
// Lists are comma-separated.
func applyEnv(c *Config, getenv func(string) string) error {
	return walk(reflect.ValueOf(c).Elem(), EnvPrefix[:len(EnvPrefix)-1], "", getenv)
}

func walk(v reflect.Value, envName, path string, getenv func(string) string) error {
	for _, f := range yamlFields(v.Type()) {
		fv := v.FieldByIndex(f.index)
		name := envName + "_" + strings.ToUpper(f.name)
		p := strings.TrimPrefix(path+"."+f.name, ".")
		if isSection(f.typ) {
			if err := walk(fv, name, p, getenv); err != nil {
				return err
			}
			continue
		}
		raw := getenv(name)
		if raw == "" {
			continue
		}
		if err := set(fv, raw); err != nil {
			return fmt.Errorf("%s (from %s): %w", p, name, err)
		}
	}
	return nil
}

// NotConfigEnv are the EVENTRELAY_ variables read that are not
// configuration fields: the configuration file's path, and switches of the
// test and benchmark suites. A trailing '*' matches any suffix.
var NotConfigEnv = []string{
	"EVENTRELAY_CONFIG", "EVENTRELAY_REQUIRE_KCAT", "EVENTRELAY_REQUIRE_EMULATORS", "EVENTRELAY_REQUIRE_HELM",
	"EVENTRELAY_RELIABILITY", "EVENTRELAY_TEST_LOG", "EVENTRELAY_BENCH_*",
}

// CheckEnv returns an error naming each EVENTRELAY_* variable of environ
// (KEY=value, as os.Environ returns it) that overrides no field and is not
// in NotConfigEnv, with the nearest field's variable when one is close: a
// misspelt override would otherwise be ignored without a word.
func CheckEnv(environ []string) error {
	known := envNames(reflect.TypeOf(Config{}), EnvPrefix[:len(EnvPrefix)-1])
	var errs []error
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || slices.Contains(known, name) || notConfig(name) {
			continue
		}
		hint := ""
		if c := closest(name, known); c != "" {
			hint = "; did you mean " + c + "?"
		}
		errs = append(errs, fmt.Errorf("environment variable %s: matches no configuration field%s", name, hint))
	}
	return errors.Join(errs...)
}

func notConfig(name string) bool {
	for _, n := range NotConfigEnv {
		if p, wild := strings.CutSuffix(n, "*"); name == n || wild && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// envNames lists the override variables of t's fields under prefix.
func envNames(t reflect.Type, prefix string) []string {
	var out []string
	for _, f := range yamlFields(t) {
		name := prefix + "_" + strings.ToUpper(f.name)
		if isSection(f.typ) {
			out = append(out, envNames(f.typ, name)...)
		} else {
			out = append(out, name)
		}
	}
	return out
}

func set(v reflect.Value, raw string) error {
	switch {
	case v.Kind() == reflect.Pointer:
		// An optional setting (*bool and the like): nil means the default.
		elem := reflect.New(v.Type().Elem())
		if err := set(elem.Elem(), raw); err != nil {
			return err
		}
		v.Set(elem)
	case v.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("want a duration like 500ms or 2m: %w", err)
		}
		v.SetInt(int64(d))
	case v.Type() == timeType:
		t, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			return fmt.Errorf("want an RFC 3339 time: %w", err)
		}
		v.Set(reflect.ValueOf(t))
	case v.Kind() == reflect.String:
		v.SetString(raw)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("want true or false: %w", err)
		}
		v.SetBool(b)
	case v.Kind() >= reflect.Int && v.Kind() <= reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer: %w", err)
		}
		v.SetInt(n)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		parts := strings.Split(raw, ",")
		s := reflect.MakeSlice(v.Type(), 0, len(parts))
		for _, p := range parts {
			if p = strings.TrimSpace(p); p != "" {
				s = reflect.Append(s, reflect.ValueOf(p).Convert(v.Type().Elem()))
			}
		}
		v.Set(s)
	default:
		return fmt.Errorf("cannot be set from the environment (type %s)", v.Type())
	}
	return nil
}
