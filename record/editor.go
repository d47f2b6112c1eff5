package record

import (
	"regexp"
	"strings"
	"sync"

	"github.com/microcosm-cc/bluemonday"
)

// editorPolicy is the allow-list an editor field's HTML is sanitised with
// on every write: what a rich-text editor such as PocketBase's TinyMCE
// produces (paragraphs, headings, lists, links, images, tables, code,
// quotes, basic inline styles) and nothing that runs: scripts, event
// handler attributes, javascript: and other non-web URLs, frames, objects,
// forms and style sheets are removed. Links and images keep http(s),
// mailto and relative URLs; images may also be data: URIs of images. A
// policy is safe for concurrent use once built, and built once.
var editorPolicy = sync.OnceValue(func() *bluemonday.Policy {
	p := bluemonday.UGCPolicy()
	// Editor output is the record owner's content, not a comment thread:
	// links stay as written, without the rel="nofollow" UGC adds.
	p.RequireNoFollowOnLinks(false)
	p.AllowAttrs("target").Matching(regexp.MustCompile(`^_(blank|self)$`)).OnElements("a")
	p.AllowAttrs("rel").Matching(bluemonday.SpaceSeparatedTokens).OnElements("a")
	p.AllowDataURIImages()
	p.AllowAttrs("class").Matching(bluemonday.SpaceSeparatedTokens).Globally()
	p.AllowElements("u", "s", "mark", "span", "div", "figcaption")
	// Each property is checked by bluemonday's own value handler for it,
	// so no url(), expression() or other script can hide in a value.
	p.AllowStyles("text-align", "text-decoration", "text-indent", "padding-left", "margin-left", "margin-right",
		"color", "background-color", "font-size", "font-family", "font-weight", "font-style",
		"width", "height", "float", "vertical-align", "list-style-type",
		"border", "border-width", "border-style", "border-color", "border-collapse").Globally()
	p.AllowAttrs("border", "cellpadding", "cellspacing", "width", "height").Matching(bluemonday.NumberOrPercent).OnElements("table", "td", "th")
	return p
})

// sanitizeHTML returns the editor HTML s with everything outside
// editorPolicy removed.
func sanitizeHTML(s string) string {
	if s == "" {
		return s
	}
	// The sanitiser writes &nbsp; back as the character it stands for;
	// editors write the entity, and so does this.
	return strings.ReplaceAll(editorPolicy().Sanitize(s), "\u00a0", "&nbsp;")
}
