package filter

// Static facts about a resolved value that the compiler and Match must
// agree on: whether its SQL expression can be NULL and which affinity it
// carries into a comparison.

// hasItems reports whether the path's SQL needs FROM items of its own
// (relation hops, known ids or :each) instead of a plain column.
func (p *path) hasItems() bool {
	return p.root == rootIDs || len(p.hops) > 0 || p.each
}

// info returns the affinity and nullability of the path's SQL value.
func (p *path) info() (aff affinity, nullable bool) {
	aff = storedAffinity(p.field)
	nullable = p.field.Type == "json" && p.json == nil
	if p.root == rootCollection {
		nullable = true // a LEFT JOIN row of an empty collection
	}
	switch {
	case p.guardEmail:
		aff, nullable = affNone, true
	case p.json != nil:
		aff, nullable = affNone, true
	case p.length:
		aff = affNone
	case p.each:
		aff, nullable = affNone, false
	}
	if p.hasItems() && !p.multi() {
		aff, nullable = affNone, true // a scalar subquery
	}
	return aff, nullable
}

// info returns the affinity and nullability of v's SQL expression.
func (v *value) info() (aff affinity, nullable bool) {
	switch {
	case v.constant:
		return affNone, v.v == nil
	case v.list != nil, v.call != nil:
		return affNone, true
	case v.changed != nil:
		return affNone, false
	}
	aff, nullable = v.path.info()
	if v.lower {
		aff = affNone
	}
	return aff, nullable
}

// aliasesOf lists the @collection joins v reads.
func aliasesOf(v *value) []*collAlias {
	switch {
	case v.path != nil && v.path.root == rootCollection:
		return []*collAlias{v.path.alias}
	case v.call != nil:
		var out []*collAlias
		for _, a := range v.call.args {
			out = append(out, aliasesOf(a)...)
		}
		return out
	}
	return nil
}

// cmpAliases lists, once each, the @collection joins a comparison reads.
func cmpAliases(x *cmp) []*collAlias {
	var out []*collAlias
	for _, a := range append(aliasesOf(x.l), aliasesOf(x.r)...) {
		dup := false
		for _, b := range out {
			dup = dup || a == b
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}

// likePattern turns the right side of "~" into a LIKE pattern: a value
// with no unescaped "%" is matched anywhere, with its "_", "%" and "\"
// taken literally.
func likePattern(s string) string {
	if hasUnescapedPercent(s) {
		return s
	}
	b := make([]byte, 0, len(s)+4)
	b = append(b, '%')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			b = append(b, c, s[i+1])
			i++
			continue
		}
		if c == '\\' || c == '%' || c == '_' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return string(append(b, '%'))
}

func hasUnescapedPercent(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '%':
			return true
		}
	}
	return false
}
