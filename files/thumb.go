package files

import (
	"bufio"
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

	"github.com/underhood/underhood"
)

// Thumbnails are made on the first request for a size and stored beside
// the file as thumbs_<name>/<size>_<name>; later requests read the stored
// one. Concurrent first requests for one thumbnail generate it once.
//
// An image is small on disk and large in memory: a 400 KB PNG of 7000×7000
// 16-bit pixels decodes to 392 MB. So before decoding, the image's header
// tells what decoding and scaling it would allocate (thumbsource.go), and
// an image past Options.ThumbMemory gets no thumbnail: the original is
// served, as PocketBase does when it cannot make one. And at most
// Options.ThumbJobs generations run at once; a request waits for a slot as
// long as its client does.

const (
	// defaultThumb is the size every image has, listed or not (the admin
	// UI's previews use it).
	defaultThumb = "100x100"
	// maxThumbSource bounds the bytes of a source image: decoding a larger
	// file takes long whatever its pixels cost.
	maxThumbSource = 64 << 20
	// codecState is what a decoder and an encoder allocate besides the
	// pixels (Huffman and zlib tables, row buffers), at most.
	codecState = 4 << 20
	// thumbTimeout bounds one generation, whoever waits for it.
	thumbTimeout = time.Minute
)

var thumbRe = regexp.MustCompile(`^(\d{1,4})x(\d{1,4})([tbf]?)$`)

// errNoThumb means no thumbnail is made of the file (not an image, or one
// too large to decode within the budget); the original is served instead.
var errNoThumb = errors.New("files: no thumbnail for this file")

// errThumbAbandoned means the request that was to generate a thumbnail
// went away while it waited for a slot; others waiting for the same
// thumbnail try again themselves.
var errThumbAbandoned = errors.New("files: thumbnail generation abandoned")

// thumbAllowed reports whether size may be generated for a file of f.
func thumbAllowed(f *underhood.Field, size string) bool {
	if _, _, _, err := parseThumbSize(size); err != nil {
		return false
	}
	return size == defaultThumb || contains(f.Thumbs, size)
}

// parseThumbSize splits a thumb size (see resize) into its box and mode.
func parseThumbSize(size string) (w, h int, mode byte, err error) {
	m := thumbRe.FindStringSubmatch(size)
	if m == nil || (m[1] == "0" && m[2] == "0") || (m[3] != "" && (m[1] == "0" || m[2] == "0")) {
		return 0, 0, 0, fmt.Errorf("files: invalid thumb size %q", size)
	}
	w, _ = strconv.Atoi(m[1])
	h, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		mode = m[3][0]
	}
	return w, h, mode, nil
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
	for {
		err = s.thumbs.do(ctx, key, func() error {
			return s.generateThumb(ctx, fileKey(c, recordID, name), key, size)
		})
		// The request generating it left before it had a slot: a request
		// still waiting for this thumbnail generates it itself.
		if errors.Is(err, errThumbAbandoned) && ctx.Err() == nil {
			continue
		}
		break
	}
	if err != nil {
		return nil, err
	}
	return s.store.Open(ctx, key)
}

// generateThumb makes the thumbnail size of the image at src and stores
// it under dst. It waits for a generation slot as long as ctx lives; once
// it has one, the generation outlives ctx: others may wait for it, and the
// result is stored for every later request.
func (s *Service) generateThumb(ctx context.Context, src, dst, size string) error {
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), thumbTimeout)
	defer cancel()
	// Another node (or an earlier flight) may have made it meanwhile.
	if o, err := s.store.Open(gctx, dst); err == nil {
		o.Close()
		return nil
	}
	obj, err := s.store.Open(gctx, src)
	if err != nil {
		return err
	}
	defer obj.Close()
	if obj.Info().Size > maxThumbSource {
		return errNoThumb
	}
	r := bufio.NewReader(obj)
	plan, err := planThumb(r, size, s.opts.ThumbMemory)
	if err != nil {
		return err
	}
	release, err := s.thumbSlot(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", errThumbAbandoned, err)
	}
	defer release()
	if s.thumbHook != nil {
		s.thumbHook()
	}
	if _, err := obj.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r.Reset(obj)
	out, contentType, err := plan.make(r)
	if err != nil {
		return err
	}
	s.thumbsMade.Add(1)
	return s.store.Put(gctx, dst, bytes.NewReader(out), int64(len(out)), contentType)
}

