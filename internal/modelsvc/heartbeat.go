package modelsvc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// heartbeat registers this replica with the gateway (POST
// GATEWAY/admin/replicas {"url","ttl_s"}) every third of the lease, once the
// models are ready, and stops when the service drains so that the lease
// lapses. Failures are logged and retried on the next beat.
func (s *Service) heartbeat() {
	every := s.cfg.HeartbeatTTL / 3
	client := &http.Client{Timeout: every}
	endpoint := strings.TrimRight(s.cfg.Gateway, "/") + "/admin/replicas"
	t := time.NewTicker(time.Second)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-s.bgCtx.Done():
			return
		case <-t.C:
		}
		if s.draining.Load() {
			return
		}
		if s.readyCheck(s.bgCtx) != nil {
			continue
		}
		self := s.advertiseURL()
		if self == "" {
			continue // not listening yet
		}
		err := s.beat(client, endpoint, self)
		switch {
		case err != nil && !failing:
			s.log.Warn("gateway heartbeat failed; will keep trying", "gateway", endpoint, "err", err)
			failing = true
		case err == nil && failing:
			s.log.Info("gateway heartbeat recovered", "gateway", endpoint)
			failing = false
		case err == nil:
			s.log.Debug("gateway heartbeat", "gateway", endpoint, "url", self)
		}
		t.Reset(every)
	}
}

func (s *Service) beat(client *http.Client, endpoint, self string) error {
	body, _ := json.Marshal(map[string]any{"url": self, "ttl_s": int(s.cfg.HeartbeatTTL.Seconds())})
	req, err := http.NewRequestWithContext(s.bgCtx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.cfg.AdminKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.AdminKey)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("gateway answered %s", resp.Status)
	}
	return nil
}

// advertiseURL is --advertise-url, or http(s)://ADDR once listening.
func (s *Service) advertiseURL() string {
	if s.cfg.AdvertiseURL != "" {
		return strings.TrimRight(s.cfg.AdvertiseURL, "/")
	}
	addr := s.srv.Addr()
	if addr == "" {
		return ""
	}
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "::" || host == "0.0.0.0" || host == "") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	scheme := "http"
	if s.cfg.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + addr
}
