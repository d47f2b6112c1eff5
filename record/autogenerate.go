package record

import (
	"crypto/rand"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"regexp"
	"strconv"
	"strings"

	"github.com/underhood/underhood"
)

// This file generates values for autogenerate patterns.

// Autogenerate returns a random string matching pattern, a small subset of
// regular expressions that covers what autogenerate patterns use: literal
// characters (escaped with \ when special), character classes with ranges
// ([a-z0-9], [A-Z_-]), the \d \w \s shorthands, and {n} or {n,m} counts.
// An unsupported pattern yields a 15 character [a-z0-9] string; use
// PrepareCollection (which rejects such patterns) to catch them early.
func Autogenerate(pattern string) string {
	items := defaultIDItems
	if pattern != defaultIDGenerator {
		var err error
		if items, err = parseAutogenerate(pattern); err != nil {
			return underhood.NewID()
		}
	}
	// One read of the system's randomness seeds a ChaCha8 stream, itself
	// a cryptographically secure generator, for the whole value.
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	rng := mrand.New(mrand.NewChaCha8(seed))
	var b strings.Builder
	for _, it := range items {
		n := it.min
		if it.max > it.min {
			n += rng.IntN(it.max - it.min + 1)
		}
		for i := 0; i < n; i++ {
			b.WriteRune(it.chars[rng.IntN(len(it.chars))])
		}
	}
	return b.String()
}

// The id of every record is generated and checked with the default
// patterns unless its collection sets others: they are parsed once, not
// on every create.
var (
	defaultIDPatternRe = regexp.MustCompile(defaultIDPattern)
	defaultIDItems     = mustParseAutogenerate(defaultIDGenerator)
)

func mustParseAutogenerate(pattern string) []genItem {
	items, err := parseAutogenerate(pattern)
	if err != nil {
		panic(fmt.Sprintf("autogenerate pattern %q: %v", pattern, err))
	}
	return items
}

// genItem is one element of an autogenerate pattern: a set of characters
// repeated between min and max times.
type genItem struct {
	chars    []rune
	min, max int
}

const maxAutogenerateRepeat = 1000

// parseAutogenerate parses the pattern subset Autogenerate supports.
func parseAutogenerate(pattern string) ([]genItem, error) {
	if pattern == "" {
		return nil, fmt.Errorf("empty pattern")
	}
	rs := []rune(pattern)
	var items []genItem
	for i := 0; i < len(rs); {
		var set []rune
		switch rs[i] {
		case '[':
			end := i + 1
			for end < len(rs) && rs[end] != ']' {
				if rs[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(rs) {
				return nil, fmt.Errorf("unterminated character class at %d", i+1)
			}
			s, err := parseClass(rs[i+1 : end])
			if err != nil {
				return nil, err
			}
			set = s
			i = end + 1
		case '\\':
			if i+1 >= len(rs) {
				return nil, fmt.Errorf("trailing backslash")
			}
			set = escapeSet(rs[i+1])
			i += 2
		case '(', ')', '|', '*', '+', '?', '{', '}', '.', '^', '$', ']':
			return nil, fmt.Errorf("unsupported %q at %d", rs[i], i+1)
		default:
			set = []rune{rs[i]}
			i++
		}
		it := genItem{chars: set, min: 1, max: 1}
		if i < len(rs) && rs[i] == '{' {
			end := i + 1
			for end < len(rs) && rs[end] != '}' {
				end++
			}
			if end >= len(rs) {
				return nil, fmt.Errorf("unterminated count at %d", i+1)
			}
			lo, hi, err := parseCount(string(rs[i+1 : end]))
			if err != nil {
				return nil, err
			}
			it.min, it.max = lo, hi
			i = end + 1
		}
		items = append(items, it)
	}
	return items, nil
}

func parseCount(s string) (int, int, error) {
	lo, hi, ranged := strings.Cut(s, ",")
	a, err := strconv.Atoi(strings.TrimSpace(lo))
	if err != nil || a < 0 || a > maxAutogenerateRepeat {
		return 0, 0, fmt.Errorf("invalid count {%s}", s)
	}
	if !ranged {
		return a, a, nil
	}
	b, err := strconv.Atoi(strings.TrimSpace(hi))
	if err != nil || b < a || b > maxAutogenerateRepeat {
		return 0, 0, fmt.Errorf("invalid count {%s}", s)
	}
	return a, b, nil
}

const (
	digitChars = "0123456789"
	lowerChars = "abcdefghijklmnopqrstuvwxyz"
	upperChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

func escapeSet(r rune) []rune {
	switch r {
	case 'd':
		return []rune(digitChars)
	case 'w':
		return []rune(lowerChars + upperChars + digitChars + "_")
	case 's':
		return []rune(" ")
	}
	return []rune{r}
}

func parseClass(rs []rune) ([]rune, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("empty character class")
	}
	if rs[0] == '^' {
		return nil, fmt.Errorf("negated character classes are not supported")
	}
	var set []rune
	add := func(r ...rune) {
		for _, x := range r {
			if !strings.ContainsRune(string(set), x) {
				set = append(set, x)
			}
		}
	}
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r == '\\' && i+1 < len(rs) {
			add(escapeSet(rs[i+1])...)
			i++
			continue
		}
		if i+2 < len(rs) && rs[i+1] == '-' {
			hi := rs[i+2]
			if hi < r {
				return nil, fmt.Errorf("invalid range %c-%c", r, hi)
			}
			for x := r; x <= hi; x++ {
				add(x)
			}
			i += 2
			continue
		}
		add(r)
	}
	return set, nil
}

// randomInt returns a uniform random int in [0, n) from crypto/rand.
func randomInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		// crypto/rand does not fail on supported platforms.
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return int(v.Int64())
}
