package mail

import (
	"encoding/json"
	"fmt"
	"html"
	"regexp"
	"strconv"
	"strings"

	"github.com/underhood/underhood"
)

// Render fills in the placeholders of a template's subject and HTML body:
// {NAME} takes vars["NAME"] (APP_NAME, APP_URL, TOKEN, OTP, OTP_ID,
// ALERT_INFO, …) and {RECORD:field} the value of field in rec. Values go
// into the body HTML-escaped and into the subject as they are (the
// subject is plain text). Replacement is a single pass, so a value that
// itself contains "{TOKEN}" (a user's name, say) stays literal text.
// Unknown placeholders are left as they are; secret fields (passwords,
// token keys) are never filled in.
func Render(tmpl underhood.EmailTemplate, rec *underhood.Record, vars map[string]string) (subject, body string) {
	subject = expand(tmpl.Subject, rec, vars, func(s string) string { return s })
	body = expand(tmpl.Body, rec, vars, html.EscapeString)
	return subject, body
}

// placeholder matches {NAME} and {RECORD:field}.
var placeholder = regexp.MustCompile(`\{(RECORD:[A-Za-z0-9_]+|[A-Z][A-Z0-9_]*)\}`)

func expand(s string, rec *underhood.Record, vars map[string]string, escape func(string) string) string {
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		name := m[1 : len(m)-1]
		if field, ok := strings.CutPrefix(name, "RECORD:"); ok {
			v, ok := recordValue(rec, field)
			if !ok {
				return m
			}
			return escape(v)
		}
		v, ok := vars[name]
		if !ok {
			return m
		}
		return escape(v)
	})
}

// recordValue is the text of field in rec for a template.
func recordValue(rec *underhood.Record, field string) (string, bool) {
	if rec == nil {
		return "", false
	}
	if field == "tokenKey" {
		return "", false
	}
	if rec.Collection != nil {
		f := rec.Collection.Field(field)
		if f == nil && field != "collectionId" && field != "collectionName" {
			return "", false
		}
		if f != nil && f.Type == underhood.FieldPassword {
			return "", false
		}
		switch field {
		case "collectionId":
			return rec.Collection.ID, true
		case "collectionName":
			return rec.Collection.Name, true
		}
	}
	v, ok := rec.Data[field]
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case nil:
		return "", true
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case []string:
		return strings.Join(v, ", "), true
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v), true
	}
	return string(b), true
}

// HTMLToText returns the plain-text rendering of an email's HTML body:
// tags dropped, entities decoded, block elements and <br> as line breaks,
// and each link as its text followed by its address, so a reader without
// HTML can still follow it.
func HTMLToText(s string) string {
	var out strings.Builder
	var href string // the address of the link being read
	for len(s) > 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			out.WriteString(collapse(html.UnescapeString(s)))
			break
		}
		out.WriteString(collapse(html.UnescapeString(s[:i])))
		s = s[i:]
		end := tagEnd(s)
		if end < 0 {
			out.WriteString(collapse(html.UnescapeString(s)))
			break
		}
		tag := s[1:end]
		s = s[end+1:]
		name, closing := tagName(tag)
		switch name {
		case "style", "script", "head", "title":
			if !closing {
				// Their content is not text: skip to the closing tag.
				if j := strings.Index(strings.ToLower(s), "</"+name); j >= 0 {
					s = s[j:]
				} else {
					s = ""
				}
			}
		case "br":
			out.WriteString("\n")
		case "p", "div", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol":
			out.WriteString("\n")
		case "li":
			if !closing {
				out.WriteString("\n- ")
			}
		case "a":
			if !closing {
				href = attr(tag, "href")
			} else if href != "" {
				out.WriteString(" (" + href + ")")
				href = ""
			}
		}
	}
	return tidyLines(out.String())
}

// tagEnd returns the index of the '>' that ends the tag s starts with,
// skipping quoted attribute values, or -1.
func tagEnd(s string) int {
	var quote byte
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			return i
		}
	}
	return -1
}

// tagName returns the lower-case name of a tag's inside ("a href=…",
// "/p", "br/") and whether it closes an element.
func tagName(tag string) (string, bool) {
	closing := strings.HasPrefix(tag, "/")
	tag = strings.TrimPrefix(tag, "/")
	end := strings.IndexAny(tag, " \t\r\n/")
	if end < 0 {
		end = len(tag)
	}
	return strings.ToLower(tag[:end]), closing
}

// attrPattern matches one attribute with a quoted or bare value.
var attrPattern = regexp.MustCompile(`(?is)\s([a-z_:][-a-z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))`)

// attr returns the decoded value of attribute name in a tag's inside.
func attr(tag, name string) string {
	for _, m := range attrPattern.FindAllStringSubmatch(" "+tag, -1) {
		if strings.EqualFold(m[1], name) {
			return html.UnescapeString(m[2] + m[3] + m[4])
		}
	}
	return ""
}

// collapse turns runs of white space (line breaks included) into one
// space, as HTML renders them.
func collapse(s string) string {
	if s == "" {
		return ""
	}
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return " "
	}
	out := strings.Join(fields, " ")
	if isSpace(s[0]) {
		out = " " + out
	}
	if isSpace(s[len(s)-1]) {
		out += " "
	}
	return out
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// tidyLines trims every line and keeps at most one empty line in a row.
func tidyLines(s string) string {
	var lines []string
	blank := true // drop leading empty lines
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			if !blank {
				lines = append(lines, "")
			}
			blank = true
			continue
		}
		lines = append(lines, l)
		blank = false
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return strings.Join(lines, "\n")
}
