package files

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"
)

// BenchmarkMakeThumb is the thumbnail generation rate without HTTP or
// storage: decode a 1200×800 JPEG, scale and crop to 100×100, encode.
func BenchmarkMakeThumb(b *testing.B) {
	data := encodedTB(b, "jpeg", 1200, 800)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := makeThumb(data, "100x100"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkThumbSteps(b *testing.B) {
	data := encodedTB(b, "jpeg", 1200, 800)
	img, _, _ := image.Decode(bytes.NewReader(data))
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			image.Decode(bytes.NewReader(data))
		}
	})
	b.Run("resize", func(b *testing.B) {
		for b.Loop() {
			resize(img, 100, 100, 0)
		}
	})
	small := resize(img, 100, 100, 0)
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			jpeg.Encode(&bytes.Buffer{}, small, &jpeg.Options{Quality: 90})
		}
	})
}
