package ort

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseModelIOReadsTestdata(t *testing.T) {
	tests := []struct {
		model       string
		inputs      []string
		inputDims   [][]int64
		outputs     []string
		firstInElem int32
	}{
		{"affine", []string{"x"}, [][]int64{{-1, 4}}, []string{"y"}, onnxFloat},
		{"affine_legacy", []string{"x"}, [][]int64{{-1, 4}}, []string{"y"}, onnxFloat},
		{"scale", []string{"a", "t"}, [][]int64{{-1, 3}, {-1}}, []string{"y"}, onnxFloat},
		{"int64_input", []string{"x"}, [][]int64{{-1, 2}}, []string{"y"}, 7},
		{"spin", []string{"x"}, [][]int64{{-1, 1}}, []string{"y"}, onnxFloat},
		{"identity", []string{"x"}, [][]int64{{-1, -1}}, []string{"y"}, onnxFloat},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			io, err := parseModelIO(testdata(t, tc.model))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for i, in := range io.inputs {
				names = append(names, in.name)
				if !slices.Equal(in.dims, tc.inputDims[i]) || in.kind != "tensor" || !in.hasShape {
					t.Errorf("input %s: %+v, want dims %v", in.name, in, tc.inputDims[i])
				}
			}
			if !slices.Equal(names, tc.inputs) {
				t.Errorf("inputs %v, want %v", names, tc.inputs)
			}
			if io.inputs[0].elemType != tc.firstInElem {
				t.Errorf("element type %d, want %d", io.inputs[0].elemType, tc.firstInElem)
			}
			if len(io.outputs) != len(tc.outputs) || io.outputs[0].name != tc.outputs[0] {
				t.Errorf("outputs %+v, want %v", io.outputs, tc.outputs)
			}
		})
	}
}

func TestParseModelIORejectsNonModels(t *testing.T) {
	affine := testdata(t, "affine")
	for name, b := range map[string][]byte{
		"empty":         nil,
		"text":          []byte("this is not an onnx model\n"),
		"truncated":     affine[:len(affine)-9],
		"field zero":    {0x00, 0x01},
		"group wire":    {0x0b},
		"huge length":   {0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"graph varint":  {0x38, 0x01},
		"no graph only": {0x08, 0x07},
	} {
		if io, err := parseModelIO(b); err == nil {
			t.Errorf("%s: parsed as %+v", name, io)
		}
	}
}

// FuzzParseModelIO feeds arbitrary bytes (seeded with the test models) to the
// header reader, which sees every model file before ONNX Runtime does.
func FuzzParseModelIO(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.onnx"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		io, err := parseModelIO(b)
		if err != nil {
			return
		}
		for _, vs := range [][]valueInfo{io.inputs, io.outputs} {
			for _, v := range vs {
				if v.name == "" {
					t.Fatalf("value without a name: %+v", v)
				}
				for _, d := range v.dims {
					if d < -1 {
						t.Fatalf("dim %d in %+v", d, v)
					}
				}
			}
		}
	})
}
