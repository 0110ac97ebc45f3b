// Texture images as baseline JPEG, through libjpeg-turbo (the libjpeg API,
// SIMD colour conversion and DCT): float channels in [0, 1] are quantized
// to 8 bits and laid out as the export wants them (RGB, glTF's packed
// metallic-roughness, one grey channel) in parallel, then encoded with
// libjpeg's defaults for the quality (4:2:0 chroma for colour, as Go's
// image/jpeg and Hunyuan3D's PIL/OpenCV writers use) and a restart marker
// after every row of MCUs.
//
// The restart markers let horizontal strips be encoded on separate
// threads: a restart resets the DC prediction, so each strip's entropy-
// coded data stands alone, and with strips of a multiple of 8 MCU rows
// each strip's own markers (RST0..RST7 in turn) are the ones its rows get
// in the whole image. The strips are joined under the first strip's
// headers with the image's height; the result is the same bytes for any
// number of threads.
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include <jpeglib.h>

#include "texture_common.hpp"

struct hy3d_buffer {
  unsigned char *data = nullptr;  // malloc'ed by libjpeg's memory destination
  unsigned long size = 0;
  ~hy3d_buffer() { std::free(data); }
};

namespace hy3d {
namespace {

// libjpeg reports errors through error_exit, which must not return;
// encode() longjmps back to its setjmp. Nothing with a destructor lives
// between the two.
struct ErrorManager {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr info) {
  ErrorManager *err = reinterpret_cast<ErrorManager *>(info->err);
  (*info->err->format_message)(info, err->message);
  std::longjmp(err->jump, 1);
}

// Encodes rows of 8-bit samples into out (its data malloc'ed), a restart
// marker after every MCU row; returns false with message set when libjpeg
// fails (out of memory).
bool encode(const uint8_t *samples, int32_t width, int32_t height, int components, int quality, hy3d_buffer *out,
            char *message) {
  jpeg_compress_struct info;
  ErrorManager err;
  info.err = jpeg_std_error(&err.base);
  err.base.error_exit = on_error;
  if (setjmp(err.jump)) {
    std::memcpy(message, err.message, sizeof(err.message));
    jpeg_destroy_compress(&info);
    return false;
  }
  jpeg_create_compress(&info);
  jpeg_mem_dest(&info, &out->data, &out->size);
  info.image_width = JDIMENSION(width);
  info.image_height = JDIMENSION(height);
  info.input_components = components;
  info.in_color_space = components == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, quality, TRUE);
  info.restart_in_rows = 1;
  jpeg_start_compress(&info, TRUE);
  const size_t stride = size_t(width) * size_t(components);
  while (info.next_scanline < info.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(samples + size_t(info.next_scanline) * stride);
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  return true;
}

// Rows of pixels per MCU row with libjpeg's default sampling: 2x2 luma
// blocks for colour (YCbCr 4:2:0), single blocks for grey.
int mcu_height(int components) { return components == 3 ? 16 : 8; }

// Offset of the first marker `code` among the headers of a JPEG from
// libjpeg, or 0 (headers are FF code length...; SOS is the last one).
size_t find_marker(const unsigned char *data, size_t size, unsigned char code) {
  for (size_t at = 2; at + 4 <= size && data[at] == 0xff;) {
    if (data[at + 1] == code) return at;
    if (data[at + 1] == 0xda) return 0;
    at += 2 + (size_t(data[at + 2]) << 8 | data[at + 3]);
  }
  return 0;
}

// Joins strips encoded by encode() into one JPEG of the given height:
// the first strip's headers and data, then for each later strip the
// restart marker that ends the previous one and that strip's entropy-
// coded data. False when a strip does not look as libjpeg writes them.
bool join(std::vector<hy3d_buffer> &strips, const std::vector<size_t> &mcu_rows_before, int32_t height,
          hy3d_buffer *out) {
  std::vector<unsigned char> joined;
  for (size_t s = 0; s < strips.size(); ++s) {
    const unsigned char *d = strips[s].data;
    const size_t n = strips[s].size;
    const size_t sos = find_marker(d, n, 0xda);
    if (sos == 0 || n < 4 || d[n - 2] != 0xff || d[n - 1] != 0xd9) return false;
    if (s > 0) {
      joined.push_back(0xff);
      joined.push_back(static_cast<unsigned char>(0xd0 + (mcu_rows_before[s] - 1) % 8));
    }
    // The whole first strip but its EOI; of the others, what follows their SOS segment.
    const size_t first = s == 0 ? 0 : sos + 2 + (size_t(d[sos + 2]) << 8 | d[sos + 3]);
    joined.insert(joined.end(), d + first, d + n - 2);
  }
  joined.push_back(0xff);
  joined.push_back(0xd9);
  const size_t sof = find_marker(joined.data(), joined.size(), 0xc0);
  if (sof == 0) return false;
  joined[sof + 5] = static_cast<unsigned char>(height >> 8);
  joined[sof + 6] = static_cast<unsigned char>(height & 0xff);
  out->data = static_cast<unsigned char *>(std::malloc(joined.size()));
  if (out->data == nullptr) return false;
  std::memcpy(out->data, joined.data(), joined.size());
  out->size = static_cast<unsigned long>(joined.size());
  return true;
}

}  // namespace
}  // namespace hy3d

