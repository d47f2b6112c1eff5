package record_test

import (
	"context"
	"testing"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/record"
)

// TestBatchFollowsTheSettings: the batch settings decide whether a batch
// runs and how many operations it may hold; a refused batch runs nothing.
func TestBatchFollowsTheSettings(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	su := s.SystemRequest().Auth
	if _, err := s.UpdateSettings(ctx, su, []byte(`{"batch":{"enabled":true,"maxRequests":3,"timeout":3}}`)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		n    int
		want string
	}{
		{"within the limit", 3, ""},
		{"no operation", 0, underhood.EInvalid},
		{"over the limit", 4, underhood.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran := false
			err := s.Batch(ctx, tt.n, func(*record.Tx) error { ran = true; return nil })
			if got := underhood.ErrorCode(err); got != tt.want {
				t.Fatalf("Batch(%d operations) = %v, want code %q", tt.n, err, tt.want)
			}
			if ran != (tt.want == "") {
				t.Errorf("Batch(%d operations) ran = %v, want %v", tt.n, ran, tt.want == "")
			}
		})
	}
	if _, err := s.UpdateSettings(ctx, su, []byte(`{"batch":{"enabled":false}}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckBatchEnabled(); underhood.ErrorCode(err) != underhood.EForbidden {
		t.Errorf("CheckBatchEnabled() with batches disabled = %v, want %s", err, underhood.EForbidden)
	}
	err := s.Batch(ctx, 1, func(*record.Tx) error { t.Error("a disabled batch ran"); return nil })
	if underhood.ErrorCode(err) != underhood.EForbidden {
		t.Errorf("Batch() with batches disabled = %v, want %s", err, underhood.EForbidden)
	}
}
