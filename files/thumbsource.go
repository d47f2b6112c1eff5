package files

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/webp"
)

// This file reads the header of a source image and estimates what
// decoding it will allocate, so that a thumbnail is refused before the
// decoder allocates anything. The decoders of Go's standard library and
// x/image decode a whole image at its full size: none can decode JPEG at
// 1/2, 1/4 or 1/8 scale in the DCT, nor PNG one Adam7 pass or a row at a
// time. The estimate is therefore the full decoded image, per format and
// pixel layout, read from the header:
//
//	JPEG  the component planes at their sampling (1.5 bytes a pixel for
//	      4:2:0 colour, 3 for 4:4:4, 1 for grey), plus 4 bytes a sample
//	      for the coefficients of a progressive image, plus 4 a pixel when
//	      it is converted to RGBA or CMYK
//	PNG   the decoded pixels: 1 byte (grey, paletted) to 8 bytes (16-bit
//	      RGBA) a pixel; twice that when interlaced (each pass is decoded
//	      into an image of its own before being copied)
//	GIF   1 byte a pixel (the first frame, paletted)
//	WebP  2 bytes a pixel lossy, 8 lossy with alpha, 12 lossless (the
//	      decoder's ARGB words beside the image)

// imageHeader is what the header of an image says about decoding it.
type imageHeader struct {
	format        string // "jpeg", "png", "gif" or "webp"
	width, height int
	bytesPerPixel float64 // allocated by the decoder, at most
}

// decodeCost is how many bytes decoding the image allocates at most.
func (h imageHeader) decodeCost() int64 {
	return int64(math.Ceil(float64(h.width) * float64(h.height) * h.bytesPerPixel))
}

// decode decodes the image r holds, which must be of h's format.
func (h imageHeader) decode(r io.Reader) (image.Image, error) {
	switch h.format {
	case "jpeg":
		return jpeg.Decode(r)
	case "png":
		return png.Decode(r)
	case "gif":
		return gif.Decode(r) // the first frame
	case "webp":
		return webp.Decode(r)
	}
	return nil, errNoThumb
}

var (
	pngSignature = []byte("\x89PNG\r\n\x1a\n")
	errNotImage  = errors.New("files: not an image of a known format")
)

// readImageHeader reads the header at the start of r. It reads only the
// header: a JPEG's markers up to its frame header, the first chunk of a
// PNG, the screen descriptor of a GIF, the first chunk of a WebP.
func readImageHeader(r *bufio.Reader) (imageHeader, error) {
	head, _ := r.Peek(32)
	var (
		h   imageHeader
		cfg image.Config
		err error
	)
	switch {
	case bytes.HasPrefix(head, []byte{0xff, 0xd8}):
		h, err = readJPEGHeader(r)
		cfg = image.Config{Width: h.width, Height: h.height}
	case bytes.HasPrefix(head, pngSignature):
		cfg, err = png.DecodeConfig(r)
		h = imageHeader{format: "png", bytesPerPixel: pngBytesPerPixel(cfg.ColorModel)}
		// IHDR is the first chunk; its last byte is the interlace method.
		if len(head) > 28 && head[28] != 0 {
			h.bytesPerPixel *= 2
		}
	case bytes.HasPrefix(head, []byte("GIF87a")) || bytes.HasPrefix(head, []byte("GIF89a")):
		cfg, err = gif.DecodeConfig(r)
		h = imageHeader{format: "gif", bytesPerPixel: 1}
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		cfg, err = webp.DecodeConfig(r)
		h = imageHeader{format: "webp", bytesPerPixel: 12}
		switch cfg.ColorModel {
		case color.YCbCrModel:
			h.bytesPerPixel = 2
		case color.NYCbCrAModel:
			h.bytesPerPixel = 8
		}
	default:
		return imageHeader{}, errNotImage
	}
	if err != nil {
		return imageHeader{}, err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return imageHeader{}, errNotImage
	}
	h.width, h.height = cfg.Width, cfg.Height
	return h, nil
}

