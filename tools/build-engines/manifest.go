package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hy3d/hy3d/engines"
)

// The manifest is edited in place rather than re-encoded from
// engines.Manifest, so that its key order, its number formatting and any
// field this tool does not know survive; only graphs.<name>.plan changes.

// object is a JSON object that remembers the order of its keys.
type object struct {
	keys []string
	vals map[string]json.RawMessage
}

func parseObject(raw []byte) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("want a JSON object, found %v", tok)
	}
	o := &object{vals: map[string]json.RawMessage{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("want an object key, found %v", tok)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("value of %q: %w", key, err)
		}
		o.set(key, v)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON object")
	}
	return o, nil
}

func (o *object) set(key string, v json.RawMessage) {
	if _, ok := o.vals[key]; !ok {
		o.keys = append(o.keys, key)
	}
	o.vals[key] = v
}

func (o *object) marshal() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		key, _ := json.Marshal(k) // a string always marshals
		b.Write(key)
		b.WriteByte(':')
		b.Write(o.vals[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

// child parses the object under key.
func (o *object) child(key string) (*object, error) {
	raw, ok := o.vals[key]
	if !ok {
		return nil, fmt.Errorf("no %q", key)
	}
	c, err := parseObject(raw)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", key, err)
	}
	return c, nil
}

// indent formats JSON the way the manifests are written (two spaces, one
// value per line, a final newline).
func indent(raw []byte) ([]byte, error) {
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, err
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// setPlan returns the manifest with graphs.<graph>.plan set to plan.
func setPlan(manifest []byte, graph string, plan engines.Plan) ([]byte, error) {
	top, err := parseObject(manifest)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	graphs, err := top.child("graphs")
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	g, err := graphs.child(graph)
	if err != nil {
		return nil, fmt.Errorf("manifest graphs: %w", err)
	}
	var enc bytes.Buffer
	e := json.NewEncoder(&enc)
	e.SetEscapeHTML(false)
	if err := e.Encode(plan); err != nil {
		return nil, fmt.Errorf("plan record: %w", err)
	}
	g.set("plan", bytes.TrimSpace(enc.Bytes()))
	graphs.set(graph, g.marshal())
	top.set("graphs", graphs.marshal())
	return indent(top.marshal())
}

// recordPlan writes plan into dir/manifest.json, replacing the file
// atomically so that an interrupted build never leaves half a manifest.
func recordPlan(dir, graph string, plan engines.Plan) error {
	path := filepath.Join(dir, "manifest.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	updated, err := setPlan(raw, graph, plan)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	var check engines.Manifest
	if err := json.Unmarshal(updated, &check); err != nil {
		return fmt.Errorf("%s: the updated manifest does not parse: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, ".manifest-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(updated); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if info, err := os.Stat(path); err == nil {
		if err := os.Chmod(tmp.Name(), info.Mode().Perm()); err != nil {
			return err
		}
	}
	return os.Rename(tmp.Name(), path)
}
