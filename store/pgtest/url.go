package pgtest

import (
	"net/url"
	"strings"
)

// withDatabase returns the connection string u with its database replaced.
// Both URL and key=value forms are handled.
func withDatabase(u, db string) string {
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		p, err := url.Parse(u)
		if err == nil {
			p.Path = "/" + db
			return p.String()
		}
	}
	return u + " dbname=" + db
}
