package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	stddraw "image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"regexp"
	"strconv"
	"sync"
	"time"

	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp" // decode WebP sources

	"github.com/underhood/underhood"
)

// Thumbnails are made on the first request for a size and stored beside
// the file as thumbs_<name>/<size>_<name>; later requests read the stored
// one. Concurrent first requests for one thumbnail generate it once.

const (
	// defaultThumb is the size every image has, listed or not (the admin
	// UI's previews use it).
	defaultThumb = "100x100"
	// maxThumbSource bounds the bytes and pixels of a source image, so a
	// small file that decodes to a huge bitmap cannot exhaust memory.
	maxThumbSource = 64 << 20
	maxThumbPixels = 50_000_000
	// thumbTimeout bounds one generation, whoever waits for it.
	thumbTimeout = time.Minute
)

var thumbRe = regexp.MustCompile(`^(\d{1,4})x(\d{1,4})([tbf]?)$`)

// errNoThumb means the file is not an image a thumbnail can be made of;
// the original is served instead.
var errNoThumb = errors.New("files: no thumbnail for this file")

// thumbAllowed reports whether size may be generated for a file of f.
func thumbAllowed(f *underhood.Field, size string) bool {
	m := thumbRe.FindStringSubmatch(size)
	if m == nil || (m[1] == "0" && m[2] == "0") || (m[3] != "" && (m[1] == "0" || m[2] == "0")) {
		return false
	}
	return size == defaultThumb || contains(f.Thumbs, size)
}

// thumbnail returns the stored thumbnail of a file, generating it first
// when it does not exist yet.
func (s *Service) thumbnail(ctx context.Context, c *underhood.Collection, recordID, name, size string) (Object, error) {
	key := thumbsPrefix(c, recordID, name) + size + "_" + name
	obj, err := s.store.Open(ctx, key)
	if err == nil {
		return obj, nil
	}
	if !IsNotExist(err) {
		return nil, err
	}
	err = s.thumbs.do(ctx, key, func() error {
		// The generation outlives a requester that goes away: others may
		// wait for it, and the result is stored for every later request.
		gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), thumbTimeout)
		defer cancel()
		// Another node (or an earlier flight) may have made it meanwhile.
		if o, err := s.store.Open(gctx, key); err == nil {
			o.Close()
			return nil
		}
		return s.generateThumb(gctx, fileKey(c, recordID, name), key, size)
	})
	if err != nil {
		return nil, err
	}
	return s.store.Open(ctx, key)
}

// generateThumb makes the thumbnail size of the image at src and stores
// it under dst.
func (s *Service) generateThumb(ctx context.Context, src, dst, size string) error {
	obj, err := s.store.Open(ctx, src)
	if err != nil {
		return err
	}
	defer obj.Close()
	if obj.Info().Size > maxThumbSource {
		return errNoThumb
	}
	data, err := io.ReadAll(io.LimitReader(obj, maxThumbSource+1))
	if err != nil {
		return err
	}
	out, contentType, err := makeThumb(data, size)
	if err != nil {
		return err
	}
	s.thumbsMade.Add(1)
	return s.store.Put(ctx, dst, bytes.NewReader(out), int64(len(out)), contentType)
}

// makeThumb decodes a JPEG, PNG, GIF (first frame) or WebP image, resizes
// it to size and encodes it in the source's format (WebP as PNG: there is
// no WebP encoder in the standard library or x/image).
func makeThumb(data []byte, size string) ([]byte, string, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, "", errNoThumb
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > maxThumbPixels {
		return nil, "", errNoThumb
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, "", errNoThumb
	}
	m := thumbRe.FindStringSubmatch(size)
	if m == nil {
		return nil, "", fmt.Errorf("files: invalid thumb size %q", size)
	}
	w, _ := strconv.Atoi(m[1])
	h, _ := strconv.Atoi(m[2])
	var mode byte
	if m[3] != "" {
		mode = m[3][0]
	}
	thumb := resize(img, w, h, mode)
	var buf bytes.Buffer
	switch format {
	case "jpeg":
		err = jpeg.Encode(&buf, thumb, &jpeg.Options{Quality: 90})
		return buf.Bytes(), "image/jpeg", err
	case "gif":
		err = gif.Encode(&buf, thumb, &gif.Options{NumColors: 256})
		return buf.Bytes(), "image/gif", err
	default: // png, webp
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, thumb)
		return buf.Bytes(), "image/png", err
	}
}

