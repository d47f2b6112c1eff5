package rest

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// projection is a parsed "fields" parameter: which keys of a record (and,
// below "expand", of expanded records) a client wants back.
type projection struct {
	all      bool                   // "*" at this level
	children map[string]*projection // nil child: the whole value
	excerpts map[string]excerpt
}

type excerpt struct {
	max      int
	ellipsis bool
}

var excerptRe = regexp.MustCompile(`^(.*):excerpt\(\s*(\d+)\s*(?:,\s*(true|false|1|0|t|f)\s*)?\)$`)

// parseFields parses "*,expand.author.name,body:excerpt(200,true)". An
// empty parameter means everything (nil projection).
func parseFields(src string) (*projection, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	root := &projection{}
	for _, item := range splitTopLevel(src) {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var ex *excerpt
		if m := excerptRe.FindStringSubmatch(item); m != nil {
			n, _ := strconv.Atoi(m[2])
			b, _ := strconv.ParseBool(m[3])
			ex = &excerpt{max: n, ellipsis: b}
			item = m[1]
		} else if strings.Contains(item, ":") {
			return nil, underhood.Invalid("Invalid fields parameter.", map[string]any{
				"fields": underhood.FieldError{Code: "validation_invalid_fields", Message: "Unknown field modifier in " + strconv.Quote(item) + "."}})
		}
		node := root
		parts := strings.Split(item, ".")
		for i, p := range parts {
			last := i == len(parts)-1
			if p == "*" && last {
				node.all = true
				break
			}
			if node.children == nil {
				node.children = map[string]*projection{}
			}
			child, seen := node.children[p]
			if last {
				if ex != nil {
					if node.excerpts == nil {
						node.excerpts = map[string]excerpt{}
					}
					node.excerpts[p] = *ex
				}
				if !seen {
					node.children[p] = nil
				}
				break
			}
			if child == nil {
				if seen {
					break // the whole value is already wanted
				}
				child = &projection{}
				node.children[p] = child
			}
			node = child
		}
	}
	return root, nil
}

// splitTopLevel splits on commas outside parentheses.
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// wants reports whether key is projected and with which sub-projection.
func (p *projection) wants(key string) (bool, *projection) {
	if p == nil {
		return true, nil
	}
	if child, ok := p.children[key]; ok {
		return true, child
	}
	return p.all, nil
}

func encodeList(res *record.ListResult, proj *projection) []byte {
	b := make([]byte, 0, 256+len(res.Items)*256)
	b = append(b, `{"items":[`...)
	for i, r := range res.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = encodeRecord(b, r, proj)
	}
	b = append(b, `],"page":`...)
	b = strconv.AppendInt(b, int64(res.Page), 10)
	b = append(b, `,"perPage":`...)
	b = strconv.AppendInt(b, int64(res.PerPage), 10)
	b = append(b, `,"totalItems":`...)
	b = strconv.AppendInt(b, int64(res.TotalItems), 10)
	b = append(b, `,"totalPages":`...)
	b = strconv.AppendInt(b, int64(res.TotalPages), 10)
	return append(b, '}')
}

// encodeRecord appends r as PocketBase's record JSON: collectionId,
// collectionName, the fields present in r.Data in schema order, and expand.
func encodeRecord(b []byte, r *underhood.Record, proj *projection) []byte {
	b = append(b, '{')
	first := true
	key := func(k string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = underhood.AppendJSONString(b, k)
		b = append(b, ':')
	}
	if ok, _ := proj.wants("collectionId"); ok {
		key("collectionId")
		b = underhood.AppendJSONString(b, r.Collection.ID)
	}
	if ok, _ := proj.wants("collectionName"); ok {
		key("collectionName")
		b = underhood.AppendJSONString(b, r.Collection.Name)
	}
	for _, f := range r.Collection.Fields {
		v, present := r.Data[f.Name]
		if !present {
			continue
		}
		if ok, _ := proj.wants(f.Name); !ok {
			continue
		}
		key(f.Name)
		if ex, ok := proj.excerpt(f.Name); ok {
			s, _ := v.(string)
			b = underhood.AppendJSONString(b, makeExcerpt(s, ex))
			continue
		}
		b = underhood.AppendJSON(b, v)
	}
	if len(r.Expand) > 0 {
		if ok, sub := proj.wants("expand"); ok {
			key("expand")
			b = encodeExpand(b, r.Expand, sub)
		}
	}
	return append(b, '}')
}

func (p *projection) excerpt(key string) (excerpt, bool) {
	if p == nil {
		return excerpt{}, false
	}
	ex, ok := p.excerpts[key]
	return ex, ok
}

func encodeExpand(b []byte, expand map[string]any, proj *projection) []byte {
	b = append(b, '{')
	first := true
	for name, v := range expand {
		ok, sub := proj.wants(name)
		if !ok {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = underhood.AppendJSONString(b, name)
		b = append(b, ':')
		switch e := v.(type) {
		case *underhood.Record:
			b = encodeRecord(b, e, sub)
		case []*underhood.Record:
			b = append(b, '[')
			for i, r := range e {
				if i > 0 {
					b = append(b, ',')
				}
				b = encodeRecord(b, r, sub)
			}
			b = append(b, ']')
		default:
			b = append(b, "null"...)
		}
	}
	return append(b, '}')
}

var (
	tagRe   = regexp.MustCompile(`(?s)<[^>]*>`)
	spaceRe = regexp.MustCompile(`\s+`)
)

// makeExcerpt returns the plain text of s (HTML tags removed, whitespace
// collapsed) cut to max characters, with "..." when cut and asked for.
func makeExcerpt(s string, ex excerpt) string {
	text := strings.TrimSpace(spaceRe.ReplaceAllString(tagRe.ReplaceAllString(s, " "), " "))
	runes := []rune(text)
	if len(runes) <= ex.max {
		return text
	}
	out := strings.TrimSpace(string(runes[:ex.max]))
	if ex.ellipsis {
		out += "..."
	}
	return out
}