extern "C" {

hy3d_status hy3d_encode_jpeg(const float *pixels, int32_t width, int32_t height, int32_t channels,
                             const int32_t *layout, int32_t components, int32_t quality, int threads,
                             hy3d_buffer **out) {
  return hy3d::guard([&] {
    const char *op = "hy3d_encode_jpeg";
    if (out == nullptr) return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": NULL output");
    *out = nullptr;
    hy3d::check_image(op, width, height);
    if (pixels == nullptr || layout == nullptr || channels <= 0 || channels > 16 ||
        (components != 1 && components != 3) || quality < 1 || quality > 100) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT,
                        std::string(op) + ": NULL array, channels outside 1..16, components not 1 or 3, or quality "
                                          "outside 1..100");
    }
    for (int32_t k = 0; k < components; ++k) {
      if (layout[k] >= channels) {
        return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, std::string(op) + ": layout names a channel past the image's");
      }
    }
    const size_t n = size_t(width) * size_t(height), c = size_t(channels), k = size_t(components);
    std::vector<uint8_t> samples(n * k);
    hy3d::parallel_ranges(n, hy3d::resolve_threads(threads), 1 << 16, [&](size_t begin, size_t end, int) {
      for (size_t p = begin; p < end; ++p) {
        for (size_t j = 0; j < k; ++j) {
          const int32_t from = layout[j];
          // Round to nearest, NaN as 0.
          const float v = from < 0 ? 1.0f : pixels[c * p + size_t(from)];
          samples[k * p + j] = v > 0 ? (v < 1 ? uint8_t(v * 255.0f + 0.5f) : 255) : 0;
        }
      }
    });
    // Strips of a multiple of 8 MCU rows, one per thread.
    const size_t mcu = size_t(hy3d::mcu_height(components));
    const size_t mcu_rows = (size_t(height) + mcu - 1) / mcu;
    const size_t strips = std::max<size_t>(1, std::min(size_t(hy3d::resolve_threads(threads)), mcu_rows / 8));
    const size_t per_strip = ((mcu_rows + strips - 1) / strips + 7) & ~size_t(7);
    std::vector<size_t> mcu_rows_before;
    for (size_t r = 0; r < mcu_rows; r += per_strip) mcu_rows_before.push_back(r);
    std::vector<hy3d_buffer> encoded(mcu_rows_before.size());
    std::vector<std::string> errors(encoded.size());
    hy3d::parallel_ranges(encoded.size(), int(encoded.size()), 1, [&](size_t begin, size_t end, int) {
      for (size_t s = begin; s < end; ++s) {
        const size_t y0 = mcu_rows_before[s] * mcu, y1 = std::min(size_t(height), y0 + per_strip * mcu);
        char message[JMSG_LENGTH_MAX] = {0};
        if (!hy3d::encode(samples.data() + y0 * size_t(width) * k, width, int32_t(y1 - y0), components, quality,
                          &encoded[s], message)) {
          errors[s] = message;
        }
      }
    });
    for (const std::string &e : errors) {
      if (!e.empty()) return hy3d::fail(HY3D_ERR_OUT_OF_MEMORY, std::string(op) + ": libjpeg: " + e);
    }
    auto buffer = std::make_unique<hy3d_buffer>();
    if (encoded.size() == 1) {
      std::swap(buffer->data, encoded[0].data);
      std::swap(buffer->size, encoded[0].size);
    } else if (!hy3d::join(encoded, mcu_rows_before, height, buffer.get())) {
      return hy3d::fail(HY3D_ERR_OUT_OF_MEMORY, std::string(op) + ": joining the strips failed");
    }
    *out = buffer.release();
    return HY3D_OK;
  });
}

hy3d_status hy3d_buffer_view(const hy3d_buffer *buffer, const uint8_t **data, size_t *size) {
  return hy3d::guard([&] {
    if (buffer == nullptr || data == nullptr || size == nullptr) {
      return hy3d::fail(HY3D_ERR_INVALID_ARGUMENT, "hy3d_buffer_view: NULL argument");
    }
    *data = buffer->data;
    *size = size_t(buffer->size);
    return HY3D_OK;
  });
}

void hy3d_buffer_destroy(hy3d_buffer *buffer) { delete buffer; }

}  // extern "C"
