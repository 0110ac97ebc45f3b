// Texture images as baseline JPEG, through libjpeg-turbo (the libjpeg API,
// SIMD colour conversion and DCT): float channels in [0, 1] are quantized
// to 8 bits and laid out as the export wants them (RGB, glTF's packed
// metallic-roughness, one grey channel) in parallel, then encoded with
// libjpeg's defaults for the quality (4:2:0 chroma for colour, as Go's
// image/jpeg and Hunyuan3D's PIL/OpenCV writers use).
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

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

// Encodes rows of 8-bit samples into out (its data malloc'ed); returns
// false with message set when libjpeg fails (out of memory).
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
    auto buffer = std::make_unique<hy3d_buffer>();
    char message[JMSG_LENGTH_MAX] = {0};
    if (!hy3d::encode(samples.data(), width, height, components, quality, buffer.get(), message)) {
      return hy3d::fail(HY3D_ERR_OUT_OF_MEMORY, std::string(op) + ": libjpeg: " + message);
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
