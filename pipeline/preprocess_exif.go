package pipeline

import (
	"encoding/binary"
	"image"
)

// Phone photos are stored sideways with an EXIF orientation tag. Hunyuan3D's
// background removal (rembg's remove, through fix_image_orientation) applies
// the tag with PIL's ImageOps.exif_transpose before anything else, so a JPEG
// reaches recentering upright; ppJPEGOrientation and ppOrient do the same.

// ppJPEGOrientation returns the EXIF orientation (1–8) of a JPEG file, or 1
// when it has none or it cannot be read. It walks the marker segments before
// the first scan and reads tag 0x0112 of IFD0 in the APP1 "Exif" segment.
func ppJPEGOrientation(data []byte) int {
	i := 2 // after SOI
	for i+4 <= len(data) {
		if data[i] != 0xff {
			return 1
		}
		marker := data[i+1]
		switch {
		case marker == 0xff: // fill byte
			i++
			continue
		case marker == 0xda || marker == 0xd9: // start of scan, end of image
			return 1
		case marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7): // no length
			i += 2
			continue
		}
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		if n < 2 || i+2+n > len(data) {
			return 1
		}
		seg := data[i+4 : i+2+n]
		if marker == 0xe1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			return ppTIFFOrientation(seg[6:])
		}
		i += 2 + n
	}
	return 1
}

// ppTIFFOrientation reads the orientation tag from a TIFF header and IFD0.
func ppTIFFOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(t[2:]) != 42 {
		return 1
	}
	ifd := uint64(bo.Uint32(t[4:]))
	if ifd+2 > uint64(len(t)) {
		return 1
	}
	entries := int(bo.Uint16(t[ifd:]))
	for k := range entries {
		e := int(ifd) + 2 + 12*k
		if e+12 > len(t) {
			return 1
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		// SHORT, one value, stored in the first two bytes of the value field.
		if bo.Uint16(t[e+2:]) != 3 || bo.Uint32(t[e+4:]) != 1 {
			return 1
		}
		if v := int(bo.Uint16(t[e+8:])); v >= 1 && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}

// ppOrient returns img turned upright for EXIF orientation o, with PIL's
// exif_transpose methods: 2 mirror, 3 rotate 180°, 4 flip, 5 transpose,
// 6 rotate 90° clockwise, 7 transverse, 8 rotate 90° counter-clockwise.
func ppOrient(img *image.NRGBA, o int) *image.NRGBA {
	if o < 2 || o > 8 {
		return img
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := image.NewNRGBA(image.Rect(0, 0, ow, oh))
	for y := range oh {
		d := out.Pix[y*out.Stride : y*out.Stride+4*ow]
		for x := range ow {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = w-1-x, y
			case 3:
				sx, sy = w-1-x, h-1-y
			case 4:
				sx, sy = x, h-1-y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, h-1-x
			case 7:
				sx, sy = w-1-y, h-1-x
			case 8:
				sx, sy = w-1-y, x
			}
			copy(d[4*x:4*x+4], img.Pix[sy*img.Stride+4*sx:])
		}
	}
	return out
}
