package files

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color/palette"
	stddraw "image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record/recordtest"
	"github.com/underhood/underhood/sqlstore"
	"github.com/underhood/underhood/sqlstore/sqlite"
)

// thumbEnv is a file service over a local storage and a "docs" collection
// whose image field lists a few thumbnail sizes; records live only in
// memory (Serve needs no more).
type thumbEnv struct {
	svc  *Service
	coll *underhood.Collection
}

func newThumbEnv(t *testing.T, opts Options) *thumbEnv {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	records := recordtest.Open(t, sqlstore.Config{Dialect: sqlite.Dialect{}, Dir: t.TempDir()}, log)
	st, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts.SweepInterval = -1
	svc := New(st, records, log, opts)
	t.Cleanup(svc.Close)
	coll := &underhood.Collection{ID: "docs0000000000x", Name: "docs", Fields: []*underhood.Field{
		{Name: "image", Type: underhood.FieldFile, Thumbs: []string{"50x50", "40x0", "0x30", "30x20t", "60x60f"}},
	}}
	return &thumbEnv{svc: svc, coll: coll}
}

// put stores data as the image of a new record and returns the record.
func (e *thumbEnv) put(t *testing.T, id, name string, data []byte) *underhood.Record {
	t.Helper()
	r := underhood.NewRecord(e.coll)
	r.Data["id"] = id
	r.Data["image"] = name
	if err := e.svc.store.Put(context.Background(), fileKey(e.coll, id, name), bytes.NewReader(data), int64(len(data)), ""); err != nil {
		t.Fatal(err)
	}
	return r
}

// get asks Serve for the file name of r with the query q.
func (e *thumbEnv) get(t *testing.T, r *underhood.Record, name, query string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/api/files/docs/"+r.ID()+"/"+name+"?"+query, nil)
	w := httptest.NewRecorder()
	if err := e.svc.Serve(w, req, r, name); err != nil {
		t.Fatalf("Serve(%s?%s) = %v", name, query, err)
	}
	return w
}

// makeThumb makes the thumbnail size of the image data within the default
// budget, as a generation does.
func makeThumb(data []byte, size string) ([]byte, string, error) {
	plan, err := planThumb(bufio.NewReader(bytes.NewReader(data)), size, DefaultThumbMemory)
	if err != nil {
		return nil, "", err
	}
	return plan.make(bytes.NewReader(data))
}

