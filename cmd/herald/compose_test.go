package main

import (
	"net"
	"os"
	"testing"

	"github.com/goccy/go-yaml"
)

// TestComposeTrustsOnlyNginx: in docker-compose.yml the herald replicas
// believe X-Forwarded-For only from nginx's own fixed address, not from
// a whole private range (where any container could claim any client
// address and dodge the per-IP limit).
func TestComposeTrustsOnlyNginx(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
			Networks    map[string]struct {
				IPv4 string `yaml:"ipv4_address"`
			} `yaml:"networks"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	nginx := f.Services["nginx"].Networks["default"].IPv4
	if net.ParseIP(nginx) == nil {
		t.Fatalf("nginx has no fixed address on the default network (got %q)", nginx)
	}
	n := 0
	for name, s := range f.Services {
		if _, ok := s.Environment["DATABASE_URL"]; !ok || name == "postgres" {
			continue
		}
		n++
		if got := s.Environment["HERALD_TRUSTED_PROXIES"]; got != nginx {
			t.Errorf("%s: HERALD_TRUSTED_PROXIES=%q, want only nginx's %s", name, got, nginx)
		}
	}
	if n < 2 {
		t.Fatalf("found %d herald services, want the two replicas", n)
	}
}
