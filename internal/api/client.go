package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Client talks to a running govs over its unix socket or a TCP address.
type Client struct {
	hc   *http.Client
	base string
}

// NewClient returns a client for addr: a unix socket path (starting with
// '/' or '.') or host:port / http://host:port.
func NewClient(addr string) *Client {
	if strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, ".") {
		tr := &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", addr)
			},
		}
		return &Client{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, base: "http://govs"}
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return &Client{hc: &http.Client{Timeout: 30 * time.Second}, base: strings.TrimRight(addr, "/")}
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e errBody
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// State fetches the director's state.
func (c *Client) State(ctx context.Context) (*State, error) {
	var st State
	return &st, c.do(ctx, "GET", "/api/v1/state", nil, &st)
}

// Conns fetches the connection table.
func (c *Client) Conns(ctx context.Context) ([]Conn, error) {
	var cs []Conn
	return cs, c.do(ctx, "GET", "/api/v1/conns", nil, &cs)
}

// Reload asks the director to reload its configuration file.
func (c *Client) Reload(ctx context.Context) error {
	return c.do(ctx, "POST", "/api/v1/reload", nil, nil)
}

// ChangeService enables or disables a service.
func (c *Client) ChangeService(ctx context.Context, ch ServiceChange) error {
	return c.do(ctx, "POST", "/api/v1/service", ch, nil)
}

// SetTimeouts changes the connection timeouts (ipvsadm --set; 0 keeps a
// value).
func (c *Client) SetTimeouts(ctx context.Context, t Timeouts) error {
	return c.do(ctx, "POST", "/api/v1/timeouts", t, nil)
}

// SetBGPAnnounce withdraws every BGP route (false) or announces them
// again (true).
func (c *Client) SetBGPAnnounce(ctx context.Context, announce bool) error {
	return c.do(ctx, "POST", "/api/v1/bgp", BGPChange{Announce: &announce}, nil)
}

// ChangeRealServer changes a real server's weight or enabled state.
func (c *Client) ChangeRealServer(ctx context.Context, ch RealServerChange) error {
	return c.do(ctx, "POST", "/api/v1/realserver", ch, nil)
}

// PushConfig sends the configuration files to the sync peers now.
func (c *Client) PushConfig(ctx context.Context, force bool) ([]ConfigSyncPeer, error) {
	var out []ConfigSyncPeer
	err := c.do(ctx, "POST", "/api/v1/config/push", ConfigPush{Force: force}, &out)
	return out, err
}