// bombPNG returns a w×h PNG of 16-bit RGBA (8 bytes a pixel once decoded)
// whose pixels are all zero, so that it compresses about a thousand to
// one: a 7000×7000 one is a few hundred KB and decodes to 392 MB. Every
// byte of the image data is zero, so one row compressed and flushed to a
// byte boundary can be repeated for every row (a back-reference reaches
// zeros whatever precedes it); the image is never held nor compressed
// whole.
func bombPNG(w, h int) []byte {
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&out, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		io.WriteString(crc, typ)
		crc.Write(data)
		out.WriteString(typ)
		out.Write(data)
		binary.Write(&out, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 16, 6 // bit depth 16, truecolour with alpha
	chunk("IHDR", ihdr)

	rowLen := 1 + w*8 // filter type 0, then the samples
	var row bytes.Buffer
	fw, _ := flate.NewWriter(&row, flate.BestCompression)
	fw.Write(make([]byte, rowLen))
	fw.Flush()                 // ends the row's blocks on a byte boundary, not the last
	idat := []byte{0x78, 0xda} // zlib header: deflate, 32 KiB window
	for range h {
		idat = append(idat, row.Bytes()...)
	}
	idat = append(idat, 0x01, 0x00, 0x00, 0xff, 0xff) // an empty final block
	// Adler-32 of n zero bytes: a stays 1, b adds it n times.
	n := uint32((int64(rowLen) * int64(h)) % 65521)
	idat = binary.BigEndian.AppendUint32(idat, n<<16|1)
	chunk("IDAT", idat)
	chunk("IEND", nil)
	return out.Bytes()
}

// bombOnce is the 7000×7000 bomb, made once for the tests that use it.
var bombOnce = sync.OnceValue(func() []byte { return bombPNG(7000, 7000) })

// TestThumbDecompressionBomb (H4): a 7000×7000 16-bit PNG of a few hundred
// KB would take 392 MB to decode; asking for its thumbnails serves the
// original file and never allocates the image.
func TestThumbDecompressionBomb(t *testing.T) {
	start := time.Now()
	bomb := bombOnce()
	t.Logf("bomb: %d bytes, made in %v", len(bomb), time.Since(start))
	e := newThumbEnv(t, Options{})
	r := e.put(t, "bomb00000000001", "bomb.png", bomb)

	for _, size := range []string{"100x100", "50x50", "40x0", "60x60f"} {
		t.Run(size, func(t *testing.T) {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			w := e.get(t, r, "bomb.png", "thumb="+size)
			runtime.ReadMemStats(&after)
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "image/png" || !bytes.Equal(w.Body.Bytes(), bomb) {
				t.Errorf("thumb=%s of the bomb = %d %s, %d bytes; want 200 image/png with the original %d bytes",
					size, w.Code, w.Header().Get("Content-Type"), w.Body.Len(), len(bomb))
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("thumb=%s of the bomb allocated %d MiB, want < 64 MiB", size, alloc>>20)
			}
		})
	}
	if n := e.svc.ThumbsMade(); n != 0 {
		t.Errorf("made %d thumbnails of the bomb, want 0", n)
	}
}

// TestThumbConcurrency (H4): however many first requests for thumbnails
// arrive at once, no more than Options.ThumbJobs are generated at a time,
// and every request still gets its thumbnail.
func TestThumbConcurrency(t *testing.T) {
	const jobs, requests = 2, 8
	e := newThumbEnv(t, Options{ThumbJobs: jobs})
	var running, peak atomic.Int32
	e.svc.thumbHook = func() {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond) // long enough for the others to pile up
		running.Add(-1)
	}
	img := encoded(t, "png", 300, 200)
	var wg sync.WaitGroup
	codes := make([]int, requests)
	for i := range requests {
		r := e.put(t, fmt.Sprintf("rec%012d", i), "a.png", img)
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest(http.MethodGet, "/x?thumb=50x50", nil)
			w := httptest.NewRecorder()
			if err := e.svc.Serve(w, req, r, "a.png"); err != nil {
				t.Errorf("Serve = %v", err)
			}
			codes[i] = w.Code
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > jobs || p == 0 {
		t.Errorf("%d concurrent thumbnail requests ran %d generations at once, want at most %d", requests, p, jobs)
	}
	if n := e.svc.ThumbsMade(); n != requests {
		t.Errorf("made %d thumbnails, want %d", n, requests)
	}
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d = %d, want 200", i, c)
		}
	}
}

// TestThumbSlotWaitEndsWithRequest (H4): a request waiting for a
// generation slot gives up when its client goes away, and one that
// waited for another's abandoned generation still gets its thumbnail.
func TestThumbSlotWaitEndsWithRequest(t *testing.T) {
	e := newThumbEnv(t, Options{ThumbJobs: 1})
	release := make(chan struct{})
	var calls atomic.Int32
	e.svc.thumbHook = func() {
		if calls.Add(1) == 1 {
			<-release // the first generation holds the only slot
		}
	}
	img := encoded(t, "png", 120, 80)
	busy := e.put(t, "busy00000000001", "a.png", img)
	waiting := e.put(t, "wait00000000001", "a.png", img)

	done := make(chan int)
	go func() { done <- e.get(t, busy, "a.png", "thumb=50x50").Code }()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := e.svc.thumbnail(ctx, e.coll, waiting.ID(), "a.png", "50x50"); err == nil {
		t.Errorf("thumbnail with the only slot taken and a 100 ms context = nil error, want the context's")
	}
	close(release)
	if code := <-done; code != http.StatusOK {
		t.Errorf("the request holding the slot = %d, want 200", code)
	}
	if w := e.get(t, waiting, "a.png", "thumb=50x50"); w.Code != http.StatusOK || w.Header().Get("Content-Type") != "image/png" {
		t.Errorf("thumb after the slot was freed = %d %s, want 200 image/png", w.Code, w.Header().Get("Content-Type"))
	}
	if n := e.svc.ThumbsMade(); n != 2 {
		t.Errorf("made %d thumbnails, want 2", n)
	}
}