// thumbSlot waits for one of the Options.ThumbJobs generation slots, or
// for ctx to end; release gives the slot back.
func (s *Service) thumbSlot(ctx context.Context) (release func(), err error) {
	select {
	case s.thumbSlots <- struct{}{}:
		return func() { <-s.thumbSlots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// thumbPlan is a thumbnail to be made of an image whose header was read.
type thumbPlan struct {
	src  imageHeader
	w, h int
	mode byte
}

// planThumb reads the header of the image r starts with and returns the
// plan of its thumbnail size, or errNoThumb when r is not an image of a
// known format, or decoding and scaling it would take more than budget
// bytes.
func planThumb(r *bufio.Reader, size string, budget int64) (thumbPlan, error) {
	w, h, mode, err := parseThumbSize(size)
	if err != nil {
		return thumbPlan{}, err
	}
	src, err := readImageHeader(r)
	if err != nil {
		return thumbPlan{}, errNoThumb
	}
	p := thumbPlan{src: src, w: w, h: h, mode: mode}
	if p.cost() > budget {
		return thumbPlan{}, errNoThumb
	}
	return p, nil
}

// cost is how many bytes making the thumbnail allocates at most: the
// decoded image, the images resize makes, and the state of the decoder
// and the encoder.
func (p thumbPlan) cost() int64 {
	box := fitThumb(image.Rect(0, 0, p.src.width, p.src.height), p.w, p.h, p.mode)
	return p.src.decodeCost() + box.cost() + codecState
}

// make decodes the image r holds (JPEG, PNG, GIF's first frame or WebP),
// resizes it and encodes it in the source's format (WebP as PNG: there is
// no WebP encoder in the standard library or x/image).
func (p thumbPlan) make(r io.Reader) ([]byte, string, error) {
	img, err := p.src.decode(r)
	if err != nil {
		return nil, "", errNoThumb
	}
	b := img.Bounds()
	if b.Dx() > p.src.width || b.Dy() > p.src.height {
		// The cost was computed for the header's dimensions.
		return nil, "", errNoThumb
	}
	thumb := resize(img, p.w, p.h, p.mode)
	var buf bytes.Buffer
	switch p.src.format {
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
	box := fitThumb(img.Bounds(), w, h, mode)
	if box.keep {
		return img
	}
	k, kernel := box.scaling()
	img, src := shrink(img, box.src, k)
	dst := image.NewRGBA(image.Rect(0, 0, box.w, box.h))
	if kernel {
		draw.CatmullRom.Scale(dst, dst.Bounds(), img, src, draw.Src, nil)
	} else {
		draw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, src, draw.Src, nil)
	}
	return dst
}

// thumbBox is how a thumbnail is cut from an image: the part src, scaled
// to w×h; keep means the image is used as it is.
type thumbBox struct {
	src  image.Rectangle
	w, h int
	keep bool
}

// fitThumb returns the box of a thumbnail of w×h in mode (see resize) of
// an image of bounds b.
func fitThumb(b image.Rectangle, w, h int, mode byte) thumbBox {
	sw, sh := b.Dx(), b.Dy()
	src := b
	switch {
	case w == 0:
		w = max(1, int(math.Round(float64(sw)*float64(h)/float64(sh))))
	case h == 0:
		h = max(1, int(math.Round(float64(sh)*float64(w)/float64(sw))))
	case mode == 'f':
		if sw <= w && sh <= h {
			return thumbBox{src: b, w: sw, h: sh, keep: true}
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
	return thumbBox{src: src, w: w, h: h}
}

// kernelBuffer bounds the buffer of the CatmullRom scaler: 4 float64 per
// thumbnail column and source row, 8 MiB for a 100×100 thumbnail of 2600
// rows, 115 MB for a 1200×900 one of a 4000×3000 photo.
const kernelBuffer = 8 << 20

// scaling returns how resize scales the box: shrink's block side k (below
// 2: no shrink), and whether the CatmullRom kernel finishes the scaling.
// Usually shrink leaves about twice the thumbnail for the kernel. When the
// kernel's buffer would pass kernelBuffer, shrink averages blocks as large
// as the whole ratio and a bilinear pass, which needs no buffer, finishes.
func (b thumbBox) scaling() (k int, kernel bool) {
	ratio := min(b.src.Dx()/b.w, b.src.Dy()/b.h)
	k = ratio / 2
	rows := b.src.Dy()
	if k >= 2 {
		rows /= k
	}
	if 32*int64(b.w)*int64(rows) <= kernelBuffer {
		return k, true
	}
	return ratio, false
}

// cost is how many bytes resize and encoding allocate for the box: the
// thumbnail, shrink's strip and result, the kernel's buffer, and the
// encoded thumbnail.
func (b thumbBox) cost() int64 {
	w, h := int64(b.w), int64(b.h)
	if b.keep {
		return 8 * w * h
	}
	n := 4*w*h + 8*w*h
	k, kernel := b.scaling()
	rows := int64(b.src.Dy())
	if k >= 2 {
		sw, sh := int64(b.src.Dx()/k), int64(b.src.Dy()/k)
		n += 4*sw*sh + 4*sw*int64(k)*int64(k)
		rows = sh
	}
	if kernel {
		n += 32 * w * rows
	}
	return n
}

// shrink averages k×k blocks of the src part of img when k is at least 2
// (see thumbBox.scaling): scaling a photo down with the kernel alone is
// several times slower, and the box average loses nothing the final
// filter would keep. It converts k rows of the source at a time, so it
// never holds a second copy of a large image.
func shrink(img image.Image, src image.Rectangle, k int) (image.Image, image.Rectangle) {
	if k < 2 {
		return img, src
	}
	sw, sh := src.Dx()/k, src.Dy()/k
	out := image.NewRGBA(image.Rect(0, 0, sw, sh))
	strip := image.NewRGBA(image.Rect(0, 0, sw*k, k))
	area := uint32(k * k)
	for y := 0; y < sh; y++ {
		stddraw.Draw(strip, strip.Bounds(), img, image.Pt(src.Min.X, src.Min.Y+y*k), stddraw.Src)
		for x := 0; x < sw; x++ {
			var r, g, b, a uint32
			for yy := 0; yy < k; yy++ {
				row := strip.Pix[yy*strip.Stride+x*k*4 : yy*strip.Stride+(x+1)*k*4]
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
