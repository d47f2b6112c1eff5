package files

import (
	"regexp"
	"strings"
	"unicode"

	"github.com/underhood/underhood"
)

const (
	maxBaseLen   = 100 // characters kept of a file's base name
	maxExtLen    = 20  // characters kept of its extension
	suffixLen    = 10  // random characters that make a name unique
	minBaseLen   = 3   // a shorter base gets random characters instead
	maxStoredLen = maxBaseLen + 1 + suffixLen + maxExtLen
)

// StoredName turns a client's file name into the name a file is stored
// under, as PocketBase does: the directory part and anything after a NUL
// are dropped, the base becomes lower-case snake_case of letters and
// digits (at most 100 characters; a base shorter than 3 gets random
// characters), the extension is lower-cased and kept (at most 20
// characters), and "_" plus 10 random [a-z0-9] characters make it unique:
// "My Photo (1).JPG" → "my_photo_1_0a1b2c3d4e.jpg".
func StoredName(original string) string {
	if i := strings.IndexByte(original, 0); i >= 0 {
		original = original[:i]
	}
	if i := strings.LastIndexAny(original, `/\`); i >= 0 {
		original = original[i+1:]
	}
	base, ext := original, ""
	if i := strings.LastIndexByte(original, '.'); i > 0 {
		base, ext = original[:i], cleanExt(original[i:])
	}
	base = snake(base)
	if len(base) < minBaseLen {
		base += underhood.RandomString(suffixLen)
	}
	return base + "_" + underhood.RandomString(suffixLen) + ext
}

// cleanExt keeps the letters and digits of an extension, lower-cased.
func cleanExt(ext string) string {
	var b strings.Builder
	b.WriteByte('.')
	for _, r := range strings.ToLower(ext[1:]) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
		if b.Len() > maxExtLen {
			break
		}
	}
	if b.Len() == 1 {
		return ""
	}
	return b.String()
}

// snake lower-cases s and joins its runs of letters and digits with "_";
// everything else (spaces, punctuation, control characters) separates.
func snake(s string) string {
	var b strings.Builder
	sep := false
	n := 0
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) || r > unicode.MaxASCII {
			sep = b.Len() > 0
			continue
		}
		if sep {
			b.WriteByte('_')
			n++
			sep = false
		}
		if n >= maxBaseLen {
			break
		}
		b.WriteRune(unicode.ToLower(r))
		n++
	}
	return strings.TrimRight(b.String(), "_")
}

// storedNameRe matches the names StoredName produces (and the shapes of
// names PocketBase stored), which are the only names a file key may end in.
var storedNameRe = regexp.MustCompile(`^[a-z0-9_]{1,` + "120" + `}(\.[a-z0-9]{1,20})?$`)

// ValidName reports whether name can be the name of a stored file: no
// path separators, dots only before the extension, nothing a file system
// or URL would treat specially.
func ValidName(name string) bool {
	return len(name) <= maxStoredLen+8 && storedNameRe.MatchString(name)
}

// validRecordID reports whether id can be a directory of the storage.
var recordIDRe = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,100}$`)

func validRecordID(id string) bool { return recordIDRe.MatchString(id) }