// pngBytesPerPixel is the size of a pixel of the image png.Decode returns
// for an image of color model m.
func pngBytesPerPixel(m color.Model) float64 {
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	switch m {
	case color.GrayModel:
		return 1
	case color.Gray16Model:
		return 2
	case color.RGBAModel, color.NRGBAModel:
		return 4
	}
	return 8 // RGBA64, NRGBA64
}

// readJPEGHeader reads the markers of a JPEG up to its frame header and
// returns what image/jpeg will allocate to decode it. Only the frames
// image/jpeg decodes are accepted: baseline, extended sequential and
// progressive Huffman.
func readJPEGHeader(r *bufio.Reader) (imageHeader, error) {
	var soi [2]byte
	if _, err := io.ReadFull(r, soi[:]); err != nil || soi != [2]byte{0xff, 0xd8} {
		return imageHeader{}, errNotImage
	}
	adobeRGB := false
	for {
		c, err := r.ReadByte()
		if err != nil || c != 0xff {
			return imageHeader{}, errNotImage
		}
		for c == 0xff { // fill bytes
			if c, err = r.ReadByte(); err != nil {
				return imageHeader{}, errNotImage
			}
		}
		if c == 0x01 || (c >= 0xd0 && c <= 0xd7) { // TEM, RSTn: no segment
			continue
		}
		var l [2]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return imageHeader{}, errNotImage
		}
		n := int(binary.BigEndian.Uint16(l[:])) - 2
		if n < 0 {
			return imageHeader{}, errNotImage
		}
		switch {
		case c == 0xc0 || c == 0xc1 || c == 0xc2:
			seg := make([]byte, n)
			if _, err := io.ReadFull(r, seg); err != nil {
				return imageHeader{}, errNotImage
			}
			return jpegFrame(seg, c == 0xc2, adobeRGB)
		case c == 0xee: // APP14: Adobe's colour transform
			seg := make([]byte, n)
			if _, err := io.ReadFull(r, seg); err != nil {
				return imageHeader{}, errNotImage
			}
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				adobeRGB = seg[11] == 0
			}
		case c >= 0xc3 && c <= 0xcf && c != 0xc4 && c != 0xc8 && c != 0xcc,
			c == 0xd8, c == 0xd9, c == 0xda:
			// Another coding (arithmetic, lossless, hierarchical), or no
			// frame header before the image data.
			return imageHeader{}, errNotImage
		default:
			if _, err := r.Discard(n); err != nil {
				return imageHeader{}, errNotImage
			}
		}
	}
}

// jpegFrame reads a frame header (SOF0–2): precision, height, width, and
// each component's id, sampling factors and table.
func jpegFrame(seg []byte, progressive, adobeRGB bool) (imageHeader, error) {
	if len(seg) < 6 {
		return imageHeader{}, errNotImage
	}
	h := imageHeader{
		format: "jpeg",
		height: int(binary.BigEndian.Uint16(seg[1:3])),
		width:  int(binary.BigEndian.Uint16(seg[3:5])),
	}
	n := int(seg[5])
	if (n != 1 && n != 3 && n != 4) || len(seg) < 6+3*n {
		return imageHeader{}, errNotImage
	}
	var ids []byte
	var hv []int
	hmax, vmax := 1, 1
	for i := range n {
		comp := seg[6+3*i:]
		hs, vs := int(comp[1]>>4), int(comp[1]&0x0f)
		if hs < 1 || hs > 4 || vs < 1 || vs > 4 {
			return imageHeader{}, errNotImage
		}
		ids = append(ids, comp[0])
		hv = append(hv, hs*vs)
		hmax, vmax = max(hmax, hs), max(vmax, vs)
	}
	// Samples a pixel over all components; a single component is decoded
	// at full size whatever its factors say.
	samples := 1.0
	if n > 1 {
		samples = 0
		for _, s := range hv {
			samples += float64(s) / float64(hmax*vmax)
		}
	}
	h.bytesPerPixel = samples
	if progressive {
		h.bytesPerPixel += 4 * samples // one int32 per coefficient
	}
	rgb := adobeRGB || (n == 3 && string(ids) == "RGB")
	if n == 4 || (n == 3 && rgb) {
		h.bytesPerPixel += 4 // converted to CMYK or RGBA
	}
	return h, nil
}
