//go:build race

package filter_test

// raceEnabled reports a build with the race detector, under which the
// differential test, which has no concurrency to check, runs fewer filters.
const raceEnabled = true
