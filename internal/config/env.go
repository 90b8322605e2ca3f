package config

import (
	"fmt"
	"reflect"
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
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || tag[0] == "-" {
			continue
		}
		fv := v.Field(i)
		if len(tag) > 1 && tag[1] == "inline" {
			if err := walk(fv, envName, path, getenv); err != nil {
				return err
			}
			continue
		}
		name := envName + "_" + strings.ToUpper(tag[0])
		p := strings.TrimPrefix(path+"."+tag[0], ".")
		if f.Type.Kind() == reflect.Struct && f.Type != timeType {
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