// resize scales img for a thumbnail of w×h:
//
//	w×h   fill the box and crop the overflow around the center
//	w×ht  fill and crop keeping the top
//	w×hb  fill and crop keeping the bottom
//	w×hf  fit inside the box, no crop (never enlarged)
//	0×h   height h, width in proportion
//	w×0   width w, height in proportion
func resize(img image.Image, w, h int, mode byte) image.Image {
	b := img.Bounds()
	sw, sh := b.Dx(), b.Dy()
	src := b
	switch {
	case w == 0:
		w = max(1, int(math.Round(float64(sw)*float64(h)/float64(sh))))
	case h == 0:
		h = max(1, int(math.Round(float64(sh)*float64(w)/float64(sw))))
	case mode == 'f':
		if sw <= w && sh <= h {
			return img
		}
		ratio := math.Min(float64(w)/float64(sw), float64(h)/float64(sh))
		w = max(1, int(math.Round(float64(sw)*ratio)))
		h = max(1, int(math.Round(float64(sh)*ratio)))
	default:
		// Scale so the box is covered, then take the box out of the source.
		ratio := math.Max(float64(w)/float64(sw), float64(h)/float64(sh))
		cw := min(sw, max(1, int(math.Round(float64(w)/ratio))))
		ch := min(sh, max(1, int(math.Round(float64(h)/ratio))))
		x0 := b.Min.X + (sw-cw)/2
		y0 := b.Min.Y + (sh-ch)/2
		switch mode {
		case 't':
			y0 = b.Min.Y
		case 'b':
			y0 = b.Max.Y - ch
		}
		src = image.Rect(x0, y0, x0+cw, y0+ch)
	}
	img, src = shrink(img, src, w, h)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, src, draw.Src, nil)
	return dst
}

// shrink averages k×k blocks of the src part of img when that part is at
// least 4 times larger than w×h, leaving about twice the target size for
// the CatmullRom pass: scaling a photo down with the kernel alone is
// several times slower, and the box average loses nothing the final
// filter would keep.
func shrink(img image.Image, src image.Rectangle, w, h int) (image.Image, image.Rectangle) {
	k := min(src.Dx()/w, src.Dy()/h) / 2
	if k < 2 {
		return img, src
	}
	rgba := image.NewRGBA(image.Rect(0, 0, src.Dx(), src.Dy()))
	stddraw.Draw(rgba, rgba.Bounds(), img, src.Min, stddraw.Src)
	sw, sh := src.Dx()/k, src.Dy()/k
	out := image.NewRGBA(image.Rect(0, 0, sw, sh))
	area := uint32(k * k)
	for y := 0; y < sh; y++ {
		for x := 0; x < sw; x++ {
			var r, g, b, a uint32
			for yy := y * k; yy < (y+1)*k; yy++ {
				row := rgba.Pix[yy*rgba.Stride+x*k*4 : yy*rgba.Stride+(x+1)*k*4]
				for i := 0; i < len(row); i += 4 {
					r += uint32(row[i])
					g += uint32(row[i+1])
					b += uint32(row[i+2])
					a += uint32(row[i+3])
				}
			}
			o := y*out.Stride + x*4
			out.Pix[o] = uint8(r / area)
			out.Pix[o+1] = uint8(g / area)
			out.Pix[o+2] = uint8(b / area)
			out.Pix[o+3] = uint8(a / area)
		}
	}
	return out, out.Bounds()
}

// flight runs one function per key at a time; callers that arrive while
// it runs wait for its result instead of running it again.
type flight struct {
	mu    sync.Mutex
	calls map[string]*flightCall
}

type flightCall struct {
	done chan struct{}
	err  error
}

func (f *flight) do(ctx context.Context, key string, fn func() error) error {
	f.mu.Lock()
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		select {
		case <-c.done:
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.calls == nil {
		f.calls = map[string]*flightCall{}
	}
	c := &flightCall{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()

	c.err = fn()
	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
	close(c.done)
	return c.err
}

// ThumbsMade returns how many thumbnails this service has generated.
func (s *Service) ThumbsMade() int64 { return s.thumbsMade.Load() }
