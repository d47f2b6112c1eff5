package files

import (
	"bytes"
	"mime"
	"net/http"
	"strings"
)

// sniffLen is how many leading bytes of a file DetectType looks at.
const sniffLen = 3072

// DetectType returns the MIME type of a file from its first bytes (up to
// sniffLen), never from a name or a client's header: the signatures
// http.DetectContentType knows, refined by a table of formats it does not
// (SVG, WebP variants, AVIF/HEIC, TIFF, office documents, archives, …).
// Parameters such as charset are dropped.
func DetectType(head []byte) string {
	if len(head) > sniffLen {
		head = head[:sniffLen]
	}
	for _, m := range magic {
		if m.match(head) {
			return m.typ
		}
	}
	t := http.DetectContentType(head)
	base, _, _ := mime.ParseMediaType(t)
	if base == "" {
		base = "application/octet-stream"
	}
	switch base {
	case "text/xml", "text/plain", "text/html":
		if isSVG(head) {
			return "image/svg+xml"
		}
		if base == "text/xml" {
			return "application/xml"
		}
	case "application/zip":
		return zipType(head)
	}
	return base
}

type signature struct {
	typ   string
	match func([]byte) bool
}

func prefix(p string) func([]byte) bool {
	return func(b []byte) bool { return bytes.HasPrefix(b, []byte(p)) }
}

// ftyp matches an ISO base media file whose major or compatible brand is
// one of brands.
func ftyp(brands ...string) func([]byte) bool {
	return func(b []byte) bool {
		if len(b) < 12 || string(b[4:8]) != "ftyp" {
			return false
		}
		size := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
		if size < 12 || size > len(b) {
			size = min(len(b), 64)
		}
		for _, br := range brands {
			if string(b[8:12]) == br {
				return true
			}
			for i := 16; i+4 <= size; i += 4 {
				if string(b[i:i+4]) == br {
					return true
				}
			}
		}
		return false
	}
}

// magic lists the formats checked before http.DetectContentType, most
// specific first.
var magic = []signature{
	{"image/webp", func(b []byte) bool {
		return len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP"
	}},
	{"image/avif", ftyp("avif", "avis")},
	{"image/heic", ftyp("heic", "heix", "heim", "heis")},
	{"image/heif", ftyp("mif1", "msf1")},
	{"video/quicktime", ftyp("qt  ")},
	{"video/mp4", ftyp("isom", "iso2", "iso5", "mp41", "mp42", "avc1", "dash")},
	{"audio/mp4", ftyp("M4A ", "M4B ")},
	{"video/3gpp", ftyp("3gp4", "3gp5", "3gp6")},
	{"image/tiff", func(b []byte) bool {
		return bytes.HasPrefix(b, []byte("II*\x00")) || bytes.HasPrefix(b, []byte("MM\x00*"))
	}},
	{"image/vnd.adobe.photoshop", prefix("8BPS")},
	{"image/jxl", func(b []byte) bool {
		return bytes.HasPrefix(b, []byte{0xFF, 0x0A}) || bytes.HasPrefix(b, []byte("\x00\x00\x00\x0cJXL \r\n\x87\n"))
	}},
	{"audio/flac", prefix("fLaC")},
	{"audio/aac", func(b []byte) bool { return len(b) >= 2 && b[0] == 0xFF && (b[1]&0xF6) == 0xF0 }},
	{"application/x-bzip2", prefix("BZh")},
	{"application/x-xz", prefix("\xFD7zXZ\x00")},
	{"application/zstd", prefix("\x28\xB5\x2F\xFD")},
	{"application/x-7z-compressed", prefix("7z\xBC\xAF\x27\x1C")},
	{"application/x-tar", func(b []byte) bool { return len(b) >= 262 && string(b[257:262]) == "ustar" }},
	{"application/vnd.sqlite3", prefix("SQLite format 3\x00")},
	{"application/x-elf", prefix("\x7FELF")},
	{"application/vnd.microsoft.portable-executable", prefix("MZ")},
	{"application/x-mach-binary", func(b []byte) bool {
		return bytes.HasPrefix(b, []byte{0xCF, 0xFA, 0xED, 0xFE}) || bytes.HasPrefix(b, []byte{0xCE, 0xFA, 0xED, 0xFE})
	}},
	{"application/x-ole-storage", prefix("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1")},
	{"application/rtf", prefix("{\\rtf")},
	{"application/x-x509-cert", prefix("-----BEGIN CERTIFICATE-----")},
	{"application/vnd.ms-fontobject", func(b []byte) bool { return len(b) >= 36 && string(b[34:36]) == "LP" }},
}

