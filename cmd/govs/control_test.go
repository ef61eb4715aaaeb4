package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/govs/govs/internal/api"
)

func TestParseTimeouts(t *testing.T) {
	for in, want := range map[string]api.Timeouts{
		"900,120,300": {TCP: 900, TCPFin: 120, UDP: 300},
		"0,0,30":      {UDP: 30},
		" 60, 0 ,0":   {TCP: 60},
	} {
		if got, err := parseTimeouts(in); err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"900,120":         "three values",
		"1,2,3,4":         "three values",
		"900,x,300":       `"x" is not a whole number`,
		"-1,0,0":          `"-1" is not a whole number`,
		"1.5,0,0":         `"1.5" is not a whole number`,
		"0,0,18446744074": `"18446744074" is not a whole number of seconds 0..10000000`,
		"0,0,0":           "nothing to change",
	} {
		if _, err := parseTimeouts(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: err %v, want %q", in, err, msg)
		}
	}
}

func TestSetTimeoutsGoesAlone(t *testing.T) {
	var out, errb bytes.Buffer
	if code := cmdSet([]string{"-t", "192.0.2.1:80", "--timeouts", "1,2,3"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--timeouts goes alone") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := cmdSet([]string{"--timeouts", "1,2"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `--timeouts "1,2": want three values`) {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}