// TestThumbCostCoversDecoding: the cost planThumb computes from an image's
// header is no less than what making the thumbnail allocates, for each
// format and pixel layout (a budget that an image's real cost exceeded
// would not bound memory).
func TestThumbCostCoversDecoding(t *testing.T) {
	const w, h = 300, 225
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(i * 7)
	}
	layouts := []struct {
		name string
		img  image.Image
	}{
		{"rgba", rgba},
		{"nrgba64", image.NewNRGBA64(rgba.Rect)},
		{"gray", image.NewGray(rgba.Rect)},
		{"paletted", image.NewPaletted(rgba.Rect, palette.Plan9)},
	}
	for _, l := range layouts {
		stddraw.Draw(l.img.(stddraw.Image), l.img.Bounds(), rgba, image.Point{}, stddraw.Src)
	}
	type source struct {
		name string
		data []byte
	}
	var sources []source
	for _, l := range layouts {
		var b bytes.Buffer
		png.Encode(&b, l.img)
		sources = append(sources, source{"png " + l.name, b.Bytes()})
	}
	for _, l := range []int{0, 2} { // colour and grey (as decoded)
		l := layouts[l]
		var b bytes.Buffer
		jpeg.Encode(&b, l.img, nil)
		sources = append(sources, source{"jpeg " + l.name, b.Bytes()})
	}
	var g bytes.Buffer
	gif.Encode(&g, rgba, nil)
	sources = append(sources, source{"gif", g.Bytes()})
	webpData, err := os.ReadFile("testdata/gopher.webp")
	if err != nil {
		t.Fatal(err)
	}
	sources = append(sources, source{"webp lossless", webpData})
	type job struct {
		src  source
		size string
	}
	var jobs []job
	for _, src := range sources {
		for _, size := range []string{"50x50", "280x280f", "450x450"} {
			jobs = append(jobs, job{src, size})
		}
	}
	// A large thumbnail, whose kernel buffer would pass kernelBuffer, is
	// box-averaged and finished bilinearly.
	var big bytes.Buffer
	jpeg.Encode(&big, image.NewGray(image.Rect(0, 0, 2000, 1500)), nil)
	jobs = append(jobs, job{source{"jpeg gray 2000x1500", big.Bytes()}, "1000x0"})

	for _, j := range jobs {
		src, size := j.src, j.size
		{
			plan, err := planThumb(bufio.NewReader(bytes.NewReader(src.data)), size, 1<<40)
			if err != nil {
				t.Errorf("%s: planThumb(%s) = %v", src.name, size, err)
				continue
			}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			if _, _, err := plan.make(bytes.NewReader(src.data)); err != nil {
				t.Errorf("%s: make(%s) = %v", src.name, size, err)
			}
			runtime.ReadMemStats(&after)
			alloc := int64(after.TotalAlloc - before.TotalAlloc)
			t.Logf("%s %s: cost %d KiB, allocated %d KiB", src.name, size, plan.cost()>>10, alloc>>10)
			if alloc > plan.cost() {
				t.Errorf("%s thumb %s allocated %d KiB, estimated %d KiB", src.name, size, alloc>>10, plan.cost()>>10)
			}
		}
	}
}

// TestThumbMemoryOption: an image whose thumbnail would cost more than
// Options.ThumbMemory is served as it is; a smaller one gets its
// thumbnail.
func TestThumbMemoryOption(t *testing.T) {
	e := newThumbEnv(t, Options{ThumbMemory: 8 << 20})
	large := encoded(t, "png", 1600, 1200) // 7.7 MB decoded
	small := encoded(t, "png", 300, 200)
	tests := []struct {
		name      string
		data      []byte
		wantThumb bool
	}{
		{"large", large, false},
		{"small", small, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.put(t, fmt.Sprintf("mem%012d", i), "a.png", tt.data)
			w := e.get(t, r, "a.png", "thumb=50x50")
			gotThumb := !bytes.Equal(w.Body.Bytes(), tt.data)
			if w.Code != http.StatusOK || gotThumb != tt.wantThumb {
				t.Errorf("thumb=50x50 of %s = %d, %d bytes (thumbnail: %v), want 200 and thumbnail %v", tt.name, w.Code, w.Body.Len(), gotThumb, tt.wantThumb)
			}
		})
	}
}

