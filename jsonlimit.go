package underhood

import "encoding/json"

// Defaults of JSONLimits: deep enough for any document a client means to
// send, low enough that a hostile body cannot make decoding cost more than
// a few megabytes of memory.
const (
	DefaultJSONMaxDepth  = 64
	DefaultJSONMaxValues = 100_000
)

// JSONLimits bound what decoding a JSON document may cost, beyond its size
// in bytes (which the reader of the body bounds): decoded into Go values a
// document of many tiny values ("[{},{},…]") takes thirty times its size.
// Zero fields are the defaults.
type JSONLimits struct {
	// MaxDepth is how deeply arrays and objects may nest.
	MaxDepth int
	// MaxValues is how many array elements and object members the whole
	// document may hold.
	MaxValues int
}

func (l JSONLimits) withDefaults() JSONLimits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultJSONMaxDepth
	}
	if l.MaxValues <= 0 {
		l.MaxValues = DefaultJSONMaxValues
	}
	return l
}

// Check scans b, without allocating, and returns a 400 *Error naming the
// limit that b exceeds, or nil. It does not check that b is valid JSON:
// the decoder that follows does.
func (l JSONLimits) Check(b []byte) error {
	l = l.withDefaults()
	depth, values := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			values++
			if depth > l.MaxDepth {
				return Errorf(EInvalid, "The JSON body is nested too deeply: the limit is %d levels.", l.MaxDepth)
			}
		case ']', '}':
			depth--
		case ',':
			values++
		}
		if values > l.MaxValues {
			return Errorf(EInvalid, "The JSON body holds too many values: the limit is %d.", l.MaxValues)
		}
	}
	return nil
}

// Unmarshal checks b against the limits and then decodes it into v. A
// document that is not valid JSON is a 400 *Error with PocketBase's
// message.
func (l JSONLimits) Unmarshal(b []byte, v any) error {
	if err := l.Check(b); err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return Errorf(EInvalid, "Failed to load the submitted data due to invalid formatting.")
	}
	return nil
}
