package filter

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// strftime evaluates SQLite's strftime(format, time, modifiers...) for
// Match. It returns nil where SQLite returns NULL: an unreadable time, an
// unknown modifier or an unknown conversion.
func strftime(format, timeValue any, modifiers []any) any {
	f, ok := format.(string)
	if !ok {
		return nil
	}
	t, ok := parseSQLiteTime(timeValue)
	if !ok {
		return nil
	}
	for _, m := range modifiers {
		s, ok := m.(string)
		if !ok {
			return nil
		}
		if t, ok = applyModifier(t, s); !ok {
			return nil
		}
	}
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			b.WriteByte(f[i])
			continue
		}
		i++
		if i >= len(f) {
			return nil
		}
		switch f[i] {
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'e':
			fmt.Fprintf(&b, "%2d", t.Day())
		case 'f':
			fmt.Fprintf(&b, "%02d.%03d", t.Second(), t.Nanosecond()/1e6)
		case 'F':
			b.WriteString(t.Format("2006-01-02"))
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 's':
			b.WriteString(strconv.FormatInt(t.Unix(), 10))
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 'T':
			b.WriteString(t.Format("15:04:05"))
		case 'R':
			b.WriteString(t.Format("15:04"))
		case 'u':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			b.WriteString(strconv.Itoa(wd))
		case 'w':
			b.WriteString(strconv.Itoa(int(t.Weekday())))
		case 'Y':
			fmt.Fprintf(&b, "%04d", t.Year())
		case '%':
			b.WriteByte('%')
		default:
			return nil
		}
	}
	return b.String()
}

// parseSQLiteTime reads the time values SQLite's date functions accept
// that Underhood stores: YYYY-MM-DD[ HH:MM[:SS[.SSS]]][Z|±HH:MM], with
// "T" allowed as the separator, and "now" is not supported (it would make
// Match differ from SQL by the time between them).
func parseSQLiteTime(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, false
	}
	s = strings.TrimSpace(s)
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	year, err1 := strconv.Atoi(s[0:4])
	month, err2 := strconv.Atoi(s[5:7])
	day, err3 := strconv.Atoi(s[8:10])
	if err1 != nil || err2 != nil || err3 != nil || month < 1 || month > 12 || day < 1 || day > 31 {
		return time.Time{}, false
	}
	rest := s[10:]
	var hour, minute, sec, ms int
	if rest != "" {
		if rest[0] != ' ' && rest[0] != 'T' {
			return time.Time{}, false
		}
		rest = strings.TrimLeft(rest[1:], " ")
		if len(rest) < 5 || rest[2] != ':' {
			return time.Time{}, false
		}
		var err error
		if hour, err = strconv.Atoi(rest[0:2]); err != nil {
			return time.Time{}, false
		}
		if minute, err = strconv.Atoi(rest[3:5]); err != nil {
			return time.Time{}, false
		}
		rest = rest[5:]
		if len(rest) >= 3 && rest[0] == ':' {
			if sec, err = strconv.Atoi(rest[1:3]); err != nil {
				return time.Time{}, false
			}
			rest = rest[3:]
			if len(rest) > 1 && rest[0] == '.' {
				j := 1
				for j < len(rest) && isDigit(rest[j]) {
					j++
				}
				frac := rest[1:j] + "000"
				ms, _ = strconv.Atoi(frac[:3])
				rest = rest[j:]
			}
		}
		if hour > 24 || minute > 59 || sec > 59 {
			return time.Time{}, false
		}
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, ms*1e6, time.UTC)
	rest = strings.TrimSpace(rest)
	switch {
	case rest == "" || rest == "Z" || rest == "z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		h, err1 := strconv.Atoi(rest[1:3])
		m, err2 := strconv.Atoi(rest[4:6])
		if err1 != nil || err2 != nil {
			return time.Time{}, false
		}
		off := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute
		if rest[0] == '+' {
			off = -off
		}
		t = t.Add(off)
	default:
		return time.Time{}, false
	}
	return t, true
}

// applyModifier applies one of SQLite's date modifiers.
func applyModifier(t time.Time, mod string) (time.Time, bool) {
	m := strings.ToLower(strings.TrimSpace(mod))
	switch m {
	case "start of day":
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), true
	case "start of month":
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC), true
	case "start of year":
		return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC), true
	case "utc", "localtime", "auto", "subsec", "subsecond":
		return t, true
	}
	if strings.HasPrefix(m, "weekday ") {
		n, err := strconv.Atoi(strings.TrimSpace(m[len("weekday "):]))
		if err != nil || n < 0 || n > 6 {
			return t, false
		}
		d := (n - int(t.Weekday()) + 7) % 7
		return t.AddDate(0, 0, d), true
	}
	fields := strings.Fields(m)
	if len(fields) != 2 {
		return t, false
	}
	n, err := strconv.ParseFloat(fields[0], 64)
	if err != nil || math.IsInf(n, 0) || math.IsNaN(n) {
		return t, false
	}
	unit := strings.TrimSuffix(fields[1], "s")
	switch unit {
	case "second":
		return t.Add(time.Duration(n * float64(time.Second))), true
	case "minute":
		return t.Add(time.Duration(n * float64(time.Minute))), true
	case "hour":
		return t.Add(time.Duration(n * float64(time.Hour))), true
	case "day":
		return t.Add(time.Duration(n * 24 * float64(time.Hour))), true
	case "month":
		if n != math.Trunc(n) {
			return t, false
		}
		return t.AddDate(0, int(n), 0), true
	case "year":
		if n != math.Trunc(n) {
			return t, false
		}
		return t.AddDate(int(n), 0, 0), true
	}
	return t, false
}
