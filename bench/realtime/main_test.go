package main

import (
	"bytes"
	"os"
	"regexp"
	"runtime"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	floorSinkMain() // -floor runs this binary as its reading side
	os.Exit(m.Run())
}

// TestFloor runs -floor on a few streams: every byte written arrives
// (runFloor checks), and it prints a round's time.
func TestFloor(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("-floor is for Linux")
	}
	var out bytes.Buffer
	if err := runFloor(&out, 50, 512, 5); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^floor: 50 loopback streams, 512 bytes a write, \d+ writers: a round takes [\d.]+ ms`).Match(out.Bytes()) {
		t.Fatalf("floor printed: %s", out.Bytes())
	}
}

// TestHistogramBuckets checks that every latency falls in a bucket whose
// upper bound is above it and at most 3.2% (or 1µs) higher.
func TestHistogramBuckets(t *testing.T) {
	for us := time.Duration(0); us < 30*time.Minute; us = us*101/100 + time.Microsecond {
		d := us + 500*time.Nanosecond
		i := bucketOf(d)
		hi := bucketValue(i)
		if hi <= d || (hi > time.Duration(float64(d)*1.032) && hi-d > time.Microsecond) {
			t.Fatalf("bucketOf(%v) = %d, upper bound %v", d, i, hi)
		}
		if i > 0 && bucketValue(i-1) > d {
			t.Fatalf("bucketOf(%v) = %d, but bucket %d ends at %v", d, i, i-1, bucketValue(i-1))
		}
	}
}
