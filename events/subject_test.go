package events

import "testing"

func TestSubjectMatches(t *testing.T) {
	tests := []struct {
		pattern, subject string
		want             bool
	}{
		{"underhood.>", "underhood.posts.create", true},
		{"underhood.>", "underhood", false},
		{">", "underhood.posts.create", true},
		{"underhood.*.create", "underhood.posts.create", true},
		{"underhood.*.create", "underhood.posts.update", false},
		{"underhood.posts.*", "underhood.posts.delete", true},
		{"underhood.posts.*", "underhood.users.delete", false},
		{"underhood.posts", "underhood.posts.create", false},
		{"underhood.posts.create.x", "underhood.posts.create", false},
		{"underhood.posts.create", "underhood.posts.create", true},
	}
	for _, tt := range tests {
		if got := subjectMatches(tt.pattern, tt.subject); got != tt.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", tt.pattern, tt.subject, got, tt.want)
		}
	}
}
