package main

import (
	"bytes"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name  string
		stats []progStats
		want  string
	}{
		{"none", nil, ""},
		{"two", []progStats{{ID: 7, Name: "govs_lb", RunCount: 10, RuntimeNS: 2800}, {ID: 9, RunCount: 1, RuntimeNS: 50}},
			"7 govs_lb 10 2800\n9 - 1 50\n"},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		write(&b, tc.stats)
		if b.String() != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, b.String(), tc.want)
		}
	}
}
