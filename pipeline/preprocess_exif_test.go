package pipeline

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"slices"
	"testing"
)

// Expected pixels are PIL's Image.transpose with the method exif_transpose
// picks for each orientation, on the 3×2 picture [[0 1 2] [3 4 5]].
func TestOrientMatchesPILExifTranspose(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	for i := range 6 {
		src.Pix[4*i] = uint8(i)
	}
	cases := []struct {
		o    int
		w, h int
		want []uint8
	}{
		{1, 3, 2, []uint8{0, 1, 2, 3, 4, 5}},
		{2, 3, 2, []uint8{2, 1, 0, 5, 4, 3}},
		{3, 3, 2, []uint8{5, 4, 3, 2, 1, 0}},
		{4, 3, 2, []uint8{3, 4, 5, 0, 1, 2}},
		{5, 2, 3, []uint8{0, 3, 1, 4, 2, 5}},
		{6, 2, 3, []uint8{3, 0, 4, 1, 5, 2}},
		{7, 2, 3, []uint8{5, 2, 4, 1, 3, 0}},
		{8, 2, 3, []uint8{2, 5, 1, 4, 0, 3}},
	}
	for _, c := range cases {
		out := ppOrient(src, c.o)
		var got []uint8
		for i := 0; i < len(out.Pix); i += 4 {
			got = append(got, out.Pix[i])
		}
		if out.Rect.Dx() != c.w || out.Rect.Dy() != c.h || !slices.Equal(got, c.want) {
			t.Errorf("orientation %d: %dx%d %v, want %dx%d %v", c.o, out.Rect.Dx(), out.Rect.Dy(), got, c.w, c.h, c.want)
		}
	}
}

// ppWithOrientation inserts an APP1 Exif segment holding orientation o (in
// the given TIFF byte order) right after a JPEG's SOI marker.
func ppWithOrientation(jpg []byte, o uint16, bo binary.ByteOrder) []byte {
	tiff := make([]byte, 8+2+12+4)
	if bo == binary.LittleEndian {
		copy(tiff, "II")
	} else {
		copy(tiff, "MM")
	}
	bo.PutUint16(tiff[2:], 42)
	bo.PutUint32(tiff[4:], 8)
	bo.PutUint16(tiff[8:], 1)
	bo.PutUint16(tiff[10:], 0x0112)
	bo.PutUint16(tiff[12:], 3)
	bo.PutUint32(tiff[14:], 1)
	bo.PutUint16(tiff[18:], o)
	seg := append([]byte("Exif\x00\x00"), tiff...)
	var b bytes.Buffer
	b.Write(jpg[:2])
	b.Write([]byte{0xff, 0xe1})
	binary.Write(&b, binary.BigEndian, uint16(len(seg)+2))
	b.Write(seg)
	b.Write(jpg[2:])
	return b.Bytes()
}

func TestJPEGOrientationTag(t *testing.T) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	plain := buf.Bytes()
	cases := []struct {
		name string
		data []byte
		want int
	}{
		{"no exif", plain, 1},
		{"little endian 6", ppWithOrientation(plain, 6, binary.LittleEndian), 6},
		{"big endian 8", ppWithOrientation(plain, 8, binary.BigEndian), 8},
		{"out of range", ppWithOrientation(plain, 9, binary.BigEndian), 1},
		{"truncated", ppWithOrientation(plain, 6, binary.BigEndian)[:20], 1},
		{"not a jpeg body", []byte{0xff, 0xd8, 0x00, 0x00}, 1},
	}
	for _, c := range cases {
		if got := ppJPEGOrientation(c.data); got != c.want {
			t.Errorf("%s: orientation %d, want %d", c.name, got, c.want)
		}
	}
}

// A sideways phone photo: stored 60×30 with the object at the left, tagged
// "rotate 90° clockwise to view". Upright it is 30×60 with the object at the
// top, exactly like the same picture stored upright.
func TestPreprocessTurnsJPEGUpright(t *testing.T) {
	stored := image.NewRGBA(image.Rect(0, 0, 60, 30))
	draw.Draw(stored, stored.Rect, image.NewUniform(color.White), image.Point{}, draw.Src)
	draw.Draw(stored, image.Rect(8, 6, 24, 24), image.NewUniform(color.RGBA{20, 40, 160, 255}), image.Point{}, draw.Src)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, stored, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	p := ppRun(t, ppWithOrientation(buf.Bytes(), 6, binary.BigEndian), PreprocessOptions{})
	if p.Source != image.Pt(30, 60) {
		t.Fatalf("upright size %v, want 30x60", p.Source)
	}
	// Rotating clockwise maps stored (x, y) to upright (29−y, x): the square
	// (8,6)-(24,24) becomes (6,8)-(24,24), give or take JPEG ringing.
	if b := p.BBox; b.Min.X < 5 || b.Min.X > 6 || b.Min.Y < 7 || b.Min.Y > 8 || b.Max.X < 24 || b.Max.X > 25 || b.Max.Y < 24 || b.Max.Y > 25 {
		t.Errorf("bbox %v, want about (6,8)-(24,24)", b)
	}
}

// FuzzJPEGOrientation: the EXIF walker reads untrusted offsets and lengths.
func FuzzJPEGOrientation(f *testing.F) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 4, 4)), nil); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(ppWithOrientation(buf.Bytes(), 6, binary.LittleEndian))
	f.Add(ppWithOrientation(buf.Bytes(), 3, binary.BigEndian))
	f.Fuzz(func(t *testing.T, data []byte) {
		if o := ppJPEGOrientation(data); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}