// isSVG reports whether a text file is an SVG document: after an optional
// BOM, XML declaration, comments and doctype, the root element is <svg.
func isSVG(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	for {
		b = bytes.TrimLeft(b, " \t\r\n")
		switch {
		case bytes.HasPrefix(b, []byte("<?")):
			i := bytes.Index(b, []byte("?>"))
			if i < 0 {
				return false
			}
			b = b[i+2:]
		case bytes.HasPrefix(b, []byte("<!--")):
			i := bytes.Index(b, []byte("-->"))
			if i < 0 {
				return false
			}
			b = b[i+3:]
		case bytes.HasPrefix(b, []byte("<!")):
			i := bytes.IndexByte(b, '>')
			if i < 0 {
				return false
			}
			// A doctype may have an internal subset in brackets.
			if j := bytes.IndexByte(b, '['); j >= 0 && j < i {
				if k := bytes.Index(b, []byte("]>")); k >= 0 {
					i = k + 1
				}
			}
			b = b[i+1:]
		default:
			return len(b) > 4 && bytes.EqualFold(b[:4], []byte("<svg")) &&
				(b[4] == ' ' || b[4] == '>' || b[4] == '\t' || b[4] == '\n' || b[4] == '\r' || b[4] == '/')
		}
	}
}

// zipType tells zip-based document formats from plain archives by the
// names of their first entries.
func zipType(b []byte) string {
	// OpenDocument and EPUB store an uncompressed "mimetype" entry first.
	if len(b) > 38 && string(b[30:38]) == "mimetype" {
		rest := b[38:]
		for _, t := range []string{
			"application/vnd.oasis.opendocument.text",
			"application/vnd.oasis.opendocument.spreadsheet",
			"application/vnd.oasis.opendocument.presentation",
			"application/epub+zip",
		} {
			if bytes.HasPrefix(rest, []byte(t)) {
				return t
			}
		}
	}
	switch {
	case bytes.Contains(b, []byte("word/")):
		return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	case bytes.Contains(b, []byte("xl/")):
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	case bytes.Contains(b, []byte("ppt/")):
		return "application/vnd.openxmlformats-officedocument.presentationml.presentation"
	}
	return "application/zip"
}

// activeTypes are types a browser would run or render as a document of
// the site's origin. They are never served inline, and a file whose name
// claims another type is refused at upload.
var activeTypes = map[string][]string{
	"text/html":              {".html", ".htm", ".xhtml", ".shtml"},
	"image/svg+xml":          {".svg", ".svgz"},
	"application/xml":        {".xml", ".xsl", ".xslt", ".rss", ".atom", ".xhtml", ".svg", ".kml", ".gpx"},
	"text/xml":               {".xml"},
	"application/javascript": {".js", ".mjs"},
	"text/javascript":        {".js", ".mjs"},
}

// isActive reports whether typ is rendered or run by browsers.
func isActive(typ string) bool {
	_, ok := activeTypes[typ]
	return ok || strings.Contains(typ, "xml") || strings.Contains(typ, "html")
}

// disguised reports whether a file whose content is typ carries an
// extension that claims something else, for the active types: an HTML
// page named photo.png must not pass as an image.
func disguised(typ, ext string) bool {
	exts, ok := activeTypes[typ]
	if !ok {
		return false
	}
	for _, e := range exts {
		if e == ext {
			return false
		}
	}
	return true
}

// typeAllowed reports whether typ is one of allowed ("" or no list allows
// everything). Entries may be "image/*" wildcards.
func typeAllowed(typ string, allowed []string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == typ || (strings.HasSuffix(a, "/*") && strings.HasPrefix(typ, a[:len(a)-1])) {
			return true
		}
	}
	return false
}
