package envelope

import (
	"errors"
	"time"
)

var errBadTime = errors.New("want ISO-8601 date-time with a UTC offset, e.g. 2022-07-13T18:59:43.596191+02:00")

// parseTime parses the ISO-8601 instants the vendors use, without
// allocating: YYYY-MM-DD, 'T' (or a space), hh:mm:ss, up to nine fraction
// digits, then Z or an offset as ±hh:mm, ±hhmm or ±hh. An instant without an
// offset is rejected rather than guessed. The result is UTC.
func parseTime(b []byte) (time.Time, error) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't' && b[10] != ' ') || b[13] != ':' || b[16] != ':' {
		return time.Time{}, errBadTime
	}
	year, ok1 := digitsN(b[0:4])
	month, ok2 := digitsN(b[5:7])
	day, ok3 := digitsN(b[8:10])
	hour, ok4 := digitsN(b[11:13])
	minute, ok5 := digitsN(b[14:16])
	sec, ok6 := digitsN(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 ||
		day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, errBadTime
	}
	i, nsec := 19, 0
	if b[i] == '.' || b[i] == ',' {
		i++
		n, scale := 0, 100_000_000
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if n < 9 {
				nsec += int(b[i]-'0') * scale
				scale /= 10
			}
			n++
			i++
		}
		if n == 0 || n > 9 {
			return time.Time{}, errBadTime
		}
	}
	off, ok := parseOffset(b[i:])
	if !ok {
		return time.Time{}, errBadTime
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	return t.Add(-time.Duration(off) * time.Second), nil
}

// parseOffset parses Z, ±hh, ±hhmm or ±hh:mm into seconds east of UTC.
func parseOffset(b []byte) (int, bool) {
	if len(b) == 1 && (b[0] == 'Z' || b[0] == 'z') {
		return 0, true
	}
	if len(b) < 3 || (b[0] != '+' && b[0] != '-') {
		return 0, false
	}
	hh, ok := digitsN(b[1:3])
	if !ok || hh > 23 {
		return 0, false
	}
	mm := 0
	switch rest := b[3:]; len(rest) {
	case 0:
	case 2:
		mm, ok = digitsN(rest)
	case 3:
		if rest[0] != ':' {
			return 0, false
		}
		mm, ok = digitsN(rest[1:])
	default:
		return 0, false
	}
	if !ok || mm > 59 {
		return 0, false
	}
	off := hh*3600 + mm*60
	if b[0] == '-' {
		off = -off
	}
	return off, true
}

func digitsN(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
