package herald

// Revocation says why a stream's grant was taken back. It is the JSON body
// of the stream's last frame, "event: revoked", after which the server
// closes the stream. A client tells it apart from a network drop by that
// frame, and must not reconnect with the same credentials: they would be
// refused (401 or 403).
type Revocation struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}