func TestReadJPEGHeader(t *testing.T) {
	// frame builds SOI, optional segments, and a frame header of marker
	// sof for a 4000×3000 image with the given components (id, factors).
	frame := func(sof byte, pre []byte, comps ...[2]byte) []byte {
		b := append([]byte{0xff, 0xd8}, pre...)
		seg := []byte{8, 0x0b, 0xb8, 0x0f, 0xa0, byte(len(comps))}
		for _, c := range comps {
			seg = append(seg, c[0], c[1], 0)
		}
		b = append(b, 0xff, sof, byte((len(seg)+2)>>8), byte(len(seg)+2))
		return append(b, seg...)
	}
	app0 := []byte{0xff, 0xe0, 0, 6, 'J', 'F', 'I', 'F'}
	adobe := []byte{0xff, 0xee, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 0}
	y420 := [][2]byte{{1, 0x22}, {2, 0x11}, {3, 0x11}}
	tests := []struct {
		name string
		data []byte
		bpp  float64 // 0: refused
	}{
		{"baseline 4:2:0", frame(0xc0, app0, y420...), 1.5},
		{"progressive 4:2:0", frame(0xc2, app0, y420...), 7.5},
		{"4:4:4", frame(0xc0, nil, [2]byte{1, 0x11}, [2]byte{2, 0x11}, [2]byte{3, 0x11}), 3},
		{"grey", frame(0xc1, nil, [2]byte{1, 0x22}), 1},
		{"RGB by ids", frame(0xc0, nil, [2]byte{'R', 0x11}, [2]byte{'G', 0x11}, [2]byte{'B', 0x11}), 7},
		{"RGB by Adobe", frame(0xc0, adobe, [2]byte{1, 0x11}, [2]byte{2, 0x11}, [2]byte{3, 0x11}), 7},
		{"CMYK", frame(0xc0, adobe, [2]byte{1, 0x11}, [2]byte{2, 0x11}, [2]byte{3, 0x11}, [2]byte{4, 0x11}), 8},
		{"arithmetic", frame(0xc9, nil, y420...), 0},
		{"lossless", frame(0xc3, nil, y420...), 0},
		{"two components", frame(0xc0, nil, [2]byte{1, 0x11}, [2]byte{2, 0x11}), 0},
		{"factor 0", frame(0xc0, nil, [2]byte{1, 0x01}), 0},
		{"truncated", frame(0xc0, app0, y420...)[:12], 0},
		{"scan before frame", []byte{0xff, 0xd8, 0xff, 0xda, 0, 2}, 0},
	}
	for _, tt := range tests {
		h, err := readImageHeader(bufio.NewReader(bytes.NewReader(tt.data)))
		switch {
		case tt.bpp == 0 && err == nil:
			t.Errorf("%s: readImageHeader = %+v, want an error", tt.name, h)
		case tt.bpp != 0 && (err != nil || h.bytesPerPixel != tt.bpp || h.width != 4000 || h.height != 3000):
			t.Errorf("%s: readImageHeader = %+v, %v; want 4000×3000 at %g bytes a pixel", tt.name, h, err, tt.bpp)
		}
	}
}

// TestThumbCostOfPhotos: the thumbnails photos usually get fit in the
// default budget: small ones of a 24 MP photo, large ones of a 12 MP one.
func TestThumbCostOfPhotos(t *testing.T) {
	tests := []struct {
		name  string
		photo imageHeader
		sizes []string
	}{
		{"24 MP", imageHeader{format: "jpeg", width: 6000, height: 4000, bytesPerPixel: 1.5}, []string{"100x100", "300x300f", "1200x0"}},
		{"12 MP", imageHeader{format: "jpeg", width: 4000, height: 3000, bytesPerPixel: 1.5}, []string{"100x100", "0x1200", "1920x1080"}},
	}
	for _, tt := range tests {
		for _, size := range tt.sizes {
			w, h, mode, err := parseThumbSize(size)
			if err != nil {
				t.Fatal(err)
			}
			p := thumbPlan{src: tt.photo, w: w, h: h, mode: mode}
			if c := p.cost(); c > DefaultThumbMemory {
				t.Errorf("thumb %s of a %s 4:2:0 JPEG costs %d MiB, want at most the default %d MiB", size, tt.name, c>>20, DefaultThumbMemory>>20)
			}
		}
	}
}
