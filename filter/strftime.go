package filter

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// strftime evaluates SQLite's strftime(format, time, modifiers...) for
// Match. It returns nil where SQLite returns NULL: an unreadable time, an
// unknown modifier, an unknown conversion or a result outside SQLite's
// range (Julian day 0, in 4714 BC, to the end of 9999).
func strftime(format, timeValue any, modifiers []any) any {
	f, ok := format.(string)
	if !ok {
		return nil
	}
	// "unixepoch", "julianday" and "auto" may only be the first modifier:
	// they say how to read a number. "auto" leaves any other time as it is.
	first := ""
	if len(modifiers) > 0 {
		first, _ = modifiers[0].(string)
		first = strings.ToLower(first)
	}
	t, ok := parseSQLiteTime(timeValue)
	n, isNumber := timeNumber(timeValue)
	switch {
	case ok && first == "auto":
		modifiers = modifiers[1:]
	case !ok && isNumber:
		t, ok = julianDay(n)
		switch first {
		case "unixepoch":
			t, ok = unixEpoch(n)
			modifiers = modifiers[1:]
		case "auto":
			// not a Julian day: Unix seconds from 4714 BC to 9999
			if !ok && n >= -210866760000 && n <= 253402300799 {
				t, ok = unixEpoch(n)
			}
			modifiers = modifiers[1:]
		case "julianday":
			modifiers = modifiers[1:]
		}
	}
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
	if jd := t.UnixMilli() + unixEpochJD; jd < 0 || jd > maxJD {
		return nil
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
			fmt.Fprintf(&b, "%04d-%02d-%02d", t.Year(), int(t.Month()), t.Day()) // as %Y-%m-%d, for years before 1 too
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
		case 'G', 'g', 'V':
			year, week := isoWeek(t)
			switch f[i] {
			case 'G':
				fmt.Fprintf(&b, "%04d", year)
			case 'g':
				fmt.Fprintf(&b, "%02d", year%100) // C semantics: -76 for year -2976
			default:
				fmt.Fprintf(&b, "%02d", week)
			}
		case 'U': // weeks starting on Sunday; days before the first are week 0
			fmt.Fprintf(&b, "%02d", (t.YearDay()-1-int(t.Weekday())+7)/7)
		case 'W': // weeks starting on Monday
			fmt.Fprintf(&b, "%02d", (t.YearDay()-1-(int(t.Weekday())+6)%7+7)/7)
		case 'k':
			fmt.Fprintf(&b, "%2d", t.Hour())
		case 'I', 'l':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			if f[i] == 'I' {
				fmt.Fprintf(&b, "%02d", h)
			} else {
				fmt.Fprintf(&b, "%2d", h)
			}
		case 'p', 'P':
			ampm := "AM"
			if t.Hour() >= 12 {
				ampm = "PM"
			}
			if f[i] == 'P' {
				ampm = strings.ToLower(ampm)
			}
			b.WriteString(ampm)
		case 'J':
			b.WriteString(strconv.FormatFloat(float64(t.UnixMilli()+unixEpochJD)/86400000, 'g', 16, 64))
		case '%':
			b.WriteByte('%')
		default:
			return nil
		}
	}
	return b.String()
}

// isoWeek returns the ISO 8601 year and week of t: weeks start on Monday,
// and week 1 holds the year's first Thursday. Unlike time.ISOWeek it
// counts years before 1 as SQLite does (proleptic, with a year 0).
func isoWeek(t time.Time) (year, week int) {
	// The Thursday of t's week decides the year.
	thu := t.AddDate(0, 0, 3-(int(t.Weekday())+6)%7)
	return thu.Year(), (thu.YearDay()-1)/7 + 1
}

// unixEpochJD is 1970-01-01 00:00:00 as a Julian day number in
// milliseconds, and maxJD is 9999-12-31 23:59:59.999, the last time
// SQLite's date functions represent.
const (
	unixEpochJD = 210866760000000
	maxJD       = 464269060799999
)

// timeNumber reports whether v is a number as SQLite's date functions
// read one: a numeric value, or text that reads as a number.
func timeNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		return numericText(x)
	}
	return 0, false
}

// julianDay is the time of Julian day number n, when SQLite accepts it.
func julianDay(n float64) (time.Time, bool) {
	if n < 0 || n >= 5373484.5 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(n*86400000+0.5) - unixEpochJD).UTC(), true
}

// unixEpoch is the time n seconds after 1970-01-01, when SQLite accepts it.
func unixEpoch(n float64) (time.Time, bool) {
	jd := n*1000 + unixEpochJD
	if jd < 0 || jd >= maxJD+1 {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(jd+0.5) - unixEpochJD).UTC(), true
}

// parseSQLiteTime reads the time text SQLite's date functions accept
// that Underhood stores: YYYY-MM-DD[ HH:MM[:SS[.SSS]]][Z|±HH:MM], with
// "T" allowed as the separator, and HH:MM[:SS[.SSS]] alone, on
// 2000-01-01. Numbers are read by timeNumber; "now" is not supported (it
// would make Match differ from SQL by the time between them).
func parseSQLiteTime(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok || s == "" || isSpace(s[0]) {
		return time.Time{}, false
	}
	s = strings.TrimRightFunc(s, func(r rune) bool { return r < utf8.RuneSelf && isSpace(byte(r)) })
	if len(s) >= 5 && s[2] == ':' {
		s = "2000-01-01 " + s
	}
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
	rest = strings.TrimLeft(rest, " ")
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

// isSpace is SQLite's sqlite3Isspace.
func isSpace(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// applyModifier applies one of SQLite's date modifiers but the first
// ones strftime handles.
func applyModifier(t time.Time, mod string) (time.Time, bool) {
	m := strings.ToLower(strings.TrimSpace(mod))
	switch m {
	case "start of day":
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), true
	case "start of month":
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC), true
	case "start of year":
		return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC), true
	case "utc", "localtime", "subsec", "subsecond":
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
