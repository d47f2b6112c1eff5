package files

import (
	"bytes"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/underhood/underhood"
)

func TestStoredName(t *testing.T) {
	shape := regexp.MustCompile(`^[a-z0-9_]+_[a-z0-9]{10}(\.[a-z0-9]+)?$`)
	tests := []struct {
		in         string
		wantPrefix string // the part before the random suffix
		wantExt    string
	}{
		{"My Photo (1).JPG", "my_photo_1_", ".jpg"},
		{"../../etc/passwd", "passwd_", ""},
		{`..\..\windows\win.ini`, "win_", ".ini"},
		{"report.final.PDF", "report_final_", ".pdf"},
		{"evil\x00.png.html", "evil", ""},
		{"tab\there\nnew.txt", "tab_here_new_", ".txt"},
		{"ünïcødé.png", "n_c_d_", ".png"},
		{"a.png", "a", ".png"},
		{".htaccess", "htaccess_", ""},
		{strings.Repeat("x", 500) + ".txt", strings.Repeat("x", 100) + "_", ".txt"},
		{"x." + strings.Repeat("e", 50), "x", "." + strings.Repeat("e", 20)},
		{"archive.tar.gz", "archive_tar_", ".gz"},
	}
	for _, tt := range tests {
		got := StoredName(tt.in)
		if !shape.MatchString(got) || !strings.HasPrefix(got, tt.wantPrefix) || !strings.HasSuffix(got, tt.wantExt) || !ValidName(got) {
			t.Errorf("StoredName(%q) = %q, want %q…%q of shape %s", tt.in, got, tt.wantPrefix, tt.wantExt, shape)
		}
		if strings.ContainsAny(got, "/\\\x00\n\t ") || len(got) > maxStoredLen {
			t.Errorf("StoredName(%q) = %q: unsafe or too long", tt.in, got)
		}
	}
	if a, b := StoredName("same.png"), StoredName("same.png"); a == b {
		t.Errorf("StoredName twice = %q both times, want unique names", a)
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"photo_abcdefghij.png": true, "x": true, "a_b.tar": true,
		"": false, "../x.png": false, "a/b.png": false, "thumbs_a.png/100x100_a.png": false,
		"A.PNG": false, "a..png": false, ".png": false, "a.png\x00": false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, want)
		}
	}
}

func encoded(t *testing.T, format string, w, h int) []byte { return encodedTB(t, format, w, h) }

