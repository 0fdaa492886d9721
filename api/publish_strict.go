package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// Field names of a published event and of the {"events":[...]} wrapper.
var (
	eventFields   = []string{"channel", "type", "data"}
	wrapperFields = []string{"events"}
)

// parsePublishBody reads a POST /v1/events body strictly: one event
// object, an array of them, or {"events":[...]}. Field names must match
// exactly, once each. encoding/json alone matches names case-insensitively
// and keeps the last duplicate, so {"channel":"a","Channel":"private-x"}
// would publish to private-x while a proxy or log reads "a".
func parsePublishBody(body []byte) ([]publishEvent, error) {
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		return nil, badRequest("invalid_body", "the body is not valid JSON: "+truncate(fmt.Sprint(err), 200))
	}
	var items []json.RawMessage
	switch body[0] {
	case '[':
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, badRequest("invalid_body", "the body is not valid JSON: "+truncate(err.Error(), 200))
		}
	case '{':
		fields, err := objectFields(body, append(slices.Clip(eventFields), wrapperFields...))
		if err != nil {
			return nil, err
		}
		raw, wrapped := fields["events"]
		if !wrapped {
			items = []json.RawMessage{body}
			break
		}
		if len(fields) > 1 {
			return nil, badRequest("invalid_body", `a body with "events" may have no other field`)
		}
		if err := json.Unmarshal(raw, &items); err != nil || !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("[")) {
			return nil, badRequest("invalid_body", `"events" must be an array of event objects`)
		}
	default:
		return nil, badRequest("invalid_body", `the body must be an event object, an array of them, or {"events":[...]}`)
	}
	list := make([]publishEvent, 0, len(items))
	for i, raw := range items {
		e, err := parseEvent(raw)
		if err != nil {
			if len(items) > 1 {
				err.Message = fmt.Sprintf("event %d: %s", i, err.Message)
			}
			return nil, err
		}
		list = append(list, e)
	}
	return list, nil
}

// parseEvent reads one event object with exact field names.
func parseEvent(raw json.RawMessage) (publishEvent, *Error) {
	var e publishEvent
	fields, err := objectFields(raw, eventFields)
	if err != nil {
		return e, err
	}
	for name, dst := range map[string]*string{"channel": &e.Channel, "type": &e.Type} {
		if v, ok := fields[name]; ok {
			if json.Unmarshal(v, dst) != nil {
				return e, badRequest("invalid_body", fmt.Sprintf("%q must be a string", name))
			}
		}
	}
	e.Data = fields["data"]
	return e, nil
}

// objectFields splits a JSON object into its fields, refusing names not in
// allowed (compared exactly) and names given twice.
func objectFields(raw []byte, allowed []string) (map[string]json.RawMessage, *Error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, badRequest("invalid_body", "each event must be a JSON object")
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return nil, badRequest("invalid_body", "the body is not valid JSON")
		}
		if !slices.Contains(allowed, name) {
			return nil, badRequest("unknown_field", fmt.Sprintf("unknown field %q; the fields are %v, spelled exactly so (lower case)", truncate(name, 40), allowed))
		}
		if _, dup := out[name]; dup {
			return nil, badRequest("duplicate_field", fmt.Sprintf("field %q appears twice", name))
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, badRequest("invalid_body", "the body is not valid JSON: "+truncate(err.Error(), 200))
		}
		out[name] = v
	}
	return out, nil
}
