package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestLoops(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "ok\n")
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	// A port nobody listens on: every connection fails.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()

	tests := []struct {
		name    string
		run     func(addr string) (result, error)
		addr    string
		wantOK  bool
		wantErr bool
	}{
		{"fixed rate", func(a string) (result, error) {
			return run(context.Background(), a, 200, 200*time.Millisecond, time.Second, 16)
		}, addr, true, false},
		{"flat out", func(a string) (result, error) {
			return flatOut(context.Background(), a, 2, 200*time.Millisecond, time.Second), nil
		}, addr, true, false},
		{"flat out, refused", func(a string) (result, error) {
			return flatOut(context.Background(), a, 1, 50*time.Millisecond, time.Second), nil
		}, dead, false, true},
	}
	for _, tc := range tests {
		res, err := tc.run(tc.addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if (res.OK > 0) != tc.wantOK || (res.Errors > 0) != tc.wantErr {
			t.Errorf("%s: ok %d errors %d (first %q), want ok>0 %v, errors>0 %v",
				tc.name, res.OK, res.Errors, res.FirstEr, tc.wantOK, tc.wantErr)
		}
		if res.OK > 0 && (res.P50us <= 0 || res.P99us < res.P50us) {
			t.Errorf("%s: p50 %v p99 %v", tc.name, res.P50us, res.P99us)
		}
	}
}