func encodedTB(t testing.TB, format string, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 200, 255})
		}
	}
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, nil)
	case "gif":
		err = gif.Encode(&buf, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDetectType(t *testing.T) {
	webp, err := os.ReadFile("testdata/gopher.webp")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		head []byte
		want string
	}{
		{"png", encoded(t, "png", 4, 4), "image/png"},
		{"jpeg", encoded(t, "jpeg", 4, 4), "image/jpeg"},
		{"gif", encoded(t, "gif", 4, 4), "image/gif"},
		{"webp", webp, "image/webp"},
		{"pdf", []byte("%PDF-1.7\n1 0 obj"), "application/pdf"},
		{"html", []byte("<!DOCTYPE html><html><script>alert(1)</script>"), "text/html"},
		{"html without doctype", []byte("  <script>alert(1)</script>"), "text/html"},
		{"svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), "image/svg+xml"},
		{"svg with prolog", []byte("<?xml version=\"1.0\"?>\n<!-- c -->\n<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"x\">\n<svg width=\"1\"/>"), "image/svg+xml"},
		{"xml", []byte(`<?xml version="1.0"?><feed/>`), "application/xml"},
		{"text", []byte("just words\n"), "text/plain"},
		{"json is text", []byte(`{"a":1}`), "text/plain"},
		{"zip", []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00notes.txt"), "application/zip"},
		{"docx", []byte("PK\x03\x04\x14\x00\x06\x00\x08\x00[Content_Types].xml....word/document.xml"), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{"tiff", []byte("II*\x00\x08\x00\x00\x00"), "image/tiff"},
		{"avif", []byte("\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf"), "image/avif"},
		{"heic", []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), "image/heic"},
		{"mp4", []byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"), "video/mp4"},
		{"elf", []byte("\x7fELF\x02\x01\x01"), "application/x-elf"},
		{"exe", []byte("MZ\x90\x00\x03"), "application/vnd.microsoft.portable-executable"},
		{"binary", []byte{0x00, 0x01, 0x02, 0xff}, "application/octet-stream"},
		{"empty", nil, "text/plain"},
	}
	for _, tt := range tests {
		if got := DetectType(tt.head); got != tt.want {
			t.Errorf("DetectType(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDisguisedAndAllowedTypes(t *testing.T) {
	for _, tt := range []struct {
		typ, ext string
		want     bool
	}{
		{"text/html", ".png", true}, {"text/html", ".html", false}, {"text/html", "", true},
		{"image/svg+xml", ".jpg", true}, {"image/svg+xml", ".svg", false},
		{"image/png", ".jpg", false}, {"text/plain", ".png", false},
	} {
		if got := disguised(tt.typ, tt.ext); got != tt.want {
			t.Errorf("disguised(%q, %q) = %v, want %v", tt.typ, tt.ext, got, tt.want)
		}
	}
	for _, tt := range []struct {
		typ     string
		allowed []string
		want    bool
	}{
		{"image/png", nil, true}, {"image/png", []string{"image/jpeg", "image/png"}, true},
		{"text/html", []string{"image/png"}, false}, {"image/webp", []string{"image/*"}, true},
		{"text/plain", []string{"image/*"}, false}, {"image/png", []string{" IMAGE/PNG "}, true},
	} {
		if got := typeAllowed(tt.typ, tt.allowed); got != tt.want {
			t.Errorf("typeAllowed(%q, %q) = %v, want %v", tt.typ, tt.allowed, got, tt.want)
		}
	}
}

func TestResizeGeometry(t *testing.T) {
	// A 400×200 source: red left half, blue right half, with a green top
	// row band and a yellow bottom band to tell the crops apart.
	src := image.NewRGBA(image.Rect(0, 0, 400, 200))
	for y := 0; y < 200; y++ {
		for x := 0; x < 400; x++ {
			c := color.RGBA{255, 0, 0, 255}
			if x >= 200 {
				c = color.RGBA{0, 0, 255, 255}
			}
			src.Set(x, y, c)
		}
	}
	tall := image.NewRGBA(image.Rect(0, 0, 100, 300))
	for y := 0; y < 300; y++ {
		for x := 0; x < 100; x++ {
			c := color.RGBA{128, 128, 128, 255}
			if y < 50 {
				c = color.RGBA{0, 255, 0, 255}
			} else if y >= 250 {
				c = color.RGBA{255, 255, 0, 255}
			}
			tall.Set(x, y, c)
		}
	}
	tests := []struct {
		name  string
		img   image.Image
		w, h  int
		mode  byte
		wantW int
		wantH int
		edge  color.RGBA // pixel at the middle of the top row ('b': bottom row)
	}{
		{"crop center", src, 100, 100, 0, 100, 100, color.RGBA{}},
		{"fit", src, 100, 100, 'f', 100, 50, color.RGBA{}},
		{"fit never enlarges", src, 1000, 1000, 'f', 400, 200, color.RGBA{}},
		{"height only", src, 0, 50, 0, 100, 50, color.RGBA{}},
		{"width only", src, 40, 0, 0, 40, 20, color.RGBA{}},
		{"upscale fill", src, 800, 800, 0, 800, 800, color.RGBA{}},
		{"top crop keeps the top", tall, 100, 100, 't', 100, 100, color.RGBA{0, 255, 0, 255}},
		{"bottom crop keeps the bottom", tall, 100, 100, 'b', 100, 100, color.RGBA{255, 255, 0, 255}},
		{"center crop drops both ends", tall, 100, 100, 0, 100, 100, color.RGBA{128, 128, 128, 255}},
	}
	for _, tt := range tests {
		got := resize(tt.img, tt.w, tt.h, tt.mode)
		b := got.Bounds()
		if b.Dx() != tt.wantW || b.Dy() != tt.wantH {
			t.Errorf("%s: resize to %dx%d%c = %dx%d, want %dx%d", tt.name, tt.w, tt.h, tt.mode, b.Dx(), b.Dy(), tt.wantW, tt.wantH)
			continue
		}
		if tt.edge != (color.RGBA{}) {
			y := 1
			if tt.mode == 'b' {
				y = b.Dy() - 2
			}
			if c := color.RGBAModel.Convert(got.At(b.Dx()/2, y)).(color.RGBA); c != tt.edge {
				t.Errorf("%s: edge pixel = %v, want %v", tt.name, c, tt.edge)
			}
		}
	}
	// The crop of the wide source keeps its middle: red on the left, blue
	// on the right.
	mid := resize(src, 100, 100, 0)
	if l, r := color.RGBAModel.Convert(mid.At(5, 50)).(color.RGBA), color.RGBAModel.Convert(mid.At(95, 50)).(color.RGBA); l.R < 200 || r.B < 200 {
		t.Errorf("center crop: left %v, right %v; want red then blue", l, r)
	}
}

func TestMakeThumbFormats(t *testing.T) {
	webp, err := os.ReadFile("testdata/gopher.webp")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		data     []byte
		size     string
		wantType string
		wantW    int
		wantH    int
	}{
		{"jpeg", encoded(t, "jpeg", 300, 200), "100x100", "image/jpeg", 100, 100},
		{"png", encoded(t, "png", 300, 200), "60x0", "image/png", 60, 40},
		{"gif first frame", encoded(t, "gif", 300, 200), "0x50", "image/gif", 75, 50},
		{"webp as png", webp, "50x50f", "image/png", 38, 50},
	}
	for _, tt := range tests {
		out, typ, err := makeThumb(tt.data, tt.size)
		if err != nil {
			t.Errorf("%s: makeThumb = %v", tt.name, err)
			continue
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(out))
		if typ != tt.wantType || err != nil || cfg.Width != tt.wantW || cfg.Height != tt.wantH {
			t.Errorf("%s: thumb %s = %s %dx%d (%v), want %s %dx%d", tt.name, tt.size, typ, cfg.Width, cfg.Height, err, tt.wantType, tt.wantW, tt.wantH)
		}
		if DetectType(out) != typ {
			t.Errorf("%s: thumb content is %s, labelled %s", tt.name, DetectType(out), typ)
		}
	}
	for _, bad := range [][]byte{[]byte("<html>"), []byte("%PDF-1.4"), encoded(t, "png", 2, 2)[:20]} {
		if _, _, err := makeThumb(bad, "100x100"); err != errNoThumb {
			t.Errorf("makeThumb(%q…) = %v, want errNoThumb", bad[:4], err)
		}
	}
}

func TestThumbAllowed(t *testing.T) {
	f := &underhood.Field{Type: underhood.FieldFile, Thumbs: []string{"200x100", "0x300", "50x50f"}}
	for size, want := range map[string]bool{
		"100x100": true, "200x100": true, "0x300": true, "50x50f": true,
		"300x300": false, "0x0": false, "100x100x": false, "-1x5": false, "99999x1": false, "0x300t": false,
	} {
		if got := thumbAllowed(f, size); got != want {
			t.Errorf("thumbAllowed(%q) = %v, want %v", size, got, want)
		}
	}
}
